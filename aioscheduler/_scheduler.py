"""The shared base of every scheduler: lifecycle, limits, and the job runner.

One :class:`_RunState` keeps ``async with``, ``run()`` and the 1.x
``start()`` consistent: a scheduler serves once. Jobs reach the serving task
through the pending container (heap or queue) that the subclass provides;
the serving task hands due jobs to the loop's :class:`Engine`, which reports
each outcome back through the ``_job_*`` methods, and those record it on the
:class:`Task`.
"""

from __future__ import annotations

import contextvars
import enum
import inspect
import logging
import math
import time
import warnings
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import anyio
from anyio.abc import TaskGroup, TaskStatus

from . import _drain, backends
from ._exceptions import SchedulerClosed, TaskLimitReached
from ._introspect import SchedulerStatistics, pending_in_order
from ._lifecycle import Hosted, HostedFailures
from ._queues import PendingJobs
from ._task import CANCELLED, FAILED, FINISHED, PENDING, RUNNING, Task
from ._time import naive_to_utc
from ._waiting import Room

if TYPE_CHECKING:
    from datetime import datetime

    from ._manager import Manager

__all__ = ["BaseScheduler", "ErrorHandler", "logger"]

logger = logging.getLogger("aioscheduler")

#: ``on_error``: a plain function called as ``handler(task, exception)``, or
#: ``"raise"`` for strict structured-concurrency behaviour.
ErrorHandler: TypeAlias = Callable[[Task[Any], Exception], object] | Literal["raise"]


class _RunState(enum.Enum):
    INITIAL = "initial"
    RUNNING = "running"
    CLOSED = "closed"


_INITIAL = _RunState.INITIAL
_RUNNING = _RunState.RUNNING
_CLOSED = _RunState.CLOSED

_NOT_SLEEPING = -math.inf

# Changes of the wall-to-loop offset below this are clock-reading noise.
_OFFSET_NOISE = 1e-3
# Reading the wall clock between two monotonic reads further apart than this
# (the thread was preempted) is read again: the pair would be off by the gap.
_READ_SLACK = 2e-4


def _check_max_tasks(max_tasks: object) -> int | None:
    if max_tasks is None:
        return None
    if not isinstance(max_tasks, int) or isinstance(max_tasks, bool):
        raise TypeError(
            f"max_tasks must be an int or None, not {type(max_tasks).__name__}"
        )
    if max_tasks < 1:
        raise ValueError(f"max_tasks must be at least 1, got {max_tasks}")
    return max_tasks


def _check_on_error(on_error: object) -> ErrorHandler | None:
    if on_error is None or on_error == "raise":
        return on_error
    if isinstance(on_error, str) or not callable(on_error):
        raise TypeError(
            f"on_error must be None, 'raise' or a function (task, exception), "
            f"not {on_error!r}"
        )
    call = getattr(on_error, "__call__", None)  # noqa: B004 - objects too
    if inspect.iscoroutinefunction(on_error) or inspect.iscoroutinefunction(call):
        # It would be called from a job's completion, which cannot await: its
        # coroutine would never run and the failure would vanish.
        raise TypeError(
            f"on_error must be a plain function, not the async function "
            f"{on_error!r}; to do async work on a failure, schedule it from a "
            "plain function (e.g. scheduler.start_after(0, notify, task, exc))"
        )
    return on_error


#: The schedulers whose serving task (or one of whose jobs) runs here,
#: innermost last. Jobs start in their serving task's context, so they see
#: it too: join() uses it to refuse to wait for the job that calls it.
_serving: contextvars.ContextVar[tuple[BaseScheduler, ...]] = contextvars.ContextVar(
    "aioscheduler_serving", default=()
)


