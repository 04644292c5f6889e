"""The simple triggers (``Every``, ``At``, ``AnyOf``) and the JSON form of all of them.

``Cron`` lives in ``_cron.py`` and ``Calendar`` in ``_calendar.py``; this
module gathers them so that :func:`trigger_from_dict` knows every kind.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Any

from ._calendar import UNITS, Calendar
from ._cron import Cron
from ._trigger import Trigger, check_bounds, dt_repr, kw_repr
from ._zones import as_instant, in_zone

__all__ = ["AnyOf", "At", "Calendar", "Cron", "Every", "Trigger", "trigger_from_dict"]


def _period(value: object) -> timedelta:
    if isinstance(value, bool) or not isinstance(value, int | float | timedelta):
        raise TypeError(
            "period must be a number of seconds or a timedelta,"
            f" not {type(value).__name__}"
        )
    if isinstance(value, timedelta):
        period = value
    else:
        if not math.isfinite(value):
            raise ValueError(f"period must be a finite number of seconds, got {value}")
        try:
            period = timedelta(seconds=value)
        except OverflowError:
            raise ValueError(f"period {value} seconds is too long") from None
    if period <= timedelta(0):
        raise ValueError(
            f"period must be more than 0 (and at least 1 µs), got {value!r}"
        )
    return period


def _utc(value: datetime | None, name: str) -> datetime | None:
    return None if value is None else in_zone(value, UTC, name)


class Every(Trigger):
    """Fire every *period* of elapsed time.

    :param period: seconds (``int`` or ``float``) or a
        :class:`~datetime.timedelta`; more than 0.
    :param start: the first fire time (a naive datetime is read as UTC).
        Without it, a schedule fires first one *period* after it is added;
        as a pure value, :meth:`next_after` is ``t + period``.
    :param end: no fire time after it.
    :raises TypeError: a *period* that is not a number or timedelta (a
        ``bool`` or ``str`` included).
    :raises ValueError: a *period* of 0 or less, or *end* before *start*.

    Elapsed time: daylight saving never changes it (an hourly ``Every`` is
    3600 seconds apart on the change days too). Fire times are aware UTC
    datetimes.

    .. versionadded:: 2.0
    """

    __slots__ = ("_end", "_period", "_start")
    _kind = "every"
    elapsed = True

    _period: timedelta
    _start: datetime | None
    _end: datetime | None

    def __init__(
        self,
        period: float | timedelta,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> None:
        period_ = _period(period)
        start_, end_ = _utc(start, "start"), _utc(end, "end")
        check_bounds(start_, end_)
        self._set(_period=period_, _start=start_, _end=end_)

    @property
    def period(self) -> timedelta:
        """The time between fires."""
        return self._period

    @property
    def period_seconds(self) -> float:
        """The time between fires, in seconds."""
        return self._period.total_seconds()

    @property
    def start(self) -> datetime | None:
        """The first fire time (aware UTC), or ``None``."""
        return self._start

    @property
    def end(self) -> datetime | None:
        """No fire time is after it (aware UTC), or ``None``."""
        return self._end

    def _bounded(self, when: datetime) -> datetime | None:
        return None if self._end is not None and when > self._end else when

    def _next_after(self, t: datetime) -> datetime | None:
        if self._start is None:
            return self._bounded(t.astimezone(UTC) + self._period)
        if t < self._start:
            return self._bounded(self._start)
        k = (t - self._start) // self._period + 1
        return self._bounded(self._start + k * self._period)

    def _iter_after(self, t: datetime) -> Iterator[datetime]:
        when = self._next_after(t)
        while when is not None:
            yield when
            when = self._bounded(when + self._period)

    def _last_at_or_before(self, t: datetime) -> datetime | None:
        """Return the latest fire time at or before *t*.

        ``None`` before ``start``, and always without a ``start``: an
        unanchored ``Every`` has no fire times of its own (see :meth:`_anchored`).
        """
        t = as_instant(t)
        if self._start is None:
            return None
        if self._end is not None and t > self._end:
            t = self._end
        if t < self._start:
            return None
        return self._start + (t - self._start) // self._period * self._period

    def _count_between(self, after: datetime, until: datetime, limit: int) -> int:
        """Count by arithmetic: O(1) whatever the gap."""
        if self._start is None or limit <= 0:
            return 0
        if self._end is not None and until > self._end:
            until = self._end
        if until < self._start or until <= after:
            return 0
        last = (until - self._start) // self._period  # k of the last fire <= until
        first = 0 if after < self._start else (after - self._start) // self._period + 1
        return max(0, min(limit, last - first + 1))

    def _anchored(self, added: datetime) -> Every:
        """Without ``start``: first fire one period after *added*."""
        if self._start is not None:
            return self
        return Every(self._period, start=added + self._period, end=self._end)

    def _key(self) -> tuple[Any, ...]:
        return (self._period, self._start, self._end)

    def __repr__(self) -> str:
        period = f"timedelta({', '.join(_td_args(self._period))})"
        return f"Every({period}{kw_repr(start=self._start, end=self._end)})"

    def to_dict(self) -> dict[str, Any]:
        """Return the trigger as a JSON-able dict, for saving.

        Datetimes become ISO 8601 strings and the time zone its IANA name
        (a tzinfo without one raises :exc:`ValueError`).
        """
        seconds = self._period.total_seconds()
        return {
            "type": self._kind,
            "period": int(seconds) if seconds.is_integer() else seconds,
            "start": None if self._start is None else self._start.isoformat(),
            "end": None if self._end is None else self._end.isoformat(),
        }


def _td_args(period: timedelta) -> list[str]:
    parts = [
        f"{name}={value}"
        for name, value in (
            ("days", period.days),
            ("seconds", period.seconds),
            ("microseconds", period.microseconds),
        )
        if value
    ]
    return parts


class At(Trigger):
    """Fire once, at *when* (a naive datetime is read as UTC).

    Fire times are aware UTC datetimes.

    .. versionadded:: 2.0
    """

    __slots__ = ("_when",)
    _kind = "at"

    _when: datetime

    def __init__(self, when: datetime) -> None:
        self._set(_when=in_zone(when, UTC, "when"))

    @property
    def when(self) -> datetime:
        """The one fire time (aware UTC)."""
        return self._when

    def _next_after(self, t: datetime) -> datetime | None:
        return self._when if self._when > t else None

    def _last_at_or_before(self, t: datetime) -> datetime | None:
        return self._when if self._when <= as_instant(t) else None

    def _key(self) -> tuple[Any, ...]:
        return (self._when,)

    def __repr__(self) -> str:
        return f"At({dt_repr(self._when)})"

    def to_dict(self) -> dict[str, Any]:
        """Return the trigger as a JSON-able dict, for saving.

        Datetimes become ISO 8601 strings and the time zone its IANA name
        (a tzinfo without one raises :exc:`ValueError`).
        """
        return {"type": self._kind, "when": self._when.isoformat()}


class AnyOf(Trigger):
    """Fire at every fire time of any of *triggers*; equal instants fire once.

    :raises ValueError: no trigger given.
    :raises TypeError: an argument that is not a trigger.

    Fire times are aware UTC datetimes.

    .. versionadded:: 2.0
    """

    __slots__ = ("_triggers",)
    _kind = "any_of"

    _triggers: tuple[Trigger, ...]

    def __init__(self, *triggers: Trigger) -> None:
        if not triggers:
            raise ValueError("AnyOf needs at least one trigger")
        for trigger in triggers:
            if not isinstance(trigger, Trigger):
                raise TypeError(
                    "AnyOf takes triggers (Every, Cron, Calendar, At, AnyOf),"
                    f" not {type(trigger).__name__}"
                )
        self._set(_triggers=tuple(triggers))

    @property
    def triggers(self) -> tuple[Trigger, ...]:
        """The triggers combined."""
        return self._triggers

    def _next_after(self, t: datetime) -> datetime | None:
        found = [
            w.astimezone(UTC)
            for w in (x._next_after(t) for x in self._triggers)
            if w is not None
        ]
        return min(found) if found else None

    def _iter_after(self, t: datetime) -> Iterator[datetime]:
        heads: list[tuple[datetime, int, Iterator[datetime]]] = []
        for index, trigger in enumerate(self._triggers):
            it = trigger._iter_after(t)
            first = next(it, None)
            if first is not None:
                heads.append((first.astimezone(UTC), index, it))
        heapq.heapify(heads)
        last: datetime | None = None
        while heads:
            when, index, it = heads[0]
            if last is None or when > last:
                last = when
                yield when
            following = next(it, None)
            if following is None:
                heapq.heappop(heads)
            else:
                heapq.heapreplace(heads, (following.astimezone(UTC), index, it))

    def _last_at_or_before(self, t: datetime) -> datetime | None:
        found = [
            w.astimezone(UTC)
            for w in (x._last_at_or_before(t) for x in self._triggers)
            if w is not None
        ]
        return max(found) if found else None

    def _anchored(self, added: datetime) -> AnyOf:
        """Anchor each member (an :class:`Every` or :class:`Calendar` without start)."""
        members = tuple(x._anchored(added) for x in self._triggers)
        if all(a is b for a, b in zip(members, self._triggers, strict=True)):
            return self
        return AnyOf(*members)

    def _key(self) -> tuple[Any, ...]:
        return self._triggers

    def __repr__(self) -> str:
        return f"AnyOf({', '.join(map(repr, self._triggers))})"

    def to_dict(self) -> dict[str, Any]:
        """Return the trigger as a JSON-able dict, for saving.

        Datetimes become ISO 8601 strings and the time zone its IANA name
        (a tzinfo without one raises :exc:`ValueError`).
        """
        return {"type": self._kind, "triggers": [x.to_dict() for x in self._triggers]}


# -- JSON ---------------------------------------------------------------------------


def _instant_from(data: Mapping[str, Any], name: str) -> datetime | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be an ISO 8601 string or null, not {value!r}")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not an ISO 8601 datetime") from None


def _every(data: Mapping[str, Any]) -> Trigger:
    return Every(
        data["period"],
        start=_instant_from(data, "start"),
        end=_instant_from(data, "end"),
    )


def _cron(data: Mapping[str, Any]) -> Trigger:
    return Cron(
        data["expr"],
        tz=data.get("tz", "UTC"),
        start=_instant_from(data, "start"),
        end=_instant_from(data, "end"),
    )


def _calendar(data: Mapping[str, Any]) -> Trigger:
    at = data.get("at", "00:00")
    return Calendar(
        **{unit: data[unit] for unit in UNITS if unit in data},
        at=time.fromisoformat(at) if isinstance(at, str) and ":" in at else at,
        tz=data.get("tz", "UTC"),
        start=_instant_from(data, "start"),
        end=_instant_from(data, "end"),
    )


def _at(data: Mapping[str, Any]) -> Trigger:
    when = _instant_from(data, "when")
    if when is None:
        raise ValueError("an 'at' trigger needs 'when'")
    return At(when)


def _any_of(data: Mapping[str, Any]) -> Trigger:
    members = data["triggers"]
    if not isinstance(members, list):
        raise TypeError(f"'triggers' must be a list, not {type(members).__name__}")
    return AnyOf(*(trigger_from_dict(member) for member in members))


_BUILDERS = {
    "every": (_every, {"period"}, {"start", "end"}),
    "cron": (_cron, {"expr"}, {"tz", "start", "end"}),
    "calendar": (_calendar, set(), {*UNITS, "at", "tz", "start", "end"}),
    "at": (_at, {"when"}, set()),
    "any_of": (_any_of, {"triggers"}, set()),
}


def trigger_from_dict(data: Mapping[str, Any]) -> Trigger:
    """Return the trigger that :meth:`Trigger.to_dict` described.

    :raises TypeError: *data* is not a mapping, or a value has the wrong type.
    :raises ValueError: an unknown ``type``, a missing or unknown key, or a
        value the trigger's constructor refuses.
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"expected a dict, not {type(data).__name__}")
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in _BUILDERS:
        raise ValueError(
            f"unknown trigger type {kind!r}; expected one of {', '.join(_BUILDERS)}"
        )
    build, required, optional = _BUILDERS[kind]
    missing = required - data.keys()
    if missing:
        raise ValueError(f"a {kind!r} trigger needs {', '.join(sorted(missing))}")
    unknown = data.keys() - required - optional - {"type"}
    if unknown:
        raise ValueError(
            f"unknown key(s) for a {kind!r} trigger: {', '.join(sorted(unknown))}"
        )
    return build(data)
