"""Time zones for triggers: parsing, local times, and the DST rules.

Everything here is pure: no clock reads. The one rule that makes wall-clock
triggers well defined is :func:`resolve_local`: a *fixed* local time maps to
exactly one instant, even on the days a zone skips or repeats an hour.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "as_instant",
    "fold_end",
    "in_zone",
    "next_change",
    "previous_change",
    "resolve_local",
    "zone",
    "zone_eq_key",
    "zone_key",
    "zone_name",
    "zone_repr",
]

_SECOND = timedelta(seconds=1)


def zone(tz: object) -> tzinfo:
    """Return the tzinfo that *tz* (an IANA name or a tzinfo) names.

    ``"UTC"`` and :data:`datetime.UTC` both become ``ZoneInfo("UTC")``, so
    equal zones compare equal and serialise by name.
    """
    if isinstance(tz, str):
        try:
            return ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {tz!r}: give an IANA name such as"
                " 'Europe/Berlin' (on Windows, install the tzdata package)"
            ) from None
    if tz is UTC:
        return ZoneInfo("UTC")
    if isinstance(tz, tzinfo):
        return tz
    raise TypeError(
        f"tz must be an IANA time zone name or a tzinfo, not {type(tz).__name__}"
    )


def zone_key(tz: tzinfo) -> str | None:
    """Return the IANA name of *tz*, or ``None`` if it has none."""
    key = getattr(tz, "key", None)
    return key if isinstance(key, str) else None


def zone_name(tz: tzinfo) -> str:
    """Return the IANA name of *tz* for saving; ValueError if it has none."""
    key = zone_key(tz)
    if key is None:
        raise ValueError(
            f"the time zone {tz!r} has no IANA name, so the trigger cannot be"
            " saved; use zoneinfo.ZoneInfo('Area/City')"
        )
    return key


def zone_repr(tz: tzinfo) -> str:
    """Return how a trigger's repr shows *tz*: its name when it has one."""
    key = zone_key(tz)
    return repr(key) if key is not None else repr(tz)


def zone_eq_key(tz: tzinfo) -> object:
    """Return what equality and hashing of a trigger use for *tz*."""
    key = zone_key(tz)
    return ("zone", key) if key is not None else ("tzinfo", tz)


def as_instant(t: object, name: str = "t") -> datetime:
    """Check that *t* is an aware datetime (an instant) and return it.

    A naive datetime is refused: it names no instant, and guessing (UTC? the
    trigger's zone? the machine's?) is how schedules end up an hour off.
    """
    if not isinstance(t, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(t).__name__}")
    if t.tzinfo is None or t.utcoffset() is None:
        raise TypeError(
            f"{name} must be an aware datetime (an instant), got the naive {t!r};"
            " use datetime.now(UTC) or attach a tzinfo"
        )
    return t


