"""Which runs a durable schedule owes, from its stored high-water mark.

Pure functions of the trigger, the stored progress and the store's clock, so
that every store (and every worker of a shared one) decides alike, inside
the transaction that records the new high-water mark: no fire time runs
twice, across restarts and across workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from aioscheduler._schedules import MISSED_COUNT_LIMIT, jitter_delay
from aioscheduler._trigger import Trigger

__all__ = ["FirePlan", "from_micros", "plan_fires", "to_micros"]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND: Final = timedelta(microseconds=1)


def to_micros(when: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (exact)."""
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    """The aware UTC datetime *micros* microseconds after the epoch (exact)."""
    return _EPOCH + timedelta(microseconds=micros)


@dataclass(frozen=True, slots=True)
class FirePlan:
    """The runs to add (fire time, due time), and the schedule's new progress."""

    runs: list[tuple[int, int]]
    missed: int
    high_water: int
    next_fire: int | None


def plan_fires(
    schedule_id: str,
    trigger: Trigger,
    *,
    next_fire: int,
    high_water: int | None,
    now: int,
    coalesce: str,
    max_catchup: int,
    misfire_grace: float | None,
    jitter: float | None,
    runs_left: int | None,
) -> FirePlan | None:
    """Return the runs owed at *now*, or ``None`` if *next_fire* is not due.

    As for in-memory schedules: when several fire times are due at once,
    ``coalesce`` picks the run(s) ("latest", "earliest", or the latest
    *max_catchup* for "all"); then a picked run that could only start later
    than its fire time plus *misfire_grace* does not run. Those that do not
    run count in ``missed`` (exactly up to ``MISSED_COUNT_LIMIT``).
    """
    if next_fire > now:
        return None
    first = from_micros(next_fire)
    wall_now = from_micros(now)
    latest = trigger._last_at_or_before(wall_now)
    if latest is None or latest < first:
        latest = first
    latest = latest.astimezone(UTC)
    floor = first - _ONE_MICROSECOND if high_water is None else from_micros(high_water)
    if latest == first or coalesce == "latest":
        picked = [latest]
    elif coalesce == "earliest":
        picked = [first]
    else:
        picked = [latest]
        while len(picked) < max_catchup:
            before = trigger._last_at_or_before(picked[-1] - _ONE_MICROSECOND)
            if before is None or before <= floor:
                break
            picked.append(before.astimezone(UTC))
        picked.reverse()
    if latest == first:
        due = 1
    else:
        due = trigger._count_between(floor, latest, MISSED_COUNT_LIMIT + len(picked))
    missed = min(max(0, due - len(picked)), MISSED_COUNT_LIMIT)
    following = trigger._next_after(latest)
    fires: list[tuple[int, int]] = []
    for fire in picked:
        if misfire_grace is not None and (wall_now - fire).total_seconds() > (
            misfire_grace + 2e-6
        ):
            missed += 1
            continue
        if runs_left is not None and len(fires) >= runs_left:
            break
        delay = 0.0
        if jitter:
            after = following if fire == latest else trigger._next_after(fire)
            delay = jitter_delay(schedule_id, fire, jitter, after)
        fire_us = to_micros(fire)
        fires.append((fire_us, fire_us + round(delay * 1_000_000)))
    next_us = None if following is None else to_micros(following)
    if runs_left is not None and len(fires) >= runs_left:
        next_us = None
    return FirePlan(fires, missed, to_micros(latest), next_us)
