"""``Calendar``: a local time of day, every N days, weeks, months or years.

The days are always counted from one anchor day (``start``'s), never from
the previous fire: monthly from Jan 31 gives Feb 28, Mar 31, Apr 30, ...
(clamped to the month's end, never drifting to the 28th). The local time is
mapped to an instant by the same DST rule as a fixed-time ``Cron``.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from ._trigger import ZonedTrigger, check_bounds
from ._zones import (
    as_instant,
    in_zone,
    resolve_local,
    zone,
    zone_eq_key,
)

__all__ = ["Calendar"]

UNITS = ("days", "weeks", "months", "years")
_AT = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?")
_TINY = timedelta(microseconds=1)


def _parse_at(at: object) -> time:
    if isinstance(at, time):
        if at.tzinfo is not None:
            raise ValueError(
                f"at={at!r} has a tzinfo; give a naive time: it is read in tz"
            )
        return at.replace(fold=0)
    if not isinstance(at, str):
        raise TypeError(
            f"at must be a 'HH:MM' or 'HH:MM:SS' string or a datetime.time,"
            f" not {type(at).__name__}"
        )
    match = _AT.fullmatch(at.strip())
    if match is None:
        raise ValueError(f"at={at!r}: give a local time as 'HH:MM' or 'HH:MM:SS'")
    hour, minute, second, fraction = match.groups()
    try:
        return time(
            int(hour),
            int(minute),
            int(second or 0),
            int((fraction or "0").ljust(6, "0")),
        )
    except ValueError:
        raise ValueError(f"at={at!r} is not a time of day") from None


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be 0 or more, got {value}")
    return value


class Calendar(ZonedTrigger):
    """Fire at local time *at* every N days, weeks, months or years.

    :param days: fire every *days* days; give exactly one of *days*, *weeks*,
        *months*, *years* (the others 0).
    :param weeks: fire every *weeks* weeks.
    :param months: fire every *months* months; a day past the month's end
        clamps to it, counted from *start* (from Jan 31: Feb 28, Mar 31,
        Apr 30, ...).
    :param years: fire every *years* years (from Feb 29: Feb 28 in other years).
    :param at: the local time of day: ``"HH:MM"``, ``"HH:MM:SS"`` or a
        naive :class:`~datetime.time`.
    :param tz: an IANA time zone name or a :class:`~datetime.tzinfo`.
    :param start: fire on the days ``start + k·N`` units (k ≥ 0), never before
        *start* (a naive datetime is read in *tz*). Without it, a schedule
        counts from the day it is added; as a pure value, :meth:`next_after`
        counts from *t*'s day.
    :param end: no fire time after it.

    Around daylight saving changes, *at* fires once a day: in a
    spring-forward gap at the first instant after it, in a fall-back fold at
    its first occurrence. Fire times are aware datetimes in *tz*.

    .. versionadded:: 2.0
    """

    __slots__ = ("_at", "_end", "_n", "_start", "_tz", "_unit")
    _kind = "calendar"

    _unit: str
    _n: int
    _at: time
    _tz: tzinfo
    _start: datetime | None
    _end: datetime | None

    def __init__(
        self,
        *,
        days: int = 0,
        weeks: int = 0,
        months: int = 0,
        years: int = 0,
        at: str | time = "00:00",
        tz: str | tzinfo = "UTC",
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> None:
        counts = {
            name: _count(name, value)
            for name, value in zip(UNITS, (days, weeks, months, years), strict=True)
        }
        given = [name for name, value in counts.items() if value]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of days, weeks, months or years (a positive"
                f" int), got {', '.join(given) or 'none'}"
            )
        at_ = _parse_at(at)
        zone_ = zone(tz)
        start_ = (
            None if start is None else in_zone(start, zone_, "start").astimezone(UTC)
        )
        end_ = None if end is None else in_zone(end, zone_, "end").astimezone(UTC)
        check_bounds(start_, end_)
        self._set(
            _unit=given[0],
            _n=counts[given[0]],
            _at=at_,
            _tz=zone_,
            _start=start_,
            _end=end_,
        )

    @property
    def days(self) -> int:
        """The number of days between fires, or 0."""
        return self._n if self._unit == "days" else 0

    @property
    def weeks(self) -> int:
        """The number of weeks between fires, or 0."""
        return self._n if self._unit == "weeks" else 0

    @property
    def months(self) -> int:
        """The number of months between fires, or 0."""
        return self._n if self._unit == "months" else 0

    @property
    def years(self) -> int:
        """The number of years between fires, or 0."""
        return self._n if self._unit == "years" else 0

    @property
    def at(self) -> time:
        """The local time of day it fires at."""
        return self._at

    # -- days -----------------------------------------------------------------------

    def _day(self, anchor: date, k: int) -> date:
        """Return the k-th fire day counted from *anchor* (k >= 0)."""
        n = self._n * k
        if self._unit == "days":
            return anchor + timedelta(days=n)
        if self._unit == "weeks":
            return anchor + timedelta(weeks=n)
        if self._unit == "months":
            year, month = divmod(anchor.year * 12 + anchor.month - 1 + n, 12)
            month += 1
        else:
            year, month = anchor.year + n, anchor.month
        last = calendar.monthrange(year, month)[1]
        return date(year, month, min(anchor.day, last))

    def _index(self, anchor: date, day: date) -> int:
        """Return k such that fire day k is near *day* (at most one off)."""
        if self._unit == "days":
            return (day - anchor).days // self._n
        if self._unit == "weeks":
            return (day - anchor).days // (7 * self._n)
        if self._unit == "months":
            months = (day.year - anchor.year) * 12 + day.month - anchor.month
            return months // self._n
        return (day.year - anchor.year) // self._n

    def _instant(self, anchor: date, k: int) -> datetime | None:
        """Return fire time k counted from *anchor*, in UTC (None past year 9999)."""
        try:
            day = self._day(anchor, k)
        except (OverflowError, ValueError):  # past year 9999
            return None
        return resolve_local(datetime.combine(day, self._at), self._tz).astimezone(UTC)

    # -- fire times -----------------------------------------------------------------

    def _iter_after(self, t: datetime) -> Iterator[datetime]:
        # Compare in UTC: datetimes sharing a tzinfo compare by wall time.
        t = t.astimezone(UTC)
        if self._start is None:
            anchor = t.astimezone(self._tz).date()
        else:
            anchor = self._start.astimezone(self._tz).date()
            if t < self._start:
                t = self._start - _TINY
        k = max(0, self._index(anchor, t.astimezone(self._tz).date()) - 1)
        while True:
            when = self._instant(anchor, k)
            if when is None or (self._end is not None and when > self._end):
                return
            if when > t:
                yield when.astimezone(self._tz)
            k += 1

    def _next_after(self, t: datetime) -> datetime | None:
        return next(self._iter_after(t), None)

    def _last_at_or_before(self, t: datetime) -> datetime | None:
        """Return the latest fire time at or before *t*.

        ``None`` before ``start``, and always without a ``start``: an
        unanchored Calendar has no fire times of its own (see
        :meth:`_anchored`).
        """
        t = as_instant(t).astimezone(UTC)
        if self._start is None:
            return None
        if self._end is not None and t > self._end:
            t = self._end
        if t < self._start:
            return None
        anchor = self._start.astimezone(self._tz).date()
        k = self._index(anchor, t.astimezone(self._tz).date()) + 1
        while k >= 0:
            when = self._instant(anchor, k)
            if when is not None and when <= t:
                return when.astimezone(self._tz) if when >= self._start else None
            k -= 1
        return None

    def _anchored(self, added: datetime) -> Calendar:
        """Count from the day *added*; the first fire is the first after *added*."""
        if self._start is not None:
            return self
        return self._replace(start=added)

    def _replace(self, **changes: Any) -> Calendar:
        values: dict[str, Any] = {
            self._unit: self._n,
            "at": self._at,
            "tz": self._tz,
            "start": self.start,
            "end": self.end,
        }
        values.update(changes)
        return Calendar(**values)

    # -- value ------------------------------------------------------------------

    def _key(self) -> tuple[Any, ...]:
        return (
            self._unit,
            self._n,
            self._at,
            zone_eq_key(self._tz),
            self._start,
            self._end,
        )

    def _at_text(self) -> str:
        if self._at.second or self._at.microsecond:
            return self._at.isoformat()
        return self._at.strftime("%H:%M")

    def __repr__(self) -> str:
        return self._repr_with(
            f"Calendar({self._unit}={self._n}, at={self._at_text()!r}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the trigger as a JSON-able dict, for saving.

        Datetimes become ISO 8601 strings and the time zone its IANA name
        (a tzinfo without one raises :exc:`ValueError`).
        """
        return self._dict_with(**{self._unit: self._n, "at": self._at_text()})
