"""Durable jobs inside a scheduler: the feeder, the runner and group commit.

Data flows one way, as for volatile jobs: a durable add validates its input
and commits a row (concurrent adds share one commit); the scheduler's feeder
claims the rows that are due (never earlier) and starts each as an ordinary
job, which records its outcome on the row when it ends. The process holds
only the jobs it has claimed: millions can wait in the store.
"""

from __future__ import annotations

import contextvars
import json
import logging
import math
import os
import socket
import uuid
import weakref
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

import anyio

from ._exceptions import JobConflict, StoreError
from ._registry import DurableFunction, decode_arguments, encode_arguments, registered
from ._registry import resolve as resolve_function
from ._waiting import Room
from .stores._fires import from_micros
from .stores._interface import (
    AddResult,
    ClaimedJob,
    ClaimToken,
    Finished,
    JobRecord,
    JobStore,
    NewJob,
)

if TYPE_CHECKING:
    from ._task import Task
    from ._timed import TimedScheduler

__all__ = ["DurableRun", "DurableRuntime", "JobContext", "current_job", "new_key"]

logger = logging.getLogger("aioscheduler")

#: A claimed job's lease (seconds); renewed every third of it while it runs.
LEASE: Final = 30.0
#: At most this many jobs per claim.
CLAIM_BATCH: Final = 256
#: After a store failure the feeder tries again after 0.5 s, 1 s, 2 s ... at
#: most this.
STORE_RETRY_MIN: Final = 0.5
STORE_RETRY_MAX: Final = 30.0
#: An unknown function's jobs are retried after 1 s, 2 s, 4 s ... at most this.
UNKNOWN_BACKOFF_MAX: Final = 300.0

OnConflict = Literal["error", "keep", "replace"]
_ON_CONFLICT: Final = ("error", "keep", "replace")


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a durable job knows about its own run; see :func:`current_job`.

    .. versionadded:: 2.0
    """

    key: str
    """The job's key (given at the add, or generated)."""

    attempt: int
    """1 on the first run; one more each time the job is started again after
    a run was interrupted (its process died, or its scheduler stopped)."""

    scheduled: datetime
    """When it was due (aware UTC); for a schedule's run, its fire time
    before jitter."""

    started: datetime
    """When this run started, by the scheduler's wall clock (aware UTC)."""

    function: str
    """The name the function is registered under."""

    schedule_id: str | None
    """The durable schedule that made this run, or ``None``."""

    @property
    def lateness(self) -> timedelta:
        """How long after ``scheduled`` this run started (0 or more)."""
        return max(self.started - self.scheduled, timedelta(0))


_current: contextvars.ContextVar[DurableRun] = contextvars.ContextVar(
    "aioscheduler_durable_job"
)


def current_job() -> JobContext:
    """Return the :class:`JobContext` of the durable job running this code.

    ::

        @aioscheduler.durable
        async def send_reminder(user_id: int) -> None:
            job = aioscheduler.current_job()
            if job.attempt > 1:
                ...  # ran before and was interrupted: check what it did

    :raises LookupError: outside a durable job

    .. versionadded:: 2.0
    """
    try:
        run = _current.get()
    except LookupError:
        raise LookupError("current_job() is called outside a durable job") from None
    return run.context()


def new_key() -> str:
    """A key for a job added without one: 128 random bits, 32 hex digits.

    (``uuid.uuid4().hex`` looks the same and costs 3-4x more: a UUID object
    per key, a fifth of a batched add's time on the event loop.)
    """
    return os.urandom(16).hex()


def check_on_conflict(on_conflict: object) -> None:
    if on_conflict not in _ON_CONFLICT:
        raise ValueError(
            f"on_conflict must be 'error', 'keep' or 'replace', not {on_conflict!r}"
        )


def check_key(key: object) -> str:
    if key is None:
        return new_key()
    if not isinstance(key, str):
        raise TypeError(f"key must be a str or None, not {type(key).__name__}")
    if not key or len(key) > 500:
        raise ValueError(f"key must be 1 to 500 characters, got {key!r:.80}")
    return key


def make_job(
    async_fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any] | None,
    *,
    key: str | None,
    due: int,
    on_conflict: object,
    misfire_grace: float | None,
) -> NewJob:
    """Validate a durable add; return the row to commit."""
    check_on_conflict(on_conflict)
    entry = registered(async_fn)  # TypeError for what cannot be found again
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise TypeError(f"kwargs must be a mapping or None, not {kwargs!r}")
    arguments = encode_arguments(args, kwargs)
    return NewJob(
        key=check_key(key),
        function=entry.name,
        arguments=arguments,
        due=due,
        delivery=entry.delivery,
        misfire_grace=misfire_grace,
        replace=on_conflict == "replace",
    )


