"""What every store shares: its rows as records, its options, its decisions.

SQLiteStore and PostgresStore keep the same columns and make the same
records of them; the SQL itself (placeholders, locking, transactions) stays
in each store.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Final

from aioscheduler._time import option_seconds
from aioscheduler._trigger import Trigger
from aioscheduler._triggers import trigger_from_dict

from ._fires import FirePlan, from_micros, plan_fires
from ._interface import JobRecord, NewJob, ScheduleRecord

__all__ = [
    "JOB_COLUMNS",
    "LIVE",
    "PURGE_EVERY_US",
    "SCHEDULE_COLUMNS",
    "job_record",
    "keep_micros",
    "lost_records",
    "missed_record",
    "new_job_values",
    "plan_schedule",
    "read_trigger",
    "run_values",
    "schedule_record",
    "stats_dict",
]

logger = logging.getLogger("aioscheduler")

#: The columns of a :class:`JobRecord`, in its order.
JOB_COLUMNS: Final = (
    "key, function, arguments, due, state, attempt, delivery, misfire_grace, "
    "schedule_id, ready, lease_owner, lease_until, finished, result, error"
)
#: The columns of a :class:`ScheduleRecord`, in its order.
SCHEDULE_COLUMNS: Final = (
    "id, trigger, function, arguments, delivery, misfire_grace, coalesce, "
    "max_catchup, overlap, jitter, max_runs, next_fire, high_water, runs, missed, "
    "skipped, error"
)
#: The states of a job not finished yet.
LIVE: Final = ("pending", "running")
#: Kept rows are purged at most this often (microseconds of store time).
PURGE_EVERY_US: Final = 60_000_000


def keep_micros(
    keep_results: object, keep_failed: object
) -> tuple[int | None, int | None]:
    """The ``keep_results`` and ``keep_failed`` options in microseconds
    (``None``, or 0, keeps nothing)."""
    keep = option_seconds(keep_results, "keep_results")
    failed = option_seconds(keep_failed, "keep_failed")
    return (
        None if not keep else round(keep * 1e6),
        None if not failed else round(failed * 1e6),
    )


def job_record(row: Any) -> JobRecord:
    """The record of a row read as :data:`JOB_COLUMNS`."""
    return JobRecord(*row)


def schedule_record(row: Any) -> ScheduleRecord:
    """The record of a row read as :data:`SCHEDULE_COLUMNS`."""
    return ScheduleRecord(*row)


def _record_dict(record: JobRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__slots__}


def lost_records(lost: list[JobRecord], error: str) -> list[JobRecord]:
    """*lost* as they are once marked lost, for *error*."""
    return [
        JobRecord(**{**_record_dict(r), "state": "lost", "error": error}) for r in lost
    ]


def missed_record(row: Any, now: int) -> JobRecord:
    """The record of a claimed job missed at *now* (past its misfire_grace).

    *row*: id, key, function, arguments, due, ready, attempt (already
    counted for this claim), delivery, misfire_grace, schedule_id.
    """
    late = (now - row[4]) / 1e6
    return JobRecord(
        key=row[1],
        function=row[2],
        arguments=row[3],
        due=row[4],
        state="missed",
        attempt=row[6] - 1,
        delivery=row[7],
        misfire_grace=row[8],
        schedule_id=row[9],
        ready=row[5],
        lease_owner=None,
        lease_until=None,
        finished=now,
        result=None,
        error=f"started {late:.3f} s late, past misfire_grace={row[8]} s",
    )


def new_job_values(job: NewJob, now: int) -> tuple[Any, ...]:
    """The values of a new pending row for *job*, for the columns
    ``key, function, arguments, due, ready, delivery, misfire_grace,
    schedule_id, created``."""
    return (
        job.key,
        job.function,
        job.arguments,
        job.due,
        job.due,
        job.delivery,
        job.misfire_grace,
        job.schedule_id,
        now,
    )


def run_values(sc: ScheduleRecord, fire: int, due: int, now: int) -> tuple[Any, ...]:
    """The values of the pending row of *sc*'s run for *fire* (due at *due*),
    for the columns of :func:`new_job_values`."""
    return (
        f"{sc.id}@{from_micros(fire).isoformat()}",
        sc.function,
        sc.arguments,
        fire,
        due,
        sc.delivery,
        sc.misfire_grace,
        sc.id,
        now,
    )


def read_trigger(sc: ScheduleRecord) -> Trigger | str:
    """*sc*'s trigger, or why it cannot be read (logged: the store sets the
    schedule aside, kept and visible but not fired, rather than fail every
    claim of every worker)."""
    try:
        return trigger_from_dict(json.loads(sc.trigger))
    except (ValueError, TypeError, KeyError) as exc:
        # Written by a newer version, or a time zone this machine lacks.
        error = f"cannot read its trigger: {exc}"
        logger.warning(
            "durable schedule %r is set aside: %s; it keeps its row "
            "(python -m aioscheduler jobs schedules) and does not fire "
            "until added again",
            sc.id,
            error,
        )
        return error


def plan_schedule(sc: ScheduleRecord, trigger: Trigger, now: int) -> FirePlan:
    """The runs the due schedule *sc* owes at *now* (see :func:`plan_fires`)."""
    assert sc.next_fire is not None
    plan = plan_fires(
        sc.id,
        trigger,
        next_fire=sc.next_fire,
        high_water=sc.high_water,
        now=now,
        coalesce=sc.coalesce,
        max_catchup=sc.max_catchup,
        misfire_grace=sc.misfire_grace,
        jitter=sc.jitter,
        runs_left=None if sc.max_runs is None else sc.max_runs - sc.runs,
    )
    assert plan is not None
    return plan


def stats_dict(
    counts: dict[str, int],
    schedules: int,
    next_due: int | None,
    oldest: int | None,
    now: int,
) -> dict[str, Any]:
    """A store's ``stats()``: *oldest* is the earliest ready time of a
    pending job, overdue only if at or before *now*."""
    return {
        "counts": counts,
        "schedules": schedules,
        "next_due": next_due,
        "oldest_overdue": oldest if oldest is not None and oldest <= now else None,
    }
