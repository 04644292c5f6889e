"""Manager: N schedulers of one kind behind one front, load-balanced."""

from __future__ import annotations

import os
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Generic, TypeVar, TypeVarTuple, Unpack, overload

import anyio
from anyio.abc import TaskGroup, TaskStatus

from ._callables import check_async_fn, check_coroutine
from ._drain import check_drain_timeout
from ._drain import drain as drain_jobs
from ._durable_api import DurableMethods, open_store_option
from ._exceptions import SchedulerClosed, TaskLimitReached
from ._introspect import SchedulerStatistics, merge_by_due
from ._lifecycle import Hosted
from ._queued import LifoQueuedScheduler, QueuedScheduler
from ._routing import Router
from ._scheduler import BaseScheduler
from ._schedules import Schedule
from ._task import Task
from ._time import delay_seconds
from ._timed import TimedScheduler
from ._trigger import Trigger
from ._waiting import Room, room_of
from .stores._interface import JobStore

__all__ = ["Manager"]

PosArgsT = TypeVarTuple("PosArgsT")
# Covariant, so that the self types below work: start_at/start_after exist
# on a Manager[TimedScheduler] only, start_soon on a Manager[QueuedScheduler],
# and a Manager of a subclass (LifoQueuedScheduler) is a Manager of its base.
# (A bound TypeVar as the self type would not do: mypy does not reject a
# self whose type argument falls outside the bound.)
SchedulerT = TypeVar("SchedulerT", bound=BaseScheduler, covariant=True)
T = TypeVar("T")

_KINDS = (TimedScheduler, QueuedScheduler, LifoQueuedScheduler)