class _Batch:
    __slots__ = ("done", "error", "jobs", "results")

    def __init__(self) -> None:
        self.jobs: list[NewJob] = []
        self.results: list[AddResult] = []
        self.error: BaseException | None = None
        self.done = anyio.Event()


class StoreLink:
    """What the users of one store in this process share: group commit, and
    the feeders to wake when a job due soon is added."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self.runtimes: list[DurableRuntime] = []
        self._batch: _Batch | None = None
        self._lock: anyio.Lock | None = None

    async def add(self, job: NewJob, on_conflict: str) -> AddResult:
        """Commit *job*, sharing the commit with concurrent adds."""
        batch = self._batch
        if batch is not None:
            batch.jobs.append(job)
            index = len(batch.jobs) - 1
            await batch.done.wait()
        else:
            batch = self._batch = _Batch()
            batch.jobs.append(job)
            index = 0
            await self._commit(batch)
        if batch.error is not None:
            if isinstance(batch.error, StoreError):
                raise StoreError(str(batch.error)) from batch.error
            raise batch.error
        result = batch.results[index]
        if result == "exists" and on_conflict == "error":
            raise JobConflict(
                f"a pending or running job has the key {job.key!r}; pass "
                "on_conflict='keep' or 'replace' to reuse the key"
            )
        if result == "exists" and on_conflict == "replace":
            raise JobConflict(
                f"the job with the key {job.key!r} is running and cannot be "
                "replaced; add the new one once it has ended"
            )
        return result

    async def add_many(self, jobs: list[NewJob], on_conflict: list[str]) -> None:
        """Commit *jobs* in one transaction of their own (a durable batch);
        *on_conflict* is each job's policy."""
        with anyio.CancelScope(shield=True):
            lock = self._lock
            if lock is None:
                lock = self._lock = anyio.Lock()
            async with lock:
                results = await self.store.add(jobs)
        taken = [
            job.key
            for job, result, policy in zip(jobs, results, on_conflict, strict=True)
            if result == "exists" and policy != "keep"
        ]
        earliest = min(
            (j.due for j, r in zip(jobs, results, strict=True) if r != "exists"),
            default=None,
        )
        if earliest is not None:
            for runtime in self.runtimes:
                runtime.job_added(earliest)
        if taken:
            shown = ", ".join(repr(key) for key in taken[:10])
            more = f" and {len(taken) - 10} more" if len(taken) > 10 else ""
            raise JobConflict(
                f"{len(taken)} job(s) of the batch were not added: a pending or "
                f"running job has the key ({shown}{more}); the others were "
                "committed"
            )

    async def _commit(self, batch: _Batch) -> None:
        # Shielded: the adds that joined this batch wait for it, so it
        # commits even if the caller that leads it is cancelled.
        with anyio.CancelScope(shield=True):
            lock = self._lock
            if lock is None:
                lock = self._lock = anyio.Lock()
            async with lock:
                # From here on, later adds start the next batch (which waits
                # for this commit to end: that is where batches grow).
                if self._batch is batch:
                    self._batch = None
                try:
                    batch.results = await self.store.add(batch.jobs)
                except BaseException as exc:
                    batch.error = exc
                else:
                    # Here, not in each add: an add cancelled while it
                    # waited for this commit has its job committed too.
                    for job, result in zip(batch.jobs, batch.results, strict=False):
                        if result != "exists":
                            for runtime in self.runtimes:
                                runtime.job_added(job.due)
                finally:
                    batch.done.set()


_links: weakref.WeakKeyDictionary[Any, StoreLink] = weakref.WeakKeyDictionary()


def link_of(store: JobStore) -> StoreLink:
    link = _links.get(store)
    if link is None:
        link = _links[store] = StoreLink(store)
    return link


class _SlotWatch(Room):
    """Wakes a feeder held back by ``max_tasks`` when a slot frees.

    Put among its scheduler's rooms while the feeder sleeps for want of a
    slot: a volatile job that ends pokes no feeder otherwise.
    """

    __slots__ = ("_runtime",)

    def __init__(self, runtime: DurableRuntime) -> None:
        super().__init__((runtime.scheduler,), lambda: False)
        self._runtime = runtime

    def freed(self) -> None:
        self._runtime._poke()

    def wake_all(self) -> None:
        self._runtime._poke()


