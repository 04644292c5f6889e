"""``Cron``: fire times of a cron expression in a time zone, as Debian cron has them.

cronsim does the calendar work (fields, names, ``L``, ``LW``, ``5L``, ``5#3``,
day-of-month OR day-of-week unless one starts with ``*``). The daylight
saving rules are ours, the same for 5 and 6 fields:

- a *fixed* expression (neither the minute nor the hour field starts with
  ``*``) is iterated in naive local time, and each local time is mapped to
  one instant by :func:`~aioscheduler._zones.resolve_local` (a gap: the first
  instant after it; a fold: the first occurrence). cronsim does the same for
  5 fields only; doing it ourselves makes 6 fields behave alike.
- any other expression follows elapsed time: cronsim steps through real
  instants and matches their local wall time, so both copies of a repeated
  hour fire and nothing that exists is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from cronsim import CronSim, CronSimError
from cronsim.cronsim import FIELD_NAMES

from ._trigger import ZonedTrigger, check_bounds
from ._zones import (
    as_instant,
    fold_end,
    in_zone,
    next_change,
    previous_change,
    resolve_local,
    zone,
    zone_eq_key,
)

__all__ = ["Cron"]

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_SECOND = timedelta(seconds=1)
_TINY = timedelta(microseconds=1)


def _translate(expr: str) -> str:
    """Return the 5- or 6-field form of *expr*; ValueError naming the problem."""
    text = " ".join(expr.split())
    if text.startswith("@"):
        fields = MACROS.get(text.lower())
        if fields is None:
            raise ValueError(
                f"unknown cron macro {text!r}; use one of {', '.join(MACROS)}"
            )
        return fields
    count = len(text.split())
    if count not in (5, 6):
        raise ValueError(
            f"cron expression {expr!r} has {count} fields; give 5 (minute hour"
            " day-of-month month day-of-week) or 6 (second first)"
        )
    return text


def _parse(expr: str, fields: str) -> None:
    """Parse *fields* with cronsim; raise ValueError naming the bad field."""
    try:
        CronSim(fields, datetime(2000, 1, 1))
    except CronSimError as exc:
        parts = fields.split()
        names = FIELD_NAMES if len(parts) == 6 else FIELD_NAMES[1:]
        message = str(exc)
        for name, part in zip(names, parts, strict=True):
            if message == f"Bad {name}":
                if name == "day-of-month" and _parses_alone(fields):
                    raise ValueError(
                        f"cron expression {expr!r} never fires: no month has day"
                        f" {part!r} (the day-of-month field) in month(s)"
                        f" {parts[-2]!r}"
                    ) from None
                raise ValueError(
                    f"cron expression {expr!r}: bad {name} field {part!r}"
                ) from None
        raise ValueError(f"cron expression {expr!r}: {message}") from None


def _parses_alone(fields: str) -> bool:
    """Return True if the day-of-month field parses when the month is ``*``."""
    parts = fields.split()
    parts[-2] = "*"
    try:
        CronSim(" ".join(parts), datetime(2000, 1, 1))
    except CronSimError:
        return False
    return True


def _utcoffset(u: datetime, tz: tzinfo) -> timedelta:
    offset = u.astimezone(tz).utcoffset()
    assert offset is not None
    return offset


class Cron(ZonedTrigger):
    """Fire at the instants a Debian cron would, in the time zone *tz*.

    :param expr: 5 fields (minute hour day-of-month month day-of-week) or 6
        (second first); names (``jan``, ``mon``), ranges, lists, steps, ``L``
        (last day of the month), ``5L`` (last Friday), ``LW`` (last weekday),
        ``5#3`` (third Friday), or one of ``@yearly @annually @monthly
        @weekly @daily @midnight @hourly``. Day-of-month and day-of-week are
        ORed unless one of them starts with ``*``.
    :param tz: an IANA time zone name or a :class:`~datetime.tzinfo`.
    :param start: no fire time before it (a naive datetime is read in *tz*).
    :param end: no fire time after it (a naive datetime is read in *tz*).
    :raises ValueError: an expression that does not parse or never fires
        (the message names the field), an unknown time zone, a naive
        *start*/*end* that does not exist in *tz*, or *end* before *start*.

    Fire times are aware datetimes in *tz*. Around daylight saving changes, a
    *fixed* local time (neither the minute nor the hour field starts with
    ``*``) fires once: in a spring-forward gap at the first instant after
    it, in a fall-back fold at its first occurrence. Other expressions follow
    elapsed time: they fire in both copies of a repeated hour and skip
    nothing that exists.

    .. versionadded:: 2.0
    """

    __slots__ = ("_end", "_expr", "_fields", "_fixed", "_start", "_tz")
    _kind = "cron"

    _expr: str
    _fields: str
    _fixed: bool
    _tz: tzinfo
    _start: datetime | None
    _end: datetime | None

    def __init__(
        self,
        expr: str,
        *,
        tz: str | tzinfo = "UTC",
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> None:
        if not isinstance(expr, str):
            raise TypeError(f"expr must be a str, not {type(expr).__name__}")
        fields = _translate(expr)
        _parse(expr, fields)
        parts = fields.split()
        minute, hour = parts[-5], parts[-4]
        zone_ = zone(tz)
        start_ = (
            None if start is None else in_zone(start, zone_, "start").astimezone(UTC)
        )
        end_ = None if end is None else in_zone(end, zone_, "end").astimezone(UTC)
        check_bounds(start_, end_)
        self._set(
            _expr=" ".join(expr.split()),
            _fields=fields,
            _fixed=not minute.startswith("*") and not hour.startswith("*"),
            _tz=zone_,
            _start=start_,
            _end=end_,
        )

    @property
    def expr(self) -> str:
        """The cron expression, as given (whitespace normalised)."""
        return self._expr

    @property
    def fixed(self) -> bool:
        """True for a fixed local time: neither minute nor hour starts with ``*``.

        A fixed expression fires once around daylight saving changes; any
        other follows elapsed time.
        """
        return self._fixed

    # -- fire times -----------------------------------------------------------------

    def _raw_after(self, t: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Yield the fire times strictly after *t* (UTC), ignoring start and end.

        Each comes as (UTC, local): aware datetimes that share a tzinfo compare
        by wall time, fold ignored, so all comparisons are made in UTC.
        """
        local = t.astimezone(self._tz)
        last = t
        if self._fixed:
            begin = fold_end(local)
            naive = (
                local.replace(tzinfo=None, fold=0)
                if begin is None
                else begin - _SECOND  # the next naive time is the fold's end
            )
            for candidate in CronSim(self._fields, naive):
                when = resolve_local(candidate, self._tz)
                utc = when.astimezone(UTC)
                if utc > last:  # a gap maps several local times to one instant
                    last = utc
                    yield utc, when
        else:
            yield from self._elapsed_after(t)

    def _elapsed_after(self, t: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Yield the instants after *t* whose local wall time matches.

        Between two changes of the UTC offset, wall time is UTC plus a
        constant, so naive local iteration is exact there; at each change the
        iteration restarts from the new wall time. (cronsim's own aware mode
        steps hours in UTC and skips half an hour in Lord Howe's 30-minute
        changes, so it is not used.)
        """
        u = t
        offset = _utcoffset(u, self._tz)
        start = (u + offset).replace(tzinfo=None)  # cronsim: strictly after it
        while True:
            for naive in CronSim(self._fields, start):
                when = (naive - offset).replace(tzinfo=UTC)
                change = next_change(self._tz, u, when)
                if change is None:
                    u = when
                    yield when, when.astimezone(self._tz)
                    continue
                # The offset changes before `when`: go on from the change, at
                # the wall time it starts (that wall time itself included).
                u = change
                offset = _utcoffset(u, self._tz)
                start = (u + offset).replace(tzinfo=None) - _SECOND
                break
            else:
                return  # cronsim found nothing within 50 years

    def _iter_after(self, t: datetime) -> Iterator[datetime]:
        t = t.astimezone(UTC)
        if self._start is not None and t < self._start:
            t = self._start - _TINY
        # cronsim gives up after 50 years without a match: the loop just ends.
        for utc, when in self._raw_after(t):
            if self._end is not None and utc > self._end:
                return
            yield when

    def _next_after(self, t: datetime) -> datetime | None:
        return next(self._iter_after(t), None)

    def _last_at_or_before(self, t: datetime) -> datetime | None:
        t = as_instant(t).astimezone(UTC)
        if self._end is not None and t > self._end:
            t = self._end
        local = t.astimezone(self._tz)
        try:
            if self._fixed:
                begin = fold_end(local)
                naive = (
                    local.replace(tzinfo=None, fold=0, microsecond=0) + _SECOND
                    if begin is None
                    else begin
                )
                found = resolve_local(
                    next(CronSim(self._fields, naive, reverse=True)), self._tz
                )
            else:
                found = self._elapsed_at_or_before(t)
        except StopIteration:
            return None
        if self._start is not None and found.astimezone(UTC) < self._start:
            return None
        return found

    def _elapsed_at_or_before(self, t: datetime) -> datetime:
        """Return the latest instant at or before *t* whose wall time matches.

        One cronsim step per run of constant UTC offset crossed (usually one).
        Raises StopIteration when there is none within cronsim's 50 years.
        """
        u = t.replace(microsecond=0)
        while True:
            offset = _utcoffset(u, self._tz)
            naive = (u + offset).replace(tzinfo=None) + _SECOND
            when = (next(CronSim(self._fields, naive, reverse=True)) - offset).replace(
                tzinfo=UTC
            )
            began = previous_change(self._tz, u, when)
            if began is None:
                return when.astimezone(self._tz)
            u = began - _SECOND  # the latest whole second of the run before

    # -- value ------------------------------------------------------------------

    def _key(self) -> tuple[Any, ...]:
        return (self._expr, zone_eq_key(self._tz), self._start, self._end)

    def __repr__(self) -> str:
        return self._repr_with(f"Cron({self._expr!r}")

    def to_dict(self) -> dict[str, Any]:
        """Return the trigger as a JSON-able dict, for saving.

        Datetimes become ISO 8601 strings and the time zone its IANA name
        (a tzinfo without one raises :exc:`ValueError`).
        """
        return self._dict_with(expr=self._expr)