class Manager(DurableMethods, Hosted, Generic[SchedulerT]):
    """Run N schedulers of one kind behind one front, load-balanced.

    Every scheduling call goes to the least loaded scheduler (fewest pending
    plus running jobs; among equals, the first). The loads live in one list
    that the schedulers update in place, so finding the least loaded is a
    C-level scan, never a sort, and no scan at all while no job has ended
    since the last call. A Manager of :class:`QueuedScheduler` runs up to N
    jobs at once.

    :param schedulers: how many schedulers (at least 1)
    :param max_tasks: at most this many jobs pending and running across all
        schedulers (``None``: no limit)
    :param cls: the scheduler class: :class:`TimedScheduler` (the default),
        :class:`QueuedScheduler`, :class:`LifoQueuedScheduler` or a subclass
    :param args: passed on to each scheduler's constructor, as are *kwargs*
        (e.g. ``prefer_utc=False``, ``on_error=...``)

    Example::

        async with Manager(4, cls=QueuedScheduler) as manager:
            for url in urls:
                manager.start_soon(fetch, url)

    .. versionchanged:: 2.0
       Runs on asyncio and Trio; ``max_tasks`` bounds the total.
    """

    @overload
    def __init__(
        self: Manager[TimedScheduler],
        schedulers: int = 1,
        max_tasks: int | None = None,
        *,
        prefer_utc: bool = ...,
        on_error: Any = ...,
        wall_clock: Callable[[], float] = ...,
        wall_poll: float = ...,
        store: JobStore | str | os.PathLike[str] | None = ...,
        durable_concurrency: int = ...,
    ) -> None: ...

    @overload
    def __init__(
        self,
        schedulers: int,
        max_tasks: int | None,
        cls: type[SchedulerT],
        *args: Any,
        **kwargs: Any,
    ) -> None: ...

    @overload
    def __init__(
        self,
        schedulers: int = 1,
        max_tasks: int | None = None,
        *,
        cls: type[SchedulerT],
        **kwargs: Any,
    ) -> None: ...

    def __init__(
        self,
        schedulers: int = 1,
        max_tasks: int | None = None,
        cls: type[SchedulerT] = TimedScheduler,  # type: ignore[assignment]
        *args: Any,
        **kwargs: Any,
    ) -> None:
        if not isinstance(schedulers, int) or isinstance(schedulers, bool):
            raise TypeError(
                f"schedulers must be an int, not {type(schedulers).__name__}"
            )
        if schedulers < 1:
            raise ValueError(f"schedulers must be at least 1, got {schedulers}")
        if max_tasks is not None:
            if isinstance(max_tasks, type):
                # Manager(4, QueuedScheduler): the 1.x signature puts max_tasks
                # second, so a class there is a misplaced cls.
                raise TypeError(
                    f"max_tasks must be an int or None, not the class "
                    f"{max_tasks.__name__}; pass the scheduler class by keyword: "
                    f"Manager({schedulers}, cls={max_tasks.__name__})"
                )
            if not isinstance(max_tasks, int) or isinstance(max_tasks, bool):
                raise TypeError(
                    f"max_tasks must be an int or None, not {type(max_tasks).__name__}"
                )
            if max_tasks < 1:
                raise ValueError(f"max_tasks must be at least 1, got {max_tasks}")
        if not (isinstance(cls, type) and issubclass(cls, _KINDS)):
            raise TypeError(
                "cls must be TimedScheduler, QueuedScheduler, LifoQueuedScheduler "
                f"or a subclass, not {cls!r}"
            )
        self._max_tasks = max_tasks
        # One attribute test on the routing path: true when the limit or a
        # close needs looking at (see _check_admit).
        self._guarded = max_tasks is not None
        self._closed = False
        # Why the Manager closed, when not by its own aclose()/exit: which
        # scheduler stopped, and the job failure that stopped it, if any.
        self._closed_reason: str | None = None
        self._closed_cause: BaseException | None = None
        self._timed = issubclass(cls, TimedScheduler)
        # start_at may skip the scheduler's own start_at only if that is
        # TimedScheduler's: a subclass that overrides it gets its calls.
        self._inline_start_at = (
            self._timed and getattr(cls, "start_at", None) is TimedScheduler.start_at
        )
        self._room: Room | None = None
        self._loads: list[int] = [0] * schedulers
        if "store" in kwargs:
            if not self._timed and kwargs["store"] is not None:
                raise TypeError(
                    "store= needs TimedScheduler schedulers (durable jobs run "
                    f"at their time), not {cls.__name__}"
                )
            # One store for all: a path opens one SQLiteStore, shared.
            kwargs["store"] = open_store_option(kwargs["store"])
        self.schedulers: tuple[SchedulerT, ...] = tuple(
            cls(*args, **kwargs) for _ in range(schedulers)
        )
        """The schedulers behind this manager, in a fixed order."""
        # Finds the least loaded; told of every freed slot (see _routing).
        self._router = Router(self._loads)
        for slot, scheduler in enumerate(self.schedulers):
            scheduler._loads = self._loads
            scheduler._slot = slot
            scheduler._manager = self
            scheduler._rooms.append(self._router)
        self._claimed = False

    # -- routing ----------------------------------------------------------------

    def _least_loaded(self) -> Any:
        if self._guarded:
            self._check_admit()
        return self.schedulers[self._router.pick()]

    def _check_admit(self) -> None:
        if self._closed:
            message = self._closed_reason or (
                "Manager is closed; create a new Manager to schedule more jobs"
            )
            raise SchedulerClosed(message) from self._closed_cause
        max_tasks = self._max_tasks
        if max_tasks is not None and sum(self._loads) >= max_tasks:
            raise TaskLimitReached(
                f"Manager already has max_tasks={max_tasks} pending and running jobs"
            )

    @overload
    def schedule(
        self: Manager[TimedScheduler], coro: Coroutine[Any, Any, T], when: datetime, /
    ) -> Task[T]: ...

    @overload
    def schedule(
        self: Manager[QueuedScheduler], coro: Coroutine[Any, Any, T], /
    ) -> Task[T]: ...

    def schedule(self, coro: Coroutine[Any, Any, Any], *args: Any) -> Task[Any]:
        """Schedule the coroutine object *coro* on the least loaded scheduler.

        Takes what the scheduler kind's ``schedule`` takes: ``(coro, when)``
        for timed schedulers, ``(coro)`` for queued ones.
        """
        try:
            expected = 1 if self._timed else 0
            if len(args) != expected:
                form = "(coro, when)" if self._timed else "(coro)"
                raise TypeError(
                    f"schedule() on a Manager of {self._kind_name()} takes "
                    f"{form}, got {1 + len(args)} arguments"
                )
            scheduler = self._least_loaded()
        except BaseException:
            if hasattr(coro, "close"):
                coro.close()
            raise
        task: Task[Any] = scheduler.schedule(coro, *args)
        return task

    def _kind_name(self) -> str:
        return type(self.schedulers[0]).__name__

    def _wrong_kind(self, method: str, kind: str) -> TypeError:
        return TypeError(
            f"{method} needs a Manager of {kind}; this one manages {self._kind_name()}"
        )

    def start_at(
        self: Manager[TimedScheduler],
        when: datetime,
        async_fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, T]],
        /,
        *args: *PosArgsT,
    ) -> Task[T]:
        """Run ``async_fn(*args)`` at *when* on the least loaded scheduler (timed)."""
        if self._guarded:
            self._check_admit()
        scheduler: Any = self.schedulers[self._router.pick()]
        if self._inline_start_at:
            # TimedScheduler.start_at, inlined: one call less, and the job
            # keeps this call's argument tuple rather than a copy made to
            # pass it on (about 0.25 µs of the route's 0.85 µs at 20).
            if async_fn is not scheduler._checked_fn:
                check_async_fn(async_fn)
                scheduler._checked_fn = async_fn
            inlined: Task[T] = scheduler._at(when, async_fn, args)
            return inlined
        try:
            # The attribute is looked up anyway: a try costs nothing more.
            start_at = scheduler.start_at
        except AttributeError:
            raise self._wrong_kind("start_at", "TimedScheduler") from None
        task: Task[T] = start_at(when, async_fn, *args)
        return task

    def start_after(
        self: Manager[TimedScheduler],
        delay: float | timedelta,
        async_fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, T]],
        /,
        *args: *PosArgsT,
    ) -> Task[T]:
        """Run ``async_fn(*args)`` after *delay* on the least loaded (timed)."""
        try:
            start_after = self._least_loaded().start_after
        except AttributeError:
            raise self._wrong_kind("start_after", "TimedScheduler") from None
        task: Task[T] = start_after(delay, async_fn, *args)
        return task

    def start_soon(
        self: Manager[QueuedScheduler],
        async_fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, T]],
        /,
        *args: *PosArgsT,
    ) -> Task[T]:
        """Enqueue ``async_fn(*args)`` on the least loaded scheduler (queued)."""
        try:
            start_soon = self._least_loaded().start_soon
        except AttributeError:
            raise self._wrong_kind("start_soon", "QueuedScheduler") from None
        task: Task[T] = start_soon(async_fn, *args)
        return task

    # -- waiting for room (see _waiting) -----------------------------------------

    def _new_room(self) -> Room:
        return Room(self.schedulers, lambda: self._closed)

    def _pick(self) -> Any:
        """The least loaded scheduler, bound to the running loop."""
        scheduler = self._least_loaded()
        if scheduler._current_loop() != scheduler._loop:
            scheduler._bind()
        return scheduler

    async def astart_at(
        self: Manager[TimedScheduler],
        when: datetime,
        async_fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, T]],
        /,
        *args: *PosArgsT,
    ) -> Task[T]:
        """As :meth:`start_at`, but wait for room while ``max_tasks`` is reached.

        Waits against the Manager's total, as
        :meth:`TimedScheduler.astart_at` does against one scheduler's. ::

            task = await manager.astart_at(when, work, 1)
        """
        if not self._timed:
            raise self._wrong_kind("astart_at", "TimedScheduler")
        timestamp = self.schedulers[0]._future_timestamp(when)
        check_async_fn(async_fn)

        def push() -> Task[T]:
            scheduler = self._pick()
            task: Task[T] = scheduler._push_at(async_fn, args, when, timestamp)
            return task

        return await room_of(self).admit(push)

    async def astart_after(
        self: Manager[TimedScheduler],
        delay: float | timedelta,
        async_fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, T]],
        /,
        *args: *PosArgsT,
    ) -> Task[T]:
        """As :meth:`start_after`, but wait for room (see :meth:`astart_at`).

        The delay counts from the call. ::

            task = await manager.astart_after(5, work, 1)
        """
        if not self._timed:
            raise self._wrong_kind("astart_after", "TimedScheduler")
        seconds = delay_seconds(delay)
        check_async_fn(async_fn)
        deadline = anyio.current_time() + seconds

        def push() -> Task[T]:
            task: Task[T] = self._pick()._push(async_fn, args, None, deadline)
            return task

        return await room_of(self).admit(push)

    async def astart_soon(
        self: Manager[QueuedScheduler],
        async_fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, T]],
        /,
        *args: *PosArgsT,
    ) -> Task[T]:
        """As :meth:`start_soon`, but wait for room (see :meth:`astart_at`).

        It waits against the Manager's total::

            for url in urls:
                await manager.astart_soon(fetch, url)
        """
        if self._timed:
            raise self._wrong_kind("astart_soon", "QueuedScheduler")
        check_async_fn(async_fn)

        def push() -> Task[T]:
            task: Task[T] = self._pick()._push(async_fn, args)
            return task

        return await room_of(self).admit(push)

    async def aschedule(
        self, coro: Coroutine[Any, Any, T], when: datetime | None = None
    ) -> Task[T]:
        """As :meth:`schedule`, but wait for room (see :meth:`astart_at`).

        Give *when* for a Manager of timed schedulers only. The coroutine is
        closed if it is rejected, or if the caller is cancelled while
        waiting. ::

            task = await manager.aschedule(work(1), when)
        """
        check_coroutine(coro)
        try:
            if (when is None) == self._timed:
                form = "(coro, when)" if self._timed else "(coro)"
                raise TypeError(
                    f"aschedule() on a Manager of {self._kind_name()} takes {form}"
                )
            first: Any = self.schedulers[0]
            timestamp = 0.0 if when is None else first._future_timestamp(when)

            def push() -> Task[T]:
                scheduler = self._pick()
                task: Task[T]
                if when is None:
                    task = scheduler._push(coro, None)
                else:
                    task = scheduler._push_at(coro, None, when, timestamp)
                return task

            return await room_of(self).admit(push)
        except BaseException:
            coro.close()
            raise

    # -- recurring schedules ----------------------------------------------------

    def add_schedule(
        self: Manager[TimedScheduler],
        trigger: Trigger,
        async_fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, Any]],
        /,
        *args: *PosArgsT,
        id: str | None = None,
        **options: Any,
    ) -> Schedule:
        """Add a recurring schedule on the least loaded scheduler (fewest
        pending and running jobs; among equals, fewest schedules).

        Takes what :meth:`TimedScheduler.add_schedule` takes; ids are unique
        across the Manager, and the schedule's runs run on the scheduler it
        was placed on. ::

            manager.add_schedule(Every(60), work, 1, id="minutely")

        .. versionadded:: 2.0
        """
        if not self._timed:
            raise self._wrong_kind("add_schedule", "TimedScheduler")
        if self._closed:
            # Closed only: a schedule takes no place under max_tasks (its
            # runs do, each when it is due).
            self._check_admit()
        scheduler: TimedScheduler | None = None
        if id is not None:
            scheduler = next((s for s in self.schedulers if id in s.schedules), None)
        if scheduler is None:
            # Fewest pending+running jobs, then fewest schedules: schedules
            # added together (before any of them runs) spread out too.
            loads = self._loads
            children = self.schedulers
            scheduler = children[
                min(range(len(children)), key=lambda i: (loads[i], _count(children[i])))
            ]
            if id is None:
                id = self._new_schedule_id()
        return scheduler.add_schedule(trigger, async_fn, *args, id=id, **options)

    def _new_schedule_id(self: Manager[TimedScheduler]) -> str:
        taken = self.schedules
        n = len(taken) + 1
        while f"schedule-{n}" in taken:
            n += 1
        return f"schedule-{n}"

    def get_schedule(self: Manager[TimedScheduler], id: str) -> Schedule | None:
        """Return the schedule named *id* on any of its schedulers, or ``None``.

        .. versionadded:: 2.0
        """
        for scheduler in self.schedulers:
            found = scheduler.get_schedule(id)
            if found is not None:
                return found
        return None

    @property
    def schedules(self: Manager[TimedScheduler]) -> Mapping[str, Schedule]:
        """A read-only mapping from id to each :class:`~aioscheduler.Schedule`
        (across its schedulers) not finished.

        .. versionadded:: 2.0
        """
        merged: dict[str, Schedule] = {}
        for scheduler in self.schedulers:
            merged.update(scheduler.schedules)
        return MappingProxyType(merged)

    def _body_ended(self) -> None:
        for scheduler in self.schedulers:
            scheduler._body_ended()

    def _durable_host(self) -> TimedScheduler:
        if not self._timed:
            raise self._wrong_kind("durable jobs", "TimedScheduler")
        # The store is shared: any scheduler can add; each one's feeder
        # claims for itself.
        return self.schedulers[0]  # type: ignore[return-value]

    def now(self: Manager[TimedScheduler]) -> datetime:
        """Return the wall time its schedulers go by (see :meth:`TimedScheduler.now`).

        .. versionadded:: 2.0
        """
        if not self._timed:
            raise self._wrong_kind("now", "TimedScheduler")
        return self.schedulers[0].now()

    def cancel(self, task: Task[Any]) -> bool:
        """Cancel *task* if one of this manager's schedulers owns it.

        :return: ``True`` if the cancellation was delivered; ``False`` if the
            task had already ended or belongs to no scheduler of this manager
        :raises TypeError: if *task* is not a :class:`Task`
        """
        if not isinstance(task, Task):
            raise TypeError(
                f"cancel() takes a Task (what scheduling returned), not {task!r}"
            )
        owner = task._owner
        if owner._manager is not self:
            return False
        return owner._cancel_task(task)

    # -- seeing what is there ----------------------------------------------------

    def statistics(self) -> SchedulerStatistics:
        """Return the pending and running jobs over all schedulers, and the
        Manager's ``max_tasks``. ::

            print(manager.statistics())

        .. versionadded:: 2.0
        """
        each = [scheduler.statistics() for scheduler in self.schedulers]
        return SchedulerStatistics(
            pending=sum(stats.pending for stats in each),
            running=sum(stats.running for stats in each),
            max_tasks=self._max_tasks,
        )

    def pending_tasks(self) -> list[Task[Any]]:
        """Return the pending tasks of all schedulers.

        For timed schedulers, merged by due time (ties: the first scheduler's
        first). For queued ones, which have no order across schedulers, each
        scheduler's in turn, in its own order. O(n log n). ::

            for task in manager.pending_tasks():
                print(task)

        .. versionadded:: 2.0
        """
        lists = [scheduler.pending_tasks() for scheduler in self.schedulers]
        if self._timed:
            return merge_by_due(lists)
        return [task for tasks in lists for task in tasks]

    # -- lifecycle --------------------------------------------------------------

    @property
    def is_started(self) -> bool:
        """``True`` while the manager's schedulers serve.

        .. versionadded:: 2.0
        """
        if self._closed:
            return False
        return any(scheduler.is_started for scheduler in self.schedulers)

    def _claim(self) -> None:
        if self._claimed:
            raise RuntimeError(
                "this Manager has already been started; a manager serves once, "
                "so create a new one"
            )
        self._claimed = True

    def _unclaim(self) -> None:
        self._request_close()

    def start(self) -> None:
        """Start every scheduler in the background on the running asyncio loop (1.x).

        :raises RuntimeError: as :meth:`TimedScheduler.start` does
        """
        self._claim()
        try:
            for scheduler in self.schedulers:
                scheduler.start()
        except BaseException:
            if not self.is_started:
                self._claimed = False  # nothing started: start() may be retried
            raise

    async def run(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve every scheduler until cancelled or closed.

        For ``task_group.start(manager.run)``: reports started once all of its
        schedulers serve.
        """
        self._claim()
        async with anyio.create_task_group() as group:
            for scheduler in self.schedulers:
                await group.start(scheduler.run)
            task_status.started()

    async def _start_in(self, group: TaskGroup) -> None:
        for scheduler in self.schedulers:
            scheduler._claim()
            await scheduler._start_in(group)

    def _request_close(self) -> None:
        self._mark_closed()
        for scheduler in self.schedulers:
            scheduler._request_close()

    def _mark_closed(self) -> None:
        self._closed = True
        self._guarded = True

    def _child_closed(self, child: BaseScheduler) -> None:
        """A scheduler of ours was marked closed: close the others, say why.

        Structured concurrency: one part failing stops the whole, loudly.
        Otherwise the stopped scheduler, with load 0, would get every later
        job and refuse it while the others still serve.
        """
        if self._closed:
            return  # our own close, or already handled
        self._mark_closed()
        failure = child._failures[0] if child._failures else None
        what = (
            f"scheduler {child._slot} ({type(child).__name__}) of this Manager stopped"
        )
        if failure is not None:
            why = f"a job failed with {failure!r} and on_error='raise'"
        elif child.is_started:
            why = "it was closed"
        else:
            why = "its serving task ended (cancelled)"
        self._closed_reason = (
            f"Manager is closed: {what}: {why}; so all of its schedulers "
            "were closed. Create a new Manager to schedule more jobs"
        )
        self._closed_cause = failure
        for scheduler in self.schedulers:
            scheduler._request_close()

    async def join(self) -> None:
        """Wait until no job is pending or running on any scheduler, and no
        recurring schedule is left."""
        schedulers = self.schedulers
        while any(self._loads) or any(s._pinned for s in schedulers):
            for scheduler in schedulers:
                await scheduler.join()

    # ASYNC109: timeout is a grace period for the jobs, not a deadline on
    # the caller (aclose still returns only once every job has ended).
    async def aclose(
        self,
        *,
        drain: bool = False,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> None:
        """Close every scheduler: cancel pending and running jobs, wait for them.

        Idempotent. ``drain`` and ``timeout`` work as for
        :meth:`TimedScheduler.aclose`, with one deadline for all schedulers::

            await manager.aclose(drain=True, timeout=30)
        """
        if drain or timeout is not None:
            seconds = check_drain_timeout(drain, timeout)
            self._mark_closed()  # our own close: no "a scheduler stopped"
            await drain_jobs(self.schedulers, seconds)
        self._request_close()
        for scheduler in self.schedulers:
            await scheduler.aclose()


def _count(scheduler: TimedScheduler) -> int:
    """How many unfinished schedules *scheduler* holds."""
    schedules = scheduler._schedules
    return 0 if schedules is None else len(schedules)