class DurableRun:
    """A claimed job, as the callback of its :class:`Task`."""

    __slots__ = (
        "cancel_requested",
        "claimed",
        "claimed_at",
        "entry",
        "runtime",
        "started",
    )

    def __init__(
        self,
        runtime: DurableRuntime,
        claimed: ClaimedJob,
        entry: DurableFunction,
        claimed_at: int,
    ) -> None:
        self.runtime = runtime
        self.claimed = claimed
        self.entry = entry
        self.claimed_at = claimed_at  # the store's clock at the claim
        self.started = 0
        # Set by Task.cancel() / scheduler.cancel(): only a cancellation
        # asked for deletes the job. Any other (a cancel scope around the
        # scheduler) interrupts it, as a shutdown does.
        self.cancel_requested = False

    def __call__(self) -> Coroutine[Any, Any, Any]:
        return self._run()

    def __repr__(self) -> str:
        return f"<durable {self.entry.name} key={self.claimed.key!r}>"

    def context(self) -> JobContext:
        """This run's :class:`JobContext` (made when asked: most jobs never ask)."""
        job = self.claimed
        return JobContext(
            key=job.key,
            attempt=job.token.attempt,
            scheduled=from_micros(job.due),
            started=from_micros(self.started),
            function=job.function,
            schedule_id=job.schedule_id,
        )

    async def _run(self) -> Any:
        runtime = self.runtime
        # It starts after its claim: a read of the wall clock that comes out
        # earlier (two clocks read a moment apart) is noise. Never 0, which
        # means "not started".
        self.started = max(runtime.wall_now(), self.claimed_at, 1)
        _current.set(self)
        try:
            args, kwargs = decode_arguments(self.claimed.arguments)
            value = await self.entry.fn(*args, **kwargs)
        except BaseException as exc:
            runtime.run_ended(self, exc, None)
            raise
        runtime.run_ended(self, None, value)
        return value


