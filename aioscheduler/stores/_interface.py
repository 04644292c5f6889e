"""The store interface: what a scheduler needs from wherever durable jobs live.

A scheduler talks to its store through :class:`JobStore` only, so the
embedded SQLite store and a multi-machine one (PostgreSQL) are
interchangeable. Times are integers: microseconds since the Unix epoch, UTC
(exact, and the same in SQLite and PostgreSQL).

A claimed job carries a :class:`ClaimToken` (row id, owner, attempt). Every
change after the claim (extend, finish, release) names the token and takes
effect only if the row still has that owner and attempt: a worker that lost
its lease cannot complete, release or extend a job another worker now owns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

__all__ = [
    "AddResult",
    "Claim",
    "ClaimToken",
    "ClaimedJob",
    "Finished",
    "JobRecord",
    "JobState",
    "JobStore",
    "NewJob",
    "NewSchedule",
    "ScheduleRecord",
]

#: A job's state in a store. ``pending`` and ``running`` are live; the others
#: are kept only for a while (see the store's ``keep_results``/``keep_failed``).
JobState = Literal["pending", "running", "done", "failed", "missed", "lost"]

#: What an add did: ``added``; ``exists`` (a live job has the key and the add
#: did not replace it: it was not asked to, or the job is running);
#: ``replaced``.
AddResult = Literal["added", "exists", "replaced"]


@dataclass(frozen=True, slots=True)
class NewJob:
    """A durable job to add."""

    key: str
    function: str
    arguments: str  # JSON: [args] or [args, kwargs]
    due: int  # microseconds since the epoch
    delivery: Literal["at_least_once", "at_most_once"]
    misfire_grace: float | None  # seconds; None: no limit
    replace: bool = False  # on a live job with this key: replace it, or keep it
    schedule_id: str | None = None


@dataclass(frozen=True, slots=True)
class ClaimToken:
    """The fencing token of one claim: which row, who holds it, which attempt."""

    id: int
    owner: str
    attempt: int


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job this worker now holds a lease on, to run at once."""

    token: ClaimToken
    key: str
    function: str
    arguments: str
    due: int
    delivery: Literal["at_least_once", "at_most_once"]
    schedule_id: str | None


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job as a store holds it (for reports, the command line and tests)."""

    key: str
    function: str
    arguments: str
    due: int
    state: JobState
    attempt: int
    delivery: Literal["at_least_once", "at_most_once"]
    misfire_grace: float | None
    schedule_id: str | None
    ready: int  # when it may be claimed (later than due after a backoff)
    lease_owner: str | None
    lease_until: int | None
    finished: int | None
    result: str | None  # JSON, if results are kept
    error: str | None


@dataclass(frozen=True, slots=True)
class Finished:
    """How a claimed job ended; see :meth:`JobStore.finish`."""

    token: ClaimToken
    # interrupted: by its own scheduler's shutdown; claimable again, as after
    # a crash (at-least-once). released: never started; claimable again, the
    # attempt not counted. cancelled: by the user; deleted.
    state: Literal["done", "failed", "lost", "cancelled", "interrupted", "released"]
    result: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Claim:
    """What one claim returned.

    ``jobs`` are in due order. ``missed`` were due longer ago than their
    ``misfire_grace`` and ``lost`` are at-most-once jobs whose lease expired
    (their worker died): both are recorded as such in the store and given
    here to be reported. ``rejected`` are the finish results that were
    fenced off (the lease was lost). ``now`` is the store's clock at the
    claim; ``next_due`` the earliest time a job not claimed becomes
    claimable (``None``: none is waiting).
    """

    jobs: list[ClaimedJob]
    now: int
    next_due: int | None
    missed: list[JobRecord] = field(default_factory=list)
    lost: list[JobRecord] = field(default_factory=list)
    rejected: list[ClaimToken] = field(default_factory=list)
    schedule_missed: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NewSchedule:
    """A durable recurring schedule to add; its trigger as JSON."""

    id: str
    trigger: str  # JSON of the anchored trigger's to_dict()
    # JSON of the trigger as given: replacing with an equal one keeps the
    # schedule's progress (Every() anchors at the time it is added).
    given: str
    function: str
    arguments: str
    delivery: Literal["at_least_once", "at_most_once"]
    misfire_grace: float | None
    coalesce: Literal["latest", "earliest", "all"]
    max_catchup: int
    overlap: Literal["skip", "allow"]
    jitter: float | None
    max_runs: int | None
    next_fire: int | None  # the first fire time, microseconds
    replace: bool = False


@dataclass(frozen=True, slots=True)
class ScheduleRecord:
    """A durable schedule as a store holds it."""

    id: str
    trigger: str
    function: str
    arguments: str
    delivery: Literal["at_least_once", "at_most_once"]
    misfire_grace: float | None
    coalesce: Literal["latest", "earliest", "all"]
    max_catchup: int
    overlap: Literal["skip", "allow"]
    jitter: float | None
    max_runs: int | None
    next_fire: int | None
    high_water: int | None  # the latest fire time handled (run or missed)
    runs: int
    missed: int
    skipped: int
    error: str | None = None  # why it was set aside (its trigger is unreadable)


@runtime_checkable
class JobStore(Protocol):
    """Where durable jobs and schedules live; see the "Durable jobs" guide.

    A store is opened by the scheduler (or Manager) that uses it, and closed
    when that one stops. Every method is a coroutine; implementations keep
    blocking I/O off the event loop (``anyio.to_thread``). Times are
    microseconds since the epoch.

    .. versionadded:: 2.0
    """

    async def open(self) -> None:
        """Connect, create or migrate the schema, and resolve leases left
        by a worker known to be dead."""

    async def close(self) -> None:
        """Disconnect; idempotent."""

    async def add(self, jobs: Sequence[NewJob]) -> list[AddResult]:
        """Commit *jobs* in one transaction; one result per job, in order."""

    async def cancel(self, key: str) -> bool:
        """Delete the pending job *key*; ``False`` if there is none pending."""

    async def claim(
        self,
        owner: str,
        *,
        now: int,
        limit: int,
        lease: float,
        finished: Sequence[Finished] = (),
    ) -> Claim:
        """Record *finished*, then claim up to *limit* jobs already due.

        In one transaction: expired leases are resolved by each job's
        delivery (at-least-once: claimable again; at-most-once: lost), due
        schedules produce their runs, and jobs whose ready time is at or
        before the store's clock are leased to *owner* for *lease* seconds,
        their attempt raised by one. Never a job not yet due. *now* is the
        caller's clock; a store with a clock of its own uses that instead.
        """

    async def extend(
        self, tokens: Sequence[ClaimToken], *, now: int, lease: float
    ) -> set[ClaimToken]:
        """Extend the leases of *tokens*; return those still held."""

    async def finish(self, results: Sequence[Finished], *, now: int) -> list[bool]:
        """Record how claimed jobs ended; ``False`` where the lease was lost."""

    async def release(
        self, token: ClaimToken, *, ready: int, count_attempt: bool
    ) -> bool:
        """Give a claimed job back, claimable again from *ready*."""

    async def next_due(self) -> int | None:
        """The earliest ready time of a pending job or due schedule."""

    async def add_schedule(self, schedule: NewSchedule) -> AddResult:
        """Commit a durable schedule (``replace``: replace one with its id)."""

    async def remove_schedule(self, id: str) -> bool:
        """Delete a durable schedule; ``False`` if there is none."""

    async def get_job(self, key: str) -> JobRecord | None:
        """The job with *key*, live or kept."""

    async def get_schedule(self, id: str) -> ScheduleRecord | None:
        """The durable schedule *id*."""