def in_zone(dt: object, tz: tzinfo, name: str) -> datetime:
    """Return the instant *dt* as an aware datetime in *tz*.

    A naive *dt* is read as local time in *tz*; one that does not exist there
    (it falls in a DST gap) raises :exc:`ValueError`. ``None`` is not allowed
    here: callers handle it.
    """
    if not isinstance(dt, datetime):
        raise TypeError(f"{name} must be a datetime or None, not {type(dt).__name__}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        local = dt.replace(tzinfo=tz)
        if _offsets(local)[0] < _offsets(local)[1]:
            raise ValueError(
                f"{name}={dt.isoformat()} does not exist in {zone_repr(tz)}"
                " (it falls in a daylight saving gap); give an aware datetime"
                " or a time that exists"
            )
        return local.astimezone(UTC).astimezone(tz)
    return dt.astimezone(tz)


def _offsets(local: datetime) -> tuple[timedelta, timedelta]:
    """Return the UTC offsets of the naive wall time of *local* with fold 0 and 1."""
    first = local.replace(fold=0).utcoffset()
    second = local.replace(fold=1).utcoffset()
    assert first is not None
    assert second is not None
    return first, second


def _transition(tz: tzinfo, before: datetime, after: datetime) -> datetime:
    """Return the first instant in ``(before, after]`` with the offset of *after*.

    *before* and *after* are UTC instants a whole number of seconds apart with
    different UTC offsets in *tz*; offsets change on whole seconds, so a
    binary search over seconds finds the change exactly.
    """
    target = after.astimezone(tz).utcoffset()
    lo, hi = 0, int((after - before).total_seconds())
    # Invariant: before + lo has another offset, before + hi has the target.
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if (before + mid * _SECOND).astimezone(tz).utcoffset() == target:
            hi = mid
        else:
            lo = mid
    return before + hi * _SECOND


def resolve_local(naive: datetime, tz: tzinfo) -> datetime:
    """Return the one instant at which the fixed local time *naive* fires in *tz*.

    - A local time that exists once: that instant.
    - One that occurs twice (a fall-back fold): its first occurrence.
    - One that does not exist (a spring-forward gap): the first instant after
      the gap (02:30 on a day that skips 02:00-03:00 becomes 03:00).

    The result is an aware datetime in *tz*. The mapping never decreases:
    a later local time never resolves to an earlier instant.
    """
    local = naive.replace(tzinfo=tz, fold=0)
    first, second = _offsets(local)
    if first >= second:  # exists once, or twice (fold=0 is the first copy)
        return local.astimezone(UTC).astimezone(tz)
    # In a gap: fold=0 reads it with the offset before the gap, which lands
    # after the transition; reading it with the offset after lands before.
    early = naive.replace(tzinfo=UTC) - second
    late = naive.replace(tzinfo=UTC) - first
    return _transition(tz, early, late).astimezone(tz)


def fold_end(local: datetime) -> datetime | None:
    """Return where the repeated hour containing *local* ends, as a naive time.

    *local* is an aware datetime in its zone. When it is in the **second**
    copy of a repeated (fall-back) local time, every local time before the
    returned naive one already had its first occurrence before *local*.
    Otherwise (*local* is not in a repeat, or in its first copy) return
    ``None``.
    """
    if not local.fold:
        return None
    first, second = _offsets(local)
    if first <= second:
        return None
    whole = local.replace(microsecond=0)
    now = whole.astimezone(UTC)
    copy = whole.replace(fold=0).astimezone(UTC)  # the first copy, earlier
    change = _transition(local.tzinfo, copy, now)  # type: ignore[arg-type]
    return (change + first).replace(tzinfo=None)


_DAY = timedelta(days=1)


def _offset(u: datetime, tz: tzinfo) -> timedelta | None:
    return u.astimezone(tz).utcoffset()


def next_change(tz: tzinfo, u: datetime, until: datetime) -> datetime | None:
    """Return the first instant in ``(u, until]`` whose UTC offset differs from *u*'s.

    Looks a day at a time, then to the second: it assumes a zone never
    changes its offset and changes it back within one day.
    """
    if zone_key(tz) in _FIXED or until <= u:
        return None
    a = u.replace(microsecond=0)
    start = _offset(a, tz)
    while a < until:
        b = min(a + _DAY, until.replace(microsecond=0) + _SECOND)
        if _offset(b, tz) != start:
            change = _transition(tz, a, b)
            return change if change <= until else None
        a = b
    return None


def previous_change(tz: tzinfo, u: datetime, since: datetime) -> datetime | None:
    """Return where the run of *u*'s UTC offset began, if after *since*.

    That is the instant ``s`` in ``(since, u]`` such that every instant in
    ``[s, u]`` has *u*'s offset and the instant before ``s`` does not; ``None``
    when the offset is the same all along ``[since, u]``.
    """
    if zone_key(tz) in _FIXED or u <= since:
        return None
    b = u.replace(microsecond=0)
    target = _offset(b, tz)
    while b > since:
        a = max(b - _DAY, since.replace(microsecond=0))
        if _offset(a, tz) != target:
            return _transition(tz, a, b)
        b = a
    return None


_FIXED = {"UTC", "Etc/UTC", "Etc/GMT", "GMT", "Etc/Universal", "Etc/Zulu"}
