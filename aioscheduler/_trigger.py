"""The base of every trigger: an immutable value that maps an instant to the next.

Triggers know nothing of schedulers, clocks or event loops. The public part
(``next_after``, ``preview``) is what users call; the private part
(``_last_at_or_before``, ``_count_between``, ``_anchored``, ``_iter_after``)
is what the scheduling side builds misfire and coalescing on.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, tzinfo
from typing import Any, ClassVar, NoReturn

from ._zones import as_instant, zone_key, zone_name

__all__ = ["Trigger", "ZonedTrigger", "check_bounds", "dt_repr", "kw_repr"]


class Trigger:
    """The base of :class:`Every`, :class:`Cron`, :class:`Calendar`, :class:`At`
    and :class:`AnyOf`.

    A trigger is an immutable value: equal and hashable by its arguments.
    """

    __slots__ = ()

    #: True when the trigger measures elapsed time (only :class:`Every`): the
    #: scheduler then keeps its cadence on the loop's monotonic clock.
    elapsed: ClassVar[bool] = False
    _kind: ClassVar[str] = ""

    # -- public ---------------------------------------------------------------

    def next_after(self, t: datetime) -> datetime | None:
        """Return the first fire time strictly after the instant *t*.

        :param t: an aware datetime; a naive one raises :exc:`TypeError`.
        :return: an aware datetime, or ``None`` when the trigger never fires
            after *t* (past its ``end``, or an :class:`At` already passed).
        """
        return self._next_after(as_instant(t))

    def preview(self, n: int, after: datetime | None = None) -> list[datetime]:
        """Return the next *n* fire times after *after* (default: now).

        The trigger is read as a schedule added at *after* would read it: an
        :class:`Every` or :class:`Calendar` without ``start`` counts from
        *after*. Fewer than *n* when the trigger ends sooner.
        """
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"n must be an int, not {type(n).__name__}")
        if n < 0:
            raise ValueError(f"n must be 0 or more, got {n}")
        start = datetime.now(UTC) if after is None else as_instant(after, "after")
        times: list[datetime] = []
        for when in self._anchored(start)._iter_after(start):
            if len(times) >= n:
                break
            times.append(when)
        return times

    # -- for the scheduling side -------------------------------------------------

    def _next_after(self, t: datetime) -> datetime | None:
        raise NotImplementedError

    def _last_at_or_before(self, t: datetime) -> datetime | None:
        """Return the latest fire time at or before *t*, or ``None``."""
        raise NotImplementedError

    def _iter_after(self, t: datetime) -> Iterator[datetime]:
        """Yield the fire times strictly after *t*, in increasing order."""
        when = self._next_after(t)
        while when is not None:
            yield when
            when = self._next_after(when)

    def _count_between(self, after: datetime, until: datetime, limit: int) -> int:
        """Return how many fire times lie in ``(after, until]``, at most *limit*.

        Stops as soon as *limit* is reached: the cost is O(*limit*) at most.
        """
        count = 0
        # Compare in UTC: datetimes sharing a tzinfo compare by wall time.
        after, until = after.astimezone(UTC), until.astimezone(UTC)
        if limit <= 0 or until <= after:
            return 0
        for when in self._iter_after(after):
            if when.astimezone(UTC) > until:
                break
            count += 1
            if count >= limit:
                break
        return count

    def _anchored(self, added: datetime) -> Trigger:
        """Return the trigger as a schedule added at the instant *added* uses it."""
        return self

    # -- value semantics ---------------------------------------------------------

    def _key(self) -> tuple[Any, ...]:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict that :func:`trigger_from_dict` turns back into
        an equal trigger.

        Datetimes become ISO 8601 strings and time zones their IANA names; a
        ``tzinfo`` without a name (a fixed offset) raises :exc:`ValueError`.
        """
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Trigger)
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._key()))

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __copy__(self) -> Trigger:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Trigger:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        names: tuple[str, ...] = type(self).__slots__
        state = {name: getattr(self, name) for name in names}
        return (_rebuild, (type(self), state))

    def _set(self, **values: object) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)


def _rebuild(cls: type[Trigger], state: dict[str, Any]) -> Trigger:
    """Unpickle a trigger: its slots, as they were."""
    trigger = object.__new__(cls)
    trigger._set(**state)
    return trigger


def check_bounds(start: datetime | None, end: datetime | None) -> None:
    """Refuse an ``end`` before ``start``."""
    if start is not None and end is not None and end < start:
        raise ValueError(
            f"end ({end.isoformat()}) is before start ({start.isoformat()})"
        )


def dt_repr(dt: datetime) -> str:
    """Return a short, readable form of an aware datetime: its ISO 8601 text."""
    return dt.isoformat()


def kw_repr(**values: object) -> str:
    """Return ``, name=value`` for each value that is not ``None``."""
    parts = []
    for name, value in values.items():
        if value is None:
            continue
        text = dt_repr(value) if isinstance(value, datetime) else repr(value)
        parts.append(f", {name}={text}")
    return "".join(parts)


class ZonedTrigger(Trigger):
    """A trigger read in a time zone (:class:`Cron`, :class:`Calendar`): its
    ``tz``, and its ``start`` and ``end`` shown in that zone."""

    __slots__ = ()

    _tz: tzinfo
    _start: datetime | None
    _end: datetime | None

    @property
    def tz(self) -> tzinfo:
        """The time zone the trigger is read in."""
        return self._tz

    @property
    def start(self) -> datetime | None:
        """No fire time is before it (aware, in :attr:`tz`), or ``None``.

        A :class:`Calendar` also counts its days from its day.
        """
        return None if self._start is None else self._start.astimezone(self._tz)

    @property
    def end(self) -> datetime | None:
        """No fire time is after it (aware, in :attr:`tz`), or ``None``."""
        return None if self._end is None else self._end.astimezone(self._tz)

    def _repr_with(self, head: str) -> str:
        """Return the repr: *head* (``"Cron('* * * * *'"``), then tz and bounds."""
        tz = zone_key(self._tz) or self._tz
        return (
            head
            + ("" if tz == "UTC" else f", tz={tz!r}")
            + kw_repr(start=self.start, end=self.end)
            + ")"
        )

    def _dict_with(self, **fields: Any) -> dict[str, Any]:
        """Return :meth:`to_dict`'s dict: the type, *fields*, tz and bounds."""
        return {
            "type": self._kind,
            **fields,
            "tz": zone_name(self._tz),
            "start": None if self.start is None else self.start.isoformat(),
            "end": None if self.end is None else self.end.isoformat(),
        }