class BaseScheduler(Hosted):
    """What every scheduler shares; use one of its subclasses.

    A scheduler is an async context manager: entering it starts serving,
    leaving it normally waits until every scheduled job has finished, and
    leaving it by an exception or a cancellation cancels what is left first.
    """

    _pending: PendingJobs
    _prefer_utc = True

    def __init__(
        self, max_tasks: int | None = None, *, on_error: ErrorHandler | None = None
    ) -> None:
        self._max_tasks = _check_max_tasks(max_tasks)
        self._on_error = _check_on_error(on_error)
        self._run_state = _INITIAL
        # Whether it ever served (closed before serving: _run_state alone
        # cannot tell).
        self._served = False
        # Mirrors "_run_state is _CLOSED" as one attribute read for hot paths.
        self._closed = False
        self._stopped = False
        self._closing = False
        self._binding: backends.LoopBinding | None = None
        self._clock: Callable[[], float] = _unbound_clock
        # The hot-path loop check: self._current_loop() == self._loop
        # (== since thread ids are equal ints, not one object).
        self._loop: object = _UNBOUND
        self._current_loop: Callable[[], object] = _no_loop
        # Wall time minus loop time, as last read (see _read_wall_offset).
        self._wall_offset = 0.0
        # What that offset is made of: wall_clock() - time.monotonic(), plus
        # this (fixed at binding), so the loop clock drives wall time too.
        self._offset_base = 0.0
        self._fast_offset: float | None = None
        self._wall_clock: Callable[[], float] = time.time
        self._engine: backends.Engine | None = None
        # The serving task's sleep target; -inf while it is awake (then it
        # looks at the pending jobs again anyway, so nobody needs to wake it).
        self._sleeping_until = _NOT_SLEEPING
        self._serve_scope: anyio.CancelScope | None = None
        # Job failures under on_error="raise", in the order they happened.
        self._failures: list[Exception] = []
        self._idle_event: anyio.Event | None = None
        # Events of tasks someone awaits (Task.wait): rare, so kept here
        # rather than in a slot of every task.
        self._waiters: dict[Task[Any], anyio.Event] = {}
        self._stopped_event: anyio.Event | None = None
        # Pending + running jobs. A one-slot list so that a Manager can share
        # one list between its schedulers and find the least loaded in C.
        self._loads = [0]
        self._slot = 0
        # Recurring schedules not finished: they keep join() waiting as
        # pending jobs do, but take no place under max_tasks.
        self._pinned = 0
        self._manager: Manager[Any] | None = None
        # Back-pressure (see _waiting): the Rooms whose callers wait for a
        # slot here. Empty unless someone waits, so a freed slot costs one
        # attribute test.
        self._rooms: list[Room] = []
        self._room: Room | None = None

    def __del__(self) -> None:
        # As asyncio says of a pending task destroyed: jobs added to a
        # scheduler that never served are lost, and task.wait() on one
        # would have waited forever. (getattr: __init__ may have failed.)
        loads = getattr(self, "_loads", None)
        if getattr(self, "_run_state", None) is _INITIAL and loads:
            pending = loads[self._slot]
            if pending:
                warnings.warn(
                    f"a {type(self).__name__} was destroyed with {pending} "
                    "pending job(s) without ever serving, so they never ran: "
                    "serve it with 'async with scheduler:', "
                    "'await task_group.start(scheduler.run)' or, on asyncio, "
                    "scheduler.start()",
                    RuntimeWarning,
                    stacklevel=2,
                )

    # -- binding to the event loop ------------------------------------------

    def _bind(self) -> backends.LoopBinding:
        """Check we are on our loop, binding to the current one the first time."""
        binding = self._binding
        if binding is not None:
            if binding.in_loop():
                return binding
            here = backends.current_binding()  # says so if no loop runs here
            if here.in_same_thread(binding):
                raise RuntimeError(
                    f"this {type(self).__name__} belongs to another event loop "
                    "(the one it was first used on, which is no longer running "
                    "here); create one scheduler per event loop, e.g. inside "
                    "the test or the function that asyncio.run() runs"
                )
            raise RuntimeError(
                f"{type(self).__name__} belongs to the event loop it was first "
                "used on; schedule from that loop's thread (from another thread, "
                "go through anyio.from_thread.run_sync)"
            )
        binding = self._binding = backends.current_binding()
        self._clock = binding.clock
        self._loop = binding.loop
        self._current_loop = binding.current_loop
        # Wall time at loop time T is W0 + (T - T0) + (D - D0), D being
        # wall_clock() - time.monotonic(): a virtual loop clock drives it,
        # and a step of the wall clock or a suspend (which stops the
        # monotonic clock) moves D. So offset = (M0 - T0) + D.
        self._offset_base = time.monotonic() - binding.clock()
        self._read_wall_offset()
        # On the loop's own monotonic clock, wall time is wall_clock() plus
        # this constant (the start_at hot path reads one clock, not three).
        self._fast_offset = None
        if binding.monotonic_clock:
            self._fast_offset = self._offset_base + binding.clock() - time.monotonic()
        manager = self._manager
        if manager is not None:
            # One wall clock for a Manager: its schedulers take the offsets
            # of the first one bound to this loop, or a job added through
            # one and run by another could look a few microseconds early
            # or late (each reading of two clocks differs a little).
            for sibling in manager.schedulers:
                if sibling is not self and sibling._loop == self._loop:
                    self._offset_base = sibling._offset_base
                    self._wall_offset = sibling._wall_offset
                    self._fast_offset = sibling._fast_offset
                    break
        return binding

    def _read_wall_offset(self) -> float:
        """Read the wall clock again; return (and keep) wall minus loop time.

        Two clocks read one after the other differ by a few microseconds
        each time: below a millisecond, keep the offset as it was, so that
        a ``start_after`` job's ``when`` does not flicker.
        """
        wall_clock = self._wall_clock
        before = time.monotonic()
        wall = wall_clock()
        after = time.monotonic()
        if after - before > _READ_SLACK:
            # Preempted between the reads (a busy machine): the pair would
            # be off by as long as that took. Read again, once.
            before = time.monotonic()
            wall = wall_clock()
            after = time.monotonic()
        # In whole microseconds, a datetime's resolution: loop times (a
        # virtual clock's are often in microseconds) plus the offset then
        # give the same datetime for the same instant, not one a
        # microsecond off by the offset's rounding.
        offset = round(self._offset_base + wall - (before + after) / 2, 6)
        if abs(offset - self._wall_offset) > _OFFSET_NOISE:
            self._wall_offset = offset
        return self._wall_offset

    def _wall_time_of(self, deadline: float) -> float:
        return deadline + self._wall_offset

    def _naive_to_utc(self, when: datetime) -> datetime:
        return naive_to_utc(when, self._prefer_utc)

    # -- admitting jobs -------------------------------------------------------

    def _check_open(self) -> None:
        """Raise if no job may be added now (the loop check is the caller's)."""
        if self._closed:
            raise SchedulerClosed(
                f"{type(self).__name__} is closed; create a new scheduler to "
                "schedule more jobs"
            )
        max_tasks = self._max_tasks
        if max_tasks is not None and self._loads[self._slot] >= max_tasks:
            raise TaskLimitReached(
                f"{type(self).__name__} already has max_tasks={max_tasks} "
                "pending and running jobs"
            )

    def _wake(self) -> None:
        engine = self._engine
        if engine is not None:
            engine.wake()
            # It will look at the pending jobs again anyway: until it sleeps
            # again, further jobs need not wake it.
            self._sleeping_until = _NOT_SLEEPING

    # -- the job runner (called by engines) -----------------------------------

    def _job_coroutine(self, task: Task[Any]) -> Coroutine[Any, Any, Any]:
        args = task._args
        if args is None:
            return task.callback  # type: ignore[return-value]
        return task.callback(*args)  # type: ignore[operator]

    def _job_finished(self, task: Task[Any], value: Any) -> None:
        task._state = FINISHED
        task._outcome = value
        if self._waiters or self._rooms:
            self._settle(task)
            return
        # _settle with neither waiters nor rooms, inlined: every job that
        # ends well passes here.
        loads = self._loads
        slot = self._slot
        loads[slot] -= 1
        if not loads[slot] and self._idle_event is not None:
            self._settle_idle()

    def _job_failed(self, task: Task[Any], exc: BaseException) -> None:
        task._state = FAILED
        task._outcome = (exc, exc.__traceback__)
        self._settle(task)
        if isinstance(exc, Exception):
            self._report(task, exc)

    def _job_cancelled(self, task: Task[Any]) -> None:
        task._state = CANCELLED
        if task._args is None:
            # Coroutine form: close it in case it never started, so Python
            # does not warn that it was never awaited. Closing an ended
            # coroutine does nothing.
            task.callback.close()  # type: ignore[union-attr]
        self._settle(task)

    def _settle(self, task: Task[Any]) -> None:
        if self._waiters:
            waiter = self._waiters.pop(task, None)
            if waiter is not None:
                waiter.set()
        loads = self._loads
        slot = self._slot
        loads[slot] -= 1
        if not loads[slot] and self._idle_event is not None:
            self._settle_idle()
        if self._rooms:
            self._room_freed()

    def _room_freed(self) -> None:
        for room in self._rooms:
            room.freed()

    def _new_room(self) -> Room:
        return Room((self,), lambda: self._closed)

    def _settle_idle(self) -> None:
        idle = self._idle_event
        assert idle is not None
        self._idle_event = None
        idle.set()

    def _report(self, task: Task[Any], exc: Exception) -> None:
        on_error = self._on_error
        if on_error is None:
            logger.error(
                "%s raised %s", _safe_repr(task), _safe_repr(exc), exc_info=exc
            )
        elif on_error == "raise":
            # As a task group does: keep every failure, and let no later job
            # start (close now, not when the serving task next runs).
            self._failures.append(exc)
            self._request_close()
        else:
            try:
                on_error(task, exc)
            except Exception:
                logger.exception("on_error handler %r failed for %r", on_error, task)

    # -- cancelling -----------------------------------------------------------

    def cancel(self, task: Task[Any]) -> bool:
        """Cancel *task*.

        A pending job never runs; a running job is cancelled.

        :return: ``True`` if the cancellation was delivered; ``False`` if the
            task had already ended or belongs to another scheduler
        :raises TypeError: if *task* is not a :class:`Task`
        """
        if not isinstance(task, Task):
            raise TypeError(
                f"cancel() takes a Task (what scheduling returned), not {task!r}"
            )
        if task._owner is not self:
            return False
        return self._cancel_task(task)

    def _cancel_task(self, task: Task[Any]) -> bool:
        if self._current_loop() != self._loop:
            self._bind()  # raises: cancelling from another thread is not safe
        state = task._state
        if state == PENDING:
            # Inlined _job_cancelled_pending: a mass cancel is a hot path.
            task._state = CANCELLED
            # Inlined PendingJobs.discard.
            pending = self._pending
            pending._garbage += 1
            if pending._garbage > pending._compact_above:
                pending.compact_if_worth()
            if task._args is None:
                task.callback.close()  # type: ignore[union-attr]
            if self._waiters:
                self._settle(task)
            else:
                loads = self._loads
                slot = self._slot
                loads[slot] -= 1
                if not loads[slot] and self._idle_event is not None:
                    self._settle_idle()
                if self._rooms:
                    self._room_freed()
            return True
        if state == RUNNING:
            engine = self._engine
            assert engine is not None
            engine.cancel_job(task)
            return True
        return False

    def _job_cancelled_pending(self, task: Task[Any]) -> None:
        if task._args is None:
            task.callback.close()  # type: ignore[union-attr]
        self._settle(task)

    # -- seeing what is there (see _introspect) ------------------------------

    def statistics(self) -> SchedulerStatistics:
        """Return how many jobs are pending and running now, and the limit.

        Cheap: computed from counts the scheduler keeps anyway. ::

            stats = scheduler.statistics()
            if stats.pending > 1000:
                ...

        .. versionadded:: 2.0
        """
        pending = len(self._pending)
        return SchedulerStatistics(
            pending=pending,
            running=self._loads[self._slot] - pending,
            max_tasks=self._max_tasks,
        )

    def pending_tasks(self) -> list[Task[Any]]:
        """Return the pending tasks, in the order they are due to start.

        Timed schedulers: by due time, ties in scheduling order. Queued: in
        scheduling order; LIFO: newest first. A new list each time, made in
        O(n) (O(n log n) for timed schedulers). ::

            for task in scheduler.pending_tasks():
                print(task)

        .. versionadded:: 2.0
        """
        return pending_in_order(self._pending)

    # -- lifecycle ------------------------------------------------------------

    @property
    def is_started(self) -> bool:
        """``True`` while the scheduler serves.

        .. versionadded:: 2.0
        """
        return self._run_state is _RUNNING

    def _claim(self) -> None:
        if self._run_state is _CLOSED and not self._served:
            raise RuntimeError(
                f"this {type(self).__name__} was closed before it started; a "
                "scheduler serves once, so create a new one"
            )
        if self._run_state is not _INITIAL:
            raise RuntimeError(
                f"this {type(self).__name__} has already been started; a "
                "scheduler serves once, so create a new one"
            )
        self._run_state = _RUNNING
        self._served = True

    def start(self) -> None:
        """Start serving in the background on the running asyncio loop (1.x).

        The structured ways (``async with``, ``task_group.start(scheduler.run)``)
        are preferred; this keeps 1.x code working unchanged.

        :raises RuntimeError: if no asyncio loop is running, under Trio, or if
            the scheduler was started before
        """
        binding = self._bind()
        self._claim()
        try:
            binding.start_facade(self._serve_facade)
        except BaseException:
            self._run_state = _INITIAL
            raise

    async def _serve_facade(self) -> None:
        try:
            await self._serve_claimed(anyio.TASK_STATUS_IGNORED, group_failure=True)
        except BaseExceptionGroup as group:
            # asyncio lets KeyboardInterrupt and SystemExit out of the event
            # loop only when a task raises them bare; a task group wraps them.
            interrupt = _interrupt_in(group)
            if interrupt is None:
                raise
            raise interrupt from None

    async def run(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until cancelled or closed; for ``task_group.start(scheduler.run)``.

        Reports started once it serves. On cancellation, pending and running
        jobs are cancelled before the cancellation propagates.

        :raises RuntimeError: if the scheduler was started before
        :raises ExceptionGroup: with ``on_error="raise"``, holding the first
            job failure
        """
        self._claim()
        await self._serve_claimed(task_status, group_failure=True)

    async def _serve_claimed(
        self, task_status: TaskStatus[None], *, group_failure: bool
    ) -> None:
        token = _serving.set((*_serving.get(), self))
        try:
            await self._open_store()
            try:
                engine = self._bind().open_engine(self)
                async with engine:
                    self._engine = engine
                    try:
                        with anyio.CancelScope() as scope:
                            self._serve_scope = scope
                            if self._closing:
                                scope.cancel()
                            task_status.started()
                            await self._serve(engine)
                    finally:
                        self._serve_scope = None
                        self._shut_down(engine)
            finally:
                # Every job has ended: record their outcomes, then close.
                await self._close_store()
        except BaseException as exc:
            if not self._failures:
                raise
            # Cancelled from outside after a job failed, or a job's
            # BaseException: the failures still surface, as from a task group.
            cancelled = anyio.get_cancelled_exc_class()
            others: list[BaseException] = []
            if isinstance(exc, BaseExceptionGroup):
                # Trio's nursery wraps the cancellation in a group.
                rest = exc.split(cancelled)[1]
                if rest is not None:
                    others.append(rest)
            elif not isinstance(exc, cancelled):
                others.append(exc)
            raise self._failure_group(group_failure, others) from None
        finally:
            _serving.reset(token)
            self._engine = None
            self._set_closed()
            self._stopped = True
            stopped = self._stopped_event
            if stopped is not None:
                stopped.set()
        if self._failures:
            raise self._failure_group(group_failure, [])

    def _failure_group(
        self, group_failure: bool, others: list[BaseException]
    ) -> BaseExceptionGroup[Any]:
        """Return the group that carries every job failure out of the scheduler."""
        failures: list[BaseException] = [*self._failures, *others]
        message = "a job failed and on_error='raise'"
        if len(self._failures) > 1:
            message = f"{len(self._failures)} jobs failed and on_error='raise'"
        if group_failure or others:
            return BaseExceptionGroup(message, failures)
        # Hosted: the host task group wraps what we raise; `async with`
        # unwraps it.
        return HostedFailures(message, self._failures)

    def _shut_down(self, engine: backends.Engine) -> None:
        """Refuse new jobs, cancel pending ones and deliver cancel to running ones."""
        self._set_closed()
        self._cancel_pending()
        engine.cancel_all()

    def _cancel_pending(self) -> None:
        self._close_schedules()
        for task in self._pending.drain():
            task._state = CANCELLED
            self._job_cancelled_pending(task)

    async def _serve(self, engine: backends.Engine) -> None:
        raise NotImplementedError

    async def _open_store(self) -> None:
        """Open the durable store, if any, before serving."""

    async def _close_store(self) -> None:
        """Close the durable store, if any, once every job has ended."""

    def _close_schedules(self) -> None:
        """Finish every recurring schedule (the scheduler is closing)."""

    def _schedule_finished(self) -> None:
        """A recurring schedule finished: it no longer keeps join() waiting."""
        self._pinned -= 1
        idle = not self._pinned and not self._loads[self._slot]
        if idle and self._idle_event is not None:
            self._settle_idle()

    async def join(self) -> None:
        """Wait until no job is pending or running.

        Jobs may schedule more jobs meanwhile; ``join()`` returns only when
        all of them are done.
        """
        if self in _serving.get():
            raise RuntimeError(
                f"a job cannot await join() of its own {type(self).__name__}: "
                "join() waits for every job, this one included, so it would "
                "wait for itself forever"
            )
        while self._loads[self._slot] or self._pinned:
            idle = self._idle_event
            if idle is None:
                idle = self._idle_event = anyio.Event()
            await idle.wait()

    def _request_close(self) -> None:
        if self._run_state is _INITIAL:
            self._unclaim()
            return
        self._closing = True
        self._closed = True  # stop taking jobs now, not once the serving task ends
        self._on_closed()
        # Cancel now rather than when the serving task next runs: a job the
        # loop was handed but has not stepped yet must end cancelled, never
        # start (Trio may step it before the serving task sees the cancel).
        self._cancel_pending()
        engine = self._engine
        if engine is not None:
            engine.cancel_all()
        scope = self._serve_scope
        if scope is not None:
            scope.cancel()

    # ASYNC109: timeout is a grace period for the jobs, not a deadline on
    # the caller (aclose still returns only once every job has ended).
    async def aclose(
        self,
        *,
        drain: bool = False,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> None:
        """Stop taking jobs, cancel pending and running jobs, and wait for them.

        Idempotent. Afterwards :attr:`is_started` is ``False`` and scheduling
        raises :exc:`SchedulerClosed`.

        With ``drain=True``, running jobs are not cancelled but allowed to
        finish, for at most *timeout* seconds of the loop clock (``None``: no
        limit), after which those still running are cancelled. Pending jobs
        are cancelled either way, and scheduling raises
        :exc:`SchedulerClosed` from the call on. If the caller is cancelled
        while draining, the running jobs are cancelled too. ::

            await scheduler.aclose(drain=True, timeout=30)

        :raises TypeError: if *timeout* is not a number or ``None``, or is
            given without ``drain=True``
        :raises ValueError: if *timeout* is negative

        .. versionchanged:: 2.0
           ``drain`` and ``timeout``.
        """
        if drain or timeout is not None:
            seconds = _drain.check_drain_timeout(drain, timeout)
            await _drain.drain((self,), seconds)
        self._request_close()
        if self._stopped:
            return
        stopped = self._stopped_event
        if stopped is None:
            stopped = self._stopped_event = anyio.Event()
        await stopped.wait()

    def _stop_taking(self) -> None:
        """Refuse new jobs and cancel pending ones; running ones go on (drain)."""
        if self._run_state is _INITIAL:
            self._request_close()  # nothing runs: closed for good at once
            return
        self._closed = True
        self._on_closed()
        self._cancel_pending()

    def _set_closed(self) -> None:
        self._run_state = _CLOSED
        self._closed = True
        self._on_closed()

    def _on_closed(self) -> None:
        """Tell whoever watches this scheduler that it takes no more jobs.

        Called each time it is marked closed (so possibly more than once):
        its Manager stops as a whole rather than route to a closed scheduler.
        """
        if self._rooms:
            for room in list(self._rooms):
                room.wake_all()
        manager = self._manager
        if manager is not None:
            manager._child_closed(self)

    def _unclaim(self) -> None:
        self._set_closed()
        self._stopped = True
        self._cancel_pending()

    async def _start_in(self, group: TaskGroup) -> None:
        await group.start(self._serve_hosted)

    async def _serve_hosted(self, *, task_status: TaskStatus[None]) -> None:
        await self._serve_claimed(task_status, group_failure=False)


def _safe_repr(obj: object) -> str:
    """``repr(obj)``, or a stand-in if it raises: a log line must not fail."""
    try:
        return repr(obj)
    except Exception:
        return f"<{type(obj).__qualname__} object (repr() failed)>"


def _interrupt_in(group: BaseExceptionGroup[Any]) -> BaseException | None:
    """Return the first KeyboardInterrupt or SystemExit in *group*, if any."""
    matched: BaseException | None = group.split((KeyboardInterrupt, SystemExit))[0]
    while isinstance(matched, BaseExceptionGroup):
        matched = matched.exceptions[0]
    return matched


_UNBOUND = object()


def _no_loop() -> None:
    return None


def _unbound_clock() -> float:
    raise RuntimeError("the scheduler is not bound to an event loop yet")