class DurableRuntime:
    """A scheduler's side of its store: claims due jobs and starts them.

    One per scheduler; a Manager's schedulers share the store (and its
    :class:`StoreLink`), each claiming for itself.
    """

    def __init__(self, scheduler: TimedScheduler, store: JobStore, limit: int) -> None:
        self.scheduler = scheduler
        self.store = store
        self.link = link_of(store)
        self.limit = limit
        self.owner = _new_owner()
        self.closing = False
        self.claiming = True
        # Whether the store keeps results: if not, none is encoded.
        self.keeps_results: bool = getattr(store, "keeps_results", True)
        # A store that others share sets its lease; one process's own store
        # never expires it (SQLite), so the default only paces renewal.
        self.lease: float = getattr(store, "lease", LEASE)
        self.opened = False
        # Claimed and running: token -> its Task.
        self.running: dict[ClaimToken, Task[Any]] = {}
        self.finished: list[Finished] = []
        self._wake: anyio.Event = anyio.Event()
        self._sleeping = False
        self._sleeping_until = -math.inf  # store time (µs) of the wake-up
        self._added_due = math.inf  # the earliest job added while awake
        self._unknown: dict[str, int] = {}  # function name -> retries so far
        self._slot_watch = _SlotWatch(self)
        self._hinted = False  # another process added a job due soon
        self._store_failures = 0  # claims failed in a row (see STORE_RETRY_*)
        # Running jobs' leases: held until this loop time (see _watch_leases).
        self._held_until: dict[ClaimToken, float] = {}
        self._some_running = anyio.Event()

    # -- clocks ---------------------------------------------------------------------

    def wall_now(self) -> int:
        """The scheduler's wall time in microseconds (virtual under a mock clock).

        On a loop whose clock is the monotonic clock this is the wall clock
        itself, read once: a claim never sees a time ahead of it, so no job
        starts early by it. Under a virtual loop clock, the loop clock plus
        the scheduler's wall offset (what ``now()`` gives).
        """
        s = self.scheduler
        if s._fast_offset is not None:
            return math.floor(s._wall_clock() * 1_000_000)
        return math.floor((s._clock() + s._read_wall_offset()) * 1_000_000)

    # -- lifecycle ------------------------------------------------------------------

    async def open(self) -> None:
        await self.store.open()
        self.opened = True
        if not self.link.runtimes:
            # The first user of the store (again): its commit lock belongs
            # to this event loop, which may not be the last user's.
            self.link._lock = None
        self.link.runtimes.append(self)

    async def close(self) -> None:
        """Record what ended (and give back what was interrupted), then close."""
        if not self.opened:
            return
        self.opened = False
        self.link.runtimes.remove(self)
        with anyio.CancelScope(shield=True):
            try:
                if self.finished:
                    finished, self.finished = self.finished, []
                    await self.store.finish(finished, now=self.wall_now())
                # Every job has ended: those still here were claimed as we
                # closed and cancelled before their first step, so they never
                # ran. They go back as they were (not left leased to us).
                for token in list(self.running):
                    del self.running[token]
                    await self.store.release(
                        token, ready=self.wall_now(), count_attempt=False
                    )
            finally:
                await self.store.close()

    # -- wake-ups ---------------------------------------------------------------------

    def job_added(self, due: int) -> None:
        if not self._sleeping:
            # Added while we claim: that claim may not have seen it (with a
            # store that runs transactions side by side). Looked at before
            # we sleep.
            self._added_due = min(self._added_due, due)
        elif due < self._sleeping_until and self.claiming:
            self._wake.set()

    def _poke(self) -> None:
        if self._sleeping:
            self._wake.set()

    # -- the feeder ---------------------------------------------------------------

    async def feed(self) -> None:
        """Claim due jobs and start them, until the scheduler closes.

        A store shared with other processes (one with ``wait_for_jobs``,
        such as PostgresStore) is also listened to: another process's add
        of a job due soon wakes the feeder, and ``poll_interval`` caps its
        sleeps (notifications are hints; the poll covers lost ones).
        """
        wait_for_jobs = getattr(self.store, "wait_for_jobs", None)
        async with anyio.create_task_group() as group:
            group.start_soon(self._renew_leases)
            if getattr(self.store, "expires_leases", False):
                group.start_soon(self._watch_leases)
            if wait_for_jobs is not None:
                group.start_soon(self._listen, wait_for_jobs)
            await self._feed()

    async def _listen(self, wait_for_jobs: Callable[[float], Any]) -> None:
        poll = float(getattr(self.store, "poll_interval", 5.0))
        while True:
            if await wait_for_jobs(poll):
                # Claim again: now if asleep with room, else after the
                # claim under way (which may have begun before the add).
                self._hinted = True
                if self._sleeping_until > -math.inf:
                    self._wake.set()

    async def _feed(self) -> None:
        s = self.scheduler
        store = self.store
        poll = getattr(store, "poll_interval", None)
        while True:
            free = self.limit - len(self.running)
            if s._closed or not self.claiming:
                # Draining, or leaving `async with`: start nothing new, and
                # record what ends.
                free = 0
            elif s._max_tasks is not None:
                free = min(free, s._max_tasks - s._loads[s._slot])
            now = self.wall_now()
            claimed_at = s._clock()
            finished, self.finished = self.finished, []
            self._added_due = math.inf
            self._hinted = False
            # Shielded: jobs claimed must be started (or given back), not
            # left leased to us until a restart.
            failed: StoreError | None = None
            with anyio.CancelScope(shield=True):
                try:
                    claim = await store.claim(
                        self.owner,
                        now=now,
                        limit=max(0, min(free, CLAIM_BATCH)),
                        lease=self.lease,
                        finished=finished,
                    )
                except StoreError as exc:
                    # The store failed (the database went away, the disk is
                    # full): nothing was recorded or claimed. Keep the
                    # outcomes, wait, and try again; the running jobs go on
                    # (on a shared store, past their lease they are the
                    # watchdog's).
                    self.finished[:0] = finished
                    failed = exc
                except BaseException:
                    # Nothing was recorded: close() records them.
                    self.finished[:0] = finished
                    raise
            if failed is not None:
                # A claim whose connection died may have committed all the
                # same: its jobs would be leased to us, unknown to us, and a
                # worker never expires its own leases. Claim under a new
                # name from now on, so that those leases lapse and are
                # resolved like any dead worker's (running jobs keep their
                # tokens, old name included).
                self.owner = _new_owner()
                backoff = min(
                    STORE_RETRY_MIN * 2**self._store_failures, STORE_RETRY_MAX
                )
                self._store_failures += 1
                logger.warning(
                    "the store failed (%s); trying again in %.1f s", failed, backoff
                )
                await anyio.sleep(backoff)
                continue
            if self._store_failures:
                logger.warning("the store works again")
                self._store_failures = 0
            self._report(
                claim.missed, claim.lost, claim.rejected, claim.schedule_missed
            )
            released = False
            jobs = claim.jobs
            if jobs and (s._closed or not self.claiming):
                # The body ended (or the scheduler closed) while this claim
                # was under way: leaving `async with` may already have
                # stopped waiting for jobs. Start nothing: give them back.
                with anyio.CancelScope(shield=True):
                    for job in jobs:
                        await store.release(
                            job.token, ready=claim.now, count_attempt=False
                        )
                jobs = []
            for job in jobs:
                released |= not await self._start(job, claim.now, claimed_at)
            # A job given back (unknown function) is due again later than
            # claim.next_due says: claim again to learn when.
            if self.finished or released:
                continue
            room = free - len(claim.jobs) > 0
            next_due = claim.next_due
            if room and (
                self._hinted or (next_due is not None and next_due <= claim.now)
            ):
                await anyio.lowlevel.checkpoint()
                continue
            # Held back by max_tasks (not by our own limit): a slot that
            # frees must wake us, whichever job ends.
            max_tasks = s._max_tasks
            slots = False
            if max_tasks is not None and not room and not s._closed:
                slots = self.claiming and self.limit > len(self.running)
                if slots and max_tasks > s._loads[s._slot]:
                    continue  # a slot freed during the claim
            # Sleep until the next job is due (by the store's clock), a
            # lease needs renewing, or someone wakes us.
            wait = math.inf
            if next_due is not None and room:
                # Capped: notice a step of the wall clock within wall_poll.
                wait = min((next_due - claim.now) / 1e6, s._wall_poll)
            if poll is not None and room:
                wait = min(wait, poll)  # other processes add jobs too
            wake_at = claim.now + wait * 1e6
            if room and self._added_due < wake_at:
                continue  # added during the claim, due before we would wake
            self._wake = anyio.Event()
            # An add wakes us only if its job is due before we would wake
            # anyway, and only while we have room to start it.
            self._sleeping_until = -math.inf if not room else wake_at
            self._sleeping = True
            if slots:
                s._rooms.append(self._slot_watch)
            try:
                with anyio.move_on_after(max(wait, 0.0)):
                    await self._wake.wait()
            finally:
                self._sleeping = False
                self._sleeping_until = -math.inf
                if slots:
                    s._rooms.remove(self._slot_watch)

    async def _renew_leases(self) -> None:
        """Extend the leases of the running jobs every third of a lease.

        A task of its own, so that renewal does not wait for the feeder's
        sleep. Each lease is held until (the loop time the extend was asked
        for) + lease; see :meth:`_watch_leases`.
        """
        while True:
            if not self.running:
                self._some_running = anyio.Event()
                await self._some_running.wait()
            await anyio.sleep(self.lease / 3)
            if self.running:
                await self._renew()

    async def _watch_leases(self) -> None:
        """Cancel our own runs whose lease is about to lapse unrenewed.

        For stores whose leases expire while their worker lives (shared
        stores): past its lease another worker may claim the job, so a
        worker that could not renew in time (its store calls stuck, the
        database cut off) stops running it rather than run it beside the
        other. A sixth of the lease is kept as a margin.
        """
        s = self.scheduler
        margin = self.lease / 6
        while True:
            now = s._clock()
            soonest = math.inf
            for token, until in list(self._held_until.items()):
                if until - margin > now:
                    soonest = min(soonest, until - margin)
                    continue
                del self._held_until[token]
                task = self.running.pop(token, None)
                if task is not None:
                    logger.warning(
                        "%r: its lease could not be renewed in time (another "
                        "worker may claim it once it lapses): cancelled",
                        task,
                    )
                    task.cancel()
            await anyio.sleep(min(soonest - now, self.lease / 6))

    async def _renew(self) -> None:
        tokens = list(self.running)
        asked_at = self.scheduler._clock()
        try:
            with anyio.CancelScope(shield=True):
                held = await self.store.extend(
                    tokens, now=self.wall_now(), lease=self.lease
                )
        except StoreError as exc:
            # Tried again at the next round; if the lease lapses meanwhile,
            # the watchdog (shared stores) stops the runs.
            logger.warning("renewing the leases failed: %s", exc)
            return
        for token in held:
            if token in self._held_until:
                self._held_until[token] = asked_at + self.lease
        for token in tokens:
            if token not in held:
                self._held_until.pop(token, None)
                task = self.running.pop(token, None)
                if task is not None:
                    logger.warning(
                        "%r lost its lease (another worker may run it): cancelled",
                        task,
                    )
                    task.cancel()

    async def _start(self, job: ClaimedJob, claimed_at: int, held_from: float) -> bool:
        """Start *job*; ``False`` if it was given back (unknown function)."""
        entry = resolve_function(job.function)
        if entry is None:
            await self._unknown_function(job)
            return False
        self._unknown.pop(job.function, None)
        run = DurableRun(self, job, entry, claimed_at)
        task = self.scheduler._start_durable(run, from_micros(job.due))
        self._held_until[job.token] = held_from + self.lease
        if not self._some_running.is_set():
            self._some_running.set()
        self.running[job.token] = task
        return True

    async def _unknown_function(self, job: ClaimedJob) -> None:
        tries = self._unknown.get(job.function, 0)
        self._unknown[job.function] = tries + 1
        backoff = min(2.0**tries, UNKNOWN_BACKOFF_MAX)
        logger.warning(
            "durable job %r names the function %r, which this process has not "
            "registered (renamed or removed?); it is kept and tried again in "
            "%.0f s. Register it with @aioscheduler.durable(%r)",
            job.key,
            job.function,
            backoff,
            job.function,
        )
        with anyio.CancelScope(shield=True):
            await self.store.release(
                job.token,
                ready=self.wall_now() + round(backoff * 1e6),
                count_attempt=False,
            )

    def _report(
        self,
        missed: list[JobRecord],
        lost: list[JobRecord],
        rejected: list[ClaimToken],
        schedule_missed: dict[str, int],
    ) -> None:
        for record in missed:
            logger.warning(
                "durable job %r (%s) due %s did not run: %s",
                record.key,
                record.function,
                from_micros(record.due).isoformat(),
                record.error,
            )
        for record in lost:
            logger.warning(
                "durable job %r (%s) is recorded as lost: %s",
                record.key,
                record.function,
                record.error,
            )
        for token in rejected:
            logger.warning(
                "the outcome of durable job #%s (attempt %s) was not recorded: "
                "its lease was lost, and another worker may have run it",
                token.id,
                token.attempt,
            )
        for schedule_id, count in schedule_missed.items():
            logger.warning(
                "durable schedule %r missed %d fire time(s) (coalesced or past "
                "misfire_grace)",
                schedule_id,
                count,
            )

    # -- a run ended --------------------------------------------------------------

    def never_started(self, run: DurableRun) -> None:
        """A claimed job was cancelled before it started: give it back."""
        token = run.claimed.token
        self._held_until.pop(token, None)
        if self.running.pop(token, None) is None:
            return
        if self.closing or not run.cancel_requested:
            self.finished.append(Finished(token, "released"))
        else:
            self.finished.append(Finished(token, "cancelled"))
        self._poke()

    def run_ended(self, run: DurableRun, exc: BaseException | None, value: Any) -> None:
        token = run.claimed.token
        self._held_until.pop(token, None)
        if self.running.pop(token, None) is None:
            return  # its lease was lost: the store would refuse the outcome
        if exc is None:
            result = _json_or_none(value) if self.keeps_results else None
            self.finished.append(Finished(token, "done", result=result))
        elif isinstance(exc, anyio.get_cancelled_exc_class()):
            if self.closing or not run.cancel_requested:
                # Interrupted by our own shutdown, or by a cancellation from
                # outside the scheduler (which is about to stop it): as if
                # the process died.
                if run.claimed.delivery == "at_least_once":
                    self.finished.append(Finished(token, "interrupted"))
                else:
                    error = (
                        "interrupted by the scheduler's shutdown (delivery "
                        "at_most_once)"
                    )
                    logger.warning(
                        "durable job %r (%s) is recorded as lost: %s",
                        run.claimed.key,
                        run.claimed.function,
                        error,
                    )
                    self.finished.append(Finished(token, "lost", error=error))
            else:
                self.finished.append(Finished(token, "cancelled"))
        else:
            self.finished.append(
                Finished(token, "failed", error=f"{type(exc).__name__}: {exc}"[:2000])
            )
        self._poke()


def _new_owner() -> str:
    """A name for this worker's claims: host, process, and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _json_or_none(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return None
