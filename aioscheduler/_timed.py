"""TimedScheduler: each job at its own time, jobs running concurrently."""

from __future__ import annotations

import heapq
import math
import os
import time
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar, TypeVarTuple, Unpack

import anyio

from . import backends
from ._callables import NOTHING_CHECKED as _NOTHING_CHECKED
from ._callables import check_async_fn, check_coroutine
from ._durable import DurableRun, DurableRuntime
from ._durable_api import DurableMethods, open_store_option
from ._exceptions import ScheduleConflict
from ._queues import DeadlineHeap
from ._scheduler import BaseScheduler, ErrorHandler
from ._schedules import (
    Coalesce,
    OnConflict,
    Overlap,
    Schedule,
    ScheduleSet,
    check_schedule_options,
)
from ._task import RUNNING, ElapsedFire, Task, new_timed_task
from ._time import (
    MAX_TIMESTAMP,
    delay_seconds,
    past_message,
    timestamp_of,
    utc_from_timestamp,
)
from ._trigger import Trigger
from ._waiting import room_of
from .stores._interface import JobStore

__all__ = ["TimedScheduler"]

PosArgsT = TypeVarTuple("PosArgsT")
T = TypeVar("T")

# Start at most this many due jobs before letting them run: a burst of 100k
# due jobs then starts its first job within a millisecond, not after all
# 100k have been created.
_DISPATCH_BATCH: Final = 256

_EPOCH_NAIVE: Final = datetime(1970, 1, 1)


