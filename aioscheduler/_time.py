"""Conversions at the API boundary: datetime / timedelta / seconds -> numbers.

The core works in floats only: POSIX timestamps here, loop-clock deadlines in
the scheduler (a timestamp minus the scheduler's wall-to-loop offset).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Final

__all__ = [
    "MAX_TIMESTAMP",
    "delay_seconds",
    "option_seconds",
    "past_message",
    "timestamp_of",
]

_EPOCH_NAIVE: Final = datetime(1970, 1, 1)
_EPOCH_AWARE: Final = datetime(1970, 1, 1, tzinfo=UTC)

#: The POSIX timestamp of the latest instant a datetime can hold.
MAX_TIMESTAMP: Final = (datetime.max.replace(tzinfo=UTC) - _EPOCH_AWARE).total_seconds()


def timestamp_of(when: object, prefer_utc: bool) -> float:
    """Return the POSIX timestamp of *when*.

    A naive datetime is UTC when *prefer_utc* is true (what
    ``datetime.utcnow()`` gives), local time otherwise; an aware one is that
    instant.

    :raises TypeError: if *when* is not a :class:`~datetime.datetime`
    """
    if not isinstance(when, datetime):
        raise TypeError(f"when must be a datetime.datetime, not {type(when).__name__}")
    if when.tzinfo is None and prefer_utc:
        # Subtracting a naive epoch is exact and avoids the local-time lookup
        # that naive .timestamp() would do.
        return (when - _EPOCH_NAIVE).total_seconds()
    return when.timestamp()


def delay_seconds(delay: object) -> float:
    """Return *delay* (seconds as ``int``/``float``, or a ``timedelta``) in seconds.

    :raises TypeError: if *delay* is not a number or ``timedelta`` (``bool``
        is refused: ``start_after(True, ...)`` is almost surely a mistake)
    :raises ValueError: if *delay* is negative or not finite
    """
    kind = type(delay)
    if kind is float or kind is int:
        seconds = float(delay)  # type: ignore[arg-type]
    elif isinstance(delay, timedelta):
        seconds = delay.total_seconds()
    elif isinstance(delay, int | float) and not isinstance(delay, bool):
        seconds = float(delay)
    else:
        raise TypeError(
            "delay must be a number of seconds (int or float) or a "
            f"datetime.timedelta, not {type(delay).__name__}"
        )
    if seconds < 0:
        raise ValueError(f"delay must not be negative, got {delay!r}")
    if not math.isfinite(seconds):
        raise ValueError(f"delay must be finite, got {delay!r}")
    return seconds


def option_seconds(
    value: object, name: str, *, allow_none: bool = True
) -> float | None:
    """Return the option *name* (seconds or a timedelta; or None, if
    *allow_none*) as float seconds.

    :raises TypeError: if *value* is not a number (``bool`` is refused) or a
        ``timedelta`` (or ``None``, if allowed)
    :raises ValueError: if *value* is negative or not finite
    """
    if value is None and allow_none:
        return None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        kinds = "seconds (int or float), a timedelta"
        kinds += " or None" if allow_none else ""
        raise TypeError(f"{name} must be {kinds}, not {type(value).__name__}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{name} must be 0 or more and finite, got {value!r}")
    return seconds


def past_message(when: datetime, timestamp: float, now: float, prefer_utc: bool) -> str:
    """Return why *when* (at *timestamp*) is refused as past at wall time *now*.

    Starts with the 1.x text, then says by how much, and, for a naive
    datetime, how it was read: ``datetime.now()`` west of UTC, read as UTC,
    is hours in the past.
    """
    message = (
        f"May only be in the future. {when.isoformat()} is "
        f"{now - timestamp:.3f} s in the past"
    )
    if when.tzinfo is None:
        if prefer_utc:
            message += (
                "; it is naive, so it was read as UTC because prefer_utc=True "
                "(pass an aware datetime, e.g. datetime.now(UTC) + timedelta(...))"
            )
        else:
            message += (
                "; it is naive, so it was read as local time because "
                "prefer_utc=False (pass an aware datetime to be exact)"
            )
    return message + "."


def naive_to_utc(when: datetime, prefer_utc: bool) -> datetime:
    """Return the aware UTC datetime a naive *when* stands for."""
    if prefer_utc:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def utc_from_timestamp(timestamp: float) -> datetime:
    """Return the aware UTC datetime of a POSIX *timestamp*."""
    return _EPOCH_AWARE + timedelta(seconds=timestamp)