class TimedScheduler(DurableMethods, BaseScheduler):
    """Run each job at its own time; jobs run concurrently.

    All pending jobs wait in one heap served by one task, which sleeps until
    the earliest deadline or until an earlier job arrives. A pending job
    costs a small :class:`Task` and no coroutine frame (for the callable
    forms).

    :param max_tasks: at most this many jobs pending and running at once
        (``None``: no limit); beyond it scheduling raises
        :exc:`TaskLimitReached`
    :param prefer_utc: read naive datetimes as UTC (the default, as
        ``datetime.utcnow()`` gives) or, if false, as local time
    :param on_error: what to do when a job raises: ``None`` logs it on the
        ``aioscheduler`` logger, a function ``(task, exception)`` is called
        instead, ``"raise"`` cancels the scheduler and propagates it
    :param wall_clock: the wall clock, a function returning POSIX seconds
        (default :func:`time.time`); tests pass one that they can step
    :param wall_poll: while a wall-clock job or schedule is pending, the
        serving task wakes at least this often (seconds, default 30) to
        notice a step of the wall clock or a suspend of the machine
    :param store: where durable jobs live: a :class:`SQLiteStore` (or any
        :class:`JobStore`), or a path, which opens a :class:`SQLiteStore`
        there; ``None`` (the default): no durable jobs, and nothing changes
        for volatile ones. See :meth:`durable_start_at`.
    :param durable_concurrency: at most this many durable jobs of this
        scheduler run at once (default 100); the rest wait in the store

    Example::

        async with TimedScheduler() as scheduler:
            scheduler.start_after(5, work, 1)
            scheduler.start_at(datetime.now(UTC) + timedelta(hours=1), work, 2)

    .. versionchanged:: 2.0
       Runs on asyncio and Trio; ``start_at``, ``start_after``, ``on_error``.
    """

    def __init__(
        self,
        max_tasks: int | None = None,
        prefer_utc: bool = True,
        *,
        on_error: ErrorHandler | None = None,
        wall_clock: Callable[[], float] = time.time,
        wall_poll: float = 30.0,
        store: JobStore | str | os.PathLike[str] | None = None,
        durable_concurrency: int = 100,
    ) -> None:
        super().__init__(max_tasks, on_error=on_error)
        if not isinstance(prefer_utc, bool):
            raise TypeError(f"prefer_utc must be True or False, not {prefer_utc!r}")
        if not callable(wall_clock):
            raise TypeError(f"wall_clock must be a function, not {wall_clock!r}")
        if not isinstance(wall_poll, int | float) or isinstance(wall_poll, bool):
            raise TypeError(
                f"wall_poll must be a number of seconds, not {type(wall_poll).__name__}"
            )
        if not wall_poll > 0 or not math.isfinite(wall_poll):
            raise ValueError(
                f"wall_poll must be positive and finite, got {wall_poll!r}"
            )
        self._prefer_utc = prefer_utc
        self._store = open_store_option(store)
        if not isinstance(durable_concurrency, int) or isinstance(
            durable_concurrency, bool
        ):
            raise TypeError(
                "durable_concurrency must be an int, not "
                f"{type(durable_concurrency).__name__}"
            )
        if durable_concurrency < 1:
            raise ValueError(
                f"durable_concurrency must be at least 1, got {durable_concurrency}"
            )
        self._durable: DurableRuntime | None = None
        if self._store is not None:
            self._durable = DurableRuntime(self, self._store, durable_concurrency)
        self._wall_clock = wall_clock
        self._wall_poll = float(wall_poll)
        # Recurring schedules: made on the first add_schedule.
        self._schedules: ScheduleSet | None = None
        self._pending: DeadlineHeap = DeadlineHeap()
        # The last function that passed check_async_fn: jobs usually come
        # in runs of the same function, and the check is the costly part.
        self._checked_fn: object = _NOTHING_CHECKED

    def schedule(self, coro: Coroutine[Any, Any, T], when: datetime) -> Task[T]:
        """Run the coroutine object *coro* at *when* (the 1.x form).

        :raises TypeError: if *coro* is not a coroutine object or *when* is
            not a datetime
        :raises ValueError: if *when* is in the past ("May only be in the
            future.")

        The coroutine is closed if it is rejected or cancelled before it runs.
        """
        check_coroutine(coro)
        try:
            return self._at(when, coro, None)
        except BaseException:
            coro.close()
            raise

    def start_at(
        self,
        when: datetime,
        async_fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, T]],
        /,
        *args: *PosArgsT,
    ) -> Task[T]:
        """Run ``async_fn(*args)`` at *when*.

        The coroutine is created only when the job is due.

        :param when: a naive datetime (UTC if ``prefer_utc``, else local
            time) or an aware one
        :raises TypeError: if *when* is not a datetime or *async_fn* is not
            an async function
        :raises ValueError: if *when* is in the past

        .. versionadded:: 2.0
        """
        if async_fn is not self._checked_fn:
            check_async_fn(async_fn)
            self._checked_fn = async_fn
        return self._at(when, async_fn, args)

    def start_after(
        self,
        delay: float | timedelta,
        async_fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, T]],
        /,
        *args: *PosArgsT,
    ) -> Task[T]:
        """Run ``async_fn(*args)`` after *delay* seconds (or a ``timedelta``).

        :raises TypeError: if *delay* is not a number or timedelta, or
            *async_fn* is not an async function
        :raises ValueError: if *delay* is negative

        .. versionadded:: 2.0
        """
        if self._current_loop() != self._loop:
            self._bind()
        if async_fn is not self._checked_fn:
            check_async_fn(async_fn)
            self._checked_fn = async_fn
        deadline = self._clock() + delay_seconds(delay)
        if deadline + self._wall_offset > MAX_TIMESTAMP:
            raise ValueError(
                f"delay {delay!r} is too long: the job would be due after "
                "9999-12-31, the latest time a datetime can hold"
            )
        return self._push(async_fn, args, None, deadline)

    # -- waiting for room (see _waiting) -------------------------------------

    async def astart_at(
        self,
        when: datetime,
        async_fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, T]],
        /,
        *args: *PosArgsT,
    ) -> Task[T]:
        """As :meth:`start_at`, but wait for room instead of raising
        :exc:`TaskLimitReached` when ``max_tasks`` is reached.

        Callers wait in FIFO order. The arguments are checked at once, and
        the due time is fixed at the call: if it passes while waiting, the
        job runs as soon as it is admitted. Without ``max_tasks`` it never
        waits. ::

            task = await scheduler.astart_at(when, work, 1)

        :raises SchedulerClosed: if the scheduler is or gets closed

        .. versionadded:: 2.0
        """
        timestamp = self._future_timestamp(when)
        check_async_fn(async_fn)
        return await room_of(self).admit(
            lambda: self._push_at(async_fn, args, when, timestamp)
        )

    async def astart_after(
        self,
        delay: float | timedelta,
        async_fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, T]],
        /,
        *args: *PosArgsT,
    ) -> Task[T]:
        """As :meth:`start_after`, but wait for room (see :meth:`astart_at`).

        The delay counts from the call, not from the job's admission. ::

            task = await scheduler.astart_after(5, work, 1)

        .. versionadded:: 2.0
        """
        if self._current_loop() != self._loop:
            self._bind()
        check_async_fn(async_fn)
        deadline = self._clock() + delay_seconds(delay)
        return await room_of(self).admit(
            lambda: self._push(async_fn, args, None, deadline)
        )

    async def aschedule(self, coro: Coroutine[Any, Any, T], when: datetime) -> Task[T]:
        """As :meth:`schedule`, but wait for room (see :meth:`astart_at`).

        The coroutine is closed if it is rejected, or if the caller is
        cancelled while waiting. ::

            task = await scheduler.aschedule(work(1), when)

        .. versionadded:: 2.0
        """
        check_coroutine(coro)
        try:
            timestamp = self._future_timestamp(when)
            return await room_of(self).admit(
                lambda: self._push_at(coro, None, when, timestamp)
            )
        except BaseException:
            coro.close()
            raise

    # -- recurring schedules ----------------------------------------------------

    def add_schedule(
        self,
        trigger: Trigger,
        async_fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, Any]],
        /,
        *args: *PosArgsT,
        id: str | None = None,
        misfire_grace: float | timedelta | None = None,
        coalesce: Coalesce = "latest",
        max_catchup: int = 100,
        overlap: Overlap = "skip",
        jitter: float | timedelta | None = None,
        max_runs: int | None = None,
        paused: bool = False,
        on_conflict: OnConflict = "error",
    ) -> Schedule:
        """Run ``async_fn(*args)`` at every fire time of *trigger*.

        Each run is an ordinary job (a :class:`Task` whose ``when`` is its
        fire time); a failing run never stops the schedule. See the guide's
        "Recurring schedules" page for every option::

            scheduler.add_schedule(Cron("0 9 * * mon-fri", tz="Europe/Berlin"), report)
            scheduler.add_schedule(Every(300), poll_feed, url, id="feed", jitter=10)

        :param id: a name, unique on this scheduler (generated if ``None``)
        :param misfire_grace: a run that could only start later than its fire
            time plus this (seconds or timedelta) does not run and counts in
            ``missed`` (``None``: no limit)
        :param coalesce: when several fire times are due at once:
            ``"latest"``, ``"earliest"``, or ``"all"`` (the latest
            *max_catchup*, oldest first, one after another)
        :param overlap: when the previous run still runs at a fire time:
            ``"skip"``, ``"buffer_one"``, ``"buffer_all"``, ``"allow"`` or
            ``"cancel_previous"``
        :param jitter: each run starts a pseudo-random delay in
            ``[0, jitter)`` after its fire time (the same for the same id
            and fire time), never at or after the next fire time
        :param max_runs: after this many runs the schedule is finished
        :param paused: add it paused (see :meth:`~aioscheduler.Schedule.resume`)
        :param on_conflict: when *id* is in use: ``"error"`` raises
            :exc:`~aioscheduler.ScheduleConflict`, ``"keep"`` returns the
            existing schedule, ``"replace"`` replaces it (an equal trigger
            keeps its progress)
        :raises TypeError: a non-trigger, a non-async function, or an option
            of the wrong type
        :raises ValueError: an option out of range, or an unknown policy

        .. versionadded:: 2.0
        """
        grace, jitter_s = check_schedule_options(
            trigger,
            misfire_grace,
            coalesce,
            max_catchup,
            overlap,
            jitter,
            max_runs,
            paused,
            on_conflict,
            id,
        )
        check_async_fn(async_fn)
        if self._current_loop() != self._loop:
            self._bind()
        if self._closed:
            self._check_open()
        schedules = self._schedule_set()
        existing = None if id is None else schedules.by_id.get(id)
        if existing is not None:
            if on_conflict == "keep":
                return existing
            if on_conflict == "error":
                raise ScheduleConflict(
                    f"a schedule with id {id!r} exists already; pass "
                    "on_conflict='keep' or 'replace' to reuse the id"
                )
        schedule = Schedule(
            self,
            schedules.new_id() if id is None else id,
            trigger,
            async_fn,
            args,
            misfire_grace=grace,
            coalesce=coalesce,
            max_catchup=max_catchup,
            overlap=overlap,
            jitter=jitter_s,
            max_runs=max_runs,
        )
        now, offset = self._clock(), self._read_wall_offset()
        self._pinned += 1
        if existing is not None:
            # Replace: an equal trigger keeps its progress (no fire time twice).
            schedule._paused = paused
            if existing.trigger == trigger:
                schedule._take_progress(existing)
            else:
                # A new trigger: the old one's waiting runs do not run.
                existing._drop_buffered()
                existing._drop_unstarted()
            existing._finish()
            schedules.add(schedule, now, offset, begun=existing.trigger == trigger)
        else:
            schedule._paused = paused
            schedules.add(schedule, now, offset)
        return schedule

    def get_schedule(self, id: str) -> Schedule | None:
        """Return the schedule named *id*, or ``None`` (also once finished).

        .. versionadded:: 2.0
        """
        schedules = self._schedules
        return None if schedules is None else schedules.by_id.get(id)

    @property
    def schedules(self) -> Mapping[str, Schedule]:
        """A read-only mapping from id to each :class:`~aioscheduler.Schedule`
        not finished.

        .. versionadded:: 2.0
        """
        return self._schedule_set().by_id

    def _schedule_set(self) -> ScheduleSet:
        schedules = self._schedules
        if schedules is None:
            schedules = self._schedules = ScheduleSet(self)
        return schedules

    def _close_schedules(self) -> None:
        if self._schedules is not None:
            self._schedules.close()

    def _push_run(
        self,
        runner: Any,
        args: tuple[Any, ...],
        fire: datetime,
        key: float,
        elapsed: bool,
    ) -> Task[Any]:
        """Add a schedule's run (``when``: *fire*), due at *key* (inf: buffered).

        *key* is a loop deadline for an elapsed-time trigger (``Every``), else
        a wall timestamp.
        """
        if elapsed:
            return self._push(runner, args, ElapsedFire.of(fire), key)
        return self._push_at(runner, args, fire, key)

    def _durable_host(self) -> TimedScheduler:
        return self

    def _start_durable(self, run: Any, when: datetime) -> Task[Any]:
        """Start a claimed durable job now (it never waits in the heap)."""
        engine = self._engine
        assert engine is not None
        pending = self._pending
        task = new_timed_task(
            self._clock(), self, run, (), when, next(pending._sequence)
        )
        self._loads[self._slot] += 1
        task._state = RUNNING
        engine.spawn(task)
        return task

    async def _open_store(self) -> None:
        if self._durable is not None:
            await self._durable.open()

    async def _close_store(self) -> None:
        if self._durable is not None:
            await self._durable.close()

    def _cancel_task(self, task: Task[Any]) -> bool:
        run = task.callback
        if type(run) is DurableRun:
            run.cancel_requested = True
        return super()._cancel_task(task)

    def _job_cancelled(self, task: Task[Any]) -> None:
        durable = self._durable
        if durable is not None:
            run = task.callback
            if type(run) is DurableRun and not run.started:
                durable.never_started(run)
        super()._job_cancelled(task)

    def _body_ended(self) -> None:
        # Leaving `async with` waits for the running durable jobs; the
        # pending ones stay in the store for the next start.
        if self._durable is not None:
            self._durable.claiming = False

    def _on_closed(self) -> None:
        if self._durable is not None:
            self._durable.closing = True
        super()._on_closed()

    def _start_buffered(self, task: Task[Any]) -> None:
        """Start a buffered run (it waits in the heap, never due by itself)."""
        engine = self._engine
        if engine is None or self._closed:
            return
        pending = self._pending
        task._state = RUNNING
        # It stays in the heap as a dead entry, as a cancelled one would.
        pending._garbage += 1
        if pending._garbage > pending._compact_above:
            pending.compact_if_worth()
        engine.spawn(task)

    def now(self) -> datetime:
        """Return the scheduler's wall time, as an aware UTC datetime.

        The clock ``start_at`` jobs and wall-clock schedules go by: the
        ``wall_clock`` read again now, and under a virtual loop clock
        (Trio's ``MockClock``, ``looptime``) virtual wall time, so tests
        compute "tomorrow at 03:00" from it::

            tomorrow = scheduler.now() + timedelta(days=1)

        :raises RuntimeError: if no event loop runs in this thread

        .. versionadded:: 2.0
        """
        if self._current_loop() != self._loop:
            self._bind()
        return utc_from_timestamp(self._clock() + self._read_wall_offset())

    def _future_timestamp(self, when: datetime) -> float:
        """Return *when*'s timestamp; ValueError if it is past by our wall time."""
        if self._current_loop() != self._loop:
            self._bind()
        timestamp = timestamp_of(when, self._prefer_utc)
        now = self._clock() + self._read_wall_offset()
        if timestamp < now:
            raise ValueError(past_message(when, timestamp, now, self._prefer_utc))
        return timestamp

    def _at(
        self,
        when: datetime,
        callback: Any,
        args: tuple[Any, ...] | None,
    ) -> Task[Any]:
        # The hot path of start_at and schedule: kept flat on purpose.
        if self._current_loop() != self._loop:
            self._bind()
        if type(when) is not datetime:
            timestamp = timestamp_of(when, self._prefer_utc)  # or TypeError
        elif when.tzinfo is not None:
            timestamp = when.timestamp()
        elif self._prefer_utc:
            timestamp = (when - _EPOCH_NAIVE).total_seconds()
        else:
            timestamp = timestamp_of(when, False)
        if self._closed:
            self._check_open()  # closed says more than "in the past"
        # "In the past" by our wall time, read now.
        fast = self._fast_offset
        if fast is not None:
            now = self._wall_clock() + fast
        else:
            now = self._clock() + self._read_wall_offset()
        if timestamp < now:
            raise ValueError(past_message(when, timestamp, now, self._prefer_utc))
        return self._push_at(callback, args, when, timestamp)

    def _push(
        self,
        callback: Any,
        args: tuple[Any, ...] | None,
        priority: datetime | None,
        deadline: float,
    ) -> Task[Any]:
        if self._closed or self._max_tasks is not None:
            self._check_open()
        pending = self._pending
        task = new_timed_task(
            deadline, self, callback, args, priority, next(pending._sequence)
        )
        heapq.heappush(pending._entries, task)
        self._loads[self._slot] += 1
        if deadline < self._sleeping_until:
            self._wake()
        return task

    def _push_at(
        self,
        callback: Any,
        args: tuple[Any, ...] | None,
        when: datetime,
        timestamp: float,
    ) -> Task[Any]:
        """Add a wall-clock job, due when our wall time reaches *timestamp*."""
        if self._closed or self._max_tasks is not None:
            self._check_open()
        pending = self._pending
        task = new_timed_task(
            timestamp, self, callback, args, when, next(pending._sequence)
        )
        heapq.heappush(pending._wall_entries, task)
        self._loads[self._slot] += 1
        if timestamp - self._wall_offset < self._sleeping_until:
            self._wake()
        return task

    async def _serve(self, engine: backends.Engine) -> None:
        durable = self._durable
        if durable is None:
            await self._serve_heap(engine)
            return
        async with anyio.create_task_group() as group:
            group.start_soon(durable.feed)
            await self._serve_heap(engine)

    async def _serve_heap(self, engine: backends.Engine) -> None:
        pending = self._pending
        clock = self._clock
        spawn = engine.spawn
        read_offset = self._read_wall_offset
        while True:
            now = clock()
            # Read the wall clock at every wake-up: it may have been stepped,
            # or the machine may have slept, since the last one.
            offset = read_offset()
            schedules = self._schedules
            if schedules is not None:
                # Fire due schedules first: their runs join this round.
                schedules.fire_due(now, offset)
            task = pending.pop_due(now, offset)
            if task is None:
                deadline = pending.next_deadline(offset)
                if schedules is not None:
                    next_fire = schedules.next_deadline(offset)
                    if next_fire is not None and (
                        deadline is None or next_fire < deadline
                    ):
                        deadline = next_fire
                if pending.has_wall() or (
                    schedules is not None and schedules.has_wall()
                ):
                    # Wall-clock jobs wait: look at the wall clock again at
                    # least every wall_poll seconds.
                    poll = now + self._wall_poll
                    if deadline is None or deadline > poll:
                        deadline = poll
                self._sleeping_until = math.inf if deadline is None else deadline
                try:
                    await engine.sleep_until(deadline)
                finally:
                    self._sleeping_until = -math.inf
                continue
            dispatched = 0
            while True:
                task._state = RUNNING
                spawn(task)
                dispatched += 1
                if dispatched == _DISPATCH_BATCH:
                    # More may be due: let the started jobs run first.
                    await engine.checkpoint()
                    break
                task = pending.pop_due(now, offset)
                if task is None:
                    break
