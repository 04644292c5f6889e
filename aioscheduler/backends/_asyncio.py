"""asyncio: the native engine and the 1.x ``start()`` facade.

The native engine exists for speed: AnyIO's task group and cancel scopes cost
several times a plain ``loop.create_task`` per job on asyncio. It keeps every
semantic of the portable engine: each job is an asyncio task the engine
tracks in a set (so it can cancel one, or all, and wait for them), and the
serving task sleeps on a future that a ``call_at`` timer or a wake-up
resolves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio

from aioscheduler._task import RUNNING

from ._anyio import AnyioEngine
from ._interface import Engine, JobHost, LoopBinding

if TYPE_CHECKING:
    from aioscheduler._task import Task

__all__ = ["AsyncioBinding", "AsyncioEngine"]

_get_running_loop = asyncio._get_running_loop


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _stray_cancel() -> bool:
    """Return ``True`` if nobody is cancelling the current task.

    A CancelledError then came from inside a job (say, it awaited a future
    that something else cancelled), not from a cancellation of ours.
    """
    current = asyncio.current_task()
    return current is not None and not current.cancelling()


def _timer_slack(loop: asyncio.AbstractEventLoop) -> float:
    """How much later than a deadline to set a timer so it never fires early.

    asyncio runs a timer once ``loop.time() + clock resolution`` passes it,
    so a timer at the deadline itself may fire while ``loop.time()`` is still
    below it. The serving task would then find nothing due and set the same
    timer again: a spin that ends only when the clock moves on, which a
    virtual clock (that moves only when the loop is idle) never does.
    """
    resolution = getattr(loop, "_clock_resolution", None)
    if isinstance(resolution, float):
        return resolution
    if type(loop).__module__.partition(".")[0] == "uvloop":
        # uvloop keeps time in whole milliseconds (libuv's): a timer fires
        # up to a millisecond before a deadline between two ticks.
        return _UVLOOP_RESOLUTION
    return time.get_clock_info("monotonic").resolution


_UVLOOP_RESOLUTION = 1e-3


# AnyIO's table of each asyncio task's innermost cancel scope (private; see
# _shielded). Imported once here: a cancel of every running job looks at it.
try:
    from anyio._backends._asyncio import _task_states as _anyio_task_states
except ImportError:  # pragma: no cover - depends on AnyIO's internals
    _anyio_task_states = None  # type: ignore[assignment]


def _shielded(task: asyncio.Task[Any], base: object) -> bool:
    """Return ``True`` if *task* is inside an AnyIO shield entered below *base*.

    AnyIO's shields stop AnyIO's cancellation only: a raw ``task.cancel()``
    would break through one. So a job's cancellation waits until the job has
    left its shielded sections, as it would on every other path. AnyIO keeps
    a task's innermost scope in a private table; without it (another AnyIO
    version), assume no shield rather than fail.
    """
    if _anyio_task_states is None:  # pragma: no cover - another AnyIO
        return False
    scope = getattr(_anyio_task_states.get(task), "cancel_scope", None)
    while scope is not None and scope is not base:
        if getattr(scope, "_shield", False):
            return True
        scope = getattr(scope, "_parent_scope", None)
    return False


def _never_started(job: asyncio.Task[None]) -> bool:
    coro = job.get_coro()
    return (
        coro is not None
        and getattr(coro, "cr_frame", None) is not None
        and not getattr(coro, "cr_running", False)
        and not getattr(coro, "cr_suspended", True)
    )


class AsyncioEngine(Engine):
    """Runs jobs as plain asyncio tasks; see the module docstring."""

    def __init__(self, host: JobHost, loop: asyncio.AbstractEventLoop) -> None:
        self._host = host
        self._loop = loop
        # Each running spawned job's asyncio task, by its Task: to cancel one
        # (or all), and to know when all have ended. An eager task factory
        # may run a job to its end inside create_task(): such a job is never
        # entered here.
        self._jobs: dict[Task, asyncio.Task[None]] = {}
        self._wakeup: asyncio.Future[None] | None = None
        self._all_ended: asyncio.Future[None] | None = None
        self._serving: asyncio.Task[Any] | None = None
        self._timer_slack = _timer_slack(loop)
        # The job running inline in the serving task, and how many cancels
        # we sent the serving task on its behalf (to take back afterwards).
        self._inline: Task | None = None
        self._inline_cancels = 0
        # Jobs we are cancelling: the cancellation is delivered again while
        # they run (level-triggered, as a cancel scope is), so a job that
        # caught one CancelledError is cancelled again at its next await.
        self._cancelling: set[Task] = set()
        # A BaseException from a job, to raise when the engine exits.
        self._fatal: BaseException | None = None

    async def __aenter__(self) -> AsyncioEngine:
        self._serving = asyncio.current_task()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._jobs:
            # Like a task group: wait for the jobs even if we are being
            # cancelled; the scheduler has cancelled them first in that case.
            self._all_ended = self._loop.create_future()
            with anyio.CancelScope(shield=True):
                await self._all_ended
        fatal = self._fatal
        if fatal is not None:
            self._fatal = None
            raise BaseExceptionGroup("a job raised a BaseException", [fatal])

    async def sleep_until(self, deadline: float | None) -> None:
        loop = self._loop
        future = self._wakeup = loop.create_future()
        timer = None
        if deadline is not None:
            timer = loop.call_at(deadline + self._timer_slack, _resolve, future)
        try:
            await future
        finally:
            self._wakeup = None
            if timer is not None:
                timer.cancel()

    def wake(self) -> None:
        future = self._wakeup
        # Only ever called while sleep_until sleeps (the scheduler wakes it
        # only then), so there is a future to resolve.
        if future is not None and not future.done():
            future.set_result(None)

    async def checkpoint(self) -> None:
        await asyncio.sleep(0)

    def spawn(self, task: Task) -> None:
        job = self._loop.create_task(self._run(task))
        if task._state == RUNNING:  # not ended already by an eager factory
            self._jobs[task] = job

    async def _run(self, task: Task) -> None:
        host = self._host
        try:
            value = await host._job_coroutine(task)
        except asyncio.CancelledError:
            host._job_cancelled(task)
        except Exception as exc:
            host._job_failed(task, exc)
        except BaseException as exc:
            host._job_failed(task, exc)
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                # asyncio re-raises these out of the event loop, which is
                # where they belong; the task keeps a copy nobody asks for.
                self._job_of(task).add_done_callback(_retrieve)
                raise
            # Any other BaseException would sit on a task nobody awaits:
            # end the serving task with it instead, as a task group would.
            self._abort(exc)
        else:
            host._job_finished(task, value)
        finally:
            if self._cancelling:
                self._cancelling.discard(task)
            jobs = self._jobs
            jobs.pop(task, None)
            if not jobs and self._all_ended is not None:
                _resolve(self._all_ended)

    def _job_of(self, task: Task) -> asyncio.Task[Any]:
        """Return the asyncio task running *task*'s job."""
        job = self._jobs.get(task)
        if job is None:
            # Not entered yet: it is in the first step an eager task factory
            # runs inside create_task(), so it is the current task.
            current = asyncio.current_task()
            assert current is not None
            return current
        return job

    def _abort(self, exc: BaseException) -> None:
        if self._fatal is None:
            self._fatal = exc
        self._host._request_close()

    async def run_inline(
        self, task: Task, next_task: Callable[[], Task | None], limit: int
    ) -> None:
        while True:
            await self._run_inline(task)
            limit -= 1
            following = next_task() if limit else None
            if following is None:
                return
            task = following

    async def _run_inline(self, task: Task) -> None:
        host = self._host
        self._inline = task
        try:
            value = await host._job_coroutine(task)
        except asyncio.CancelledError:
            host._job_cancelled(task)
            if self._inline_cancels:
                if not self._take_back_inline_cancels():
                    raise  # someone else cancelled the serving task too
            elif not _stray_cancel():
                raise
            # else: the job raised CancelledError without being cancelled
            # (it awaited something else's cancelled future): it alone ends.
        except Exception as exc:
            host._job_failed(task, exc)
        except BaseException as exc:
            host._job_failed(task, exc)
            raise
        else:
            host._job_finished(task, value)
        finally:
            self._inline = None
        if self._inline_cancels:
            await self._absorb_inline_cancel()

    async def _absorb_inline_cancel(self) -> None:
        """Undo the cancels sent to an inline job that ended without them.

        Either the job swallowed them, or one came after the job's last await
        (the job cancelled itself, say) and would land on the serving task's
        next await, killing the next job. Take it here, then undo ours on
        the serving task, so it does not look cancelled from outside.
        """
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            if not self._take_back_inline_cancels():
                raise  # someone else cancelled the serving task too
        else:
            self._take_back_inline_cancels()

    def _take_back_inline_cancels(self) -> bool:
        """Undo the cancels we sent; ``True`` if no other cancel is pending."""
        serving = self._serving
        assert serving is not None
        remaining = serving.cancelling()
        while self._inline_cancels:
            self._inline_cancels -= 1
            remaining = serving.uncancel()
        return remaining == 0

    def cancel_job(self, task: Task) -> None:
        if task in self._cancelling:
            return  # being cancelled already, again at each await
        self._cancelling.add(task)
        self._deliver_cancel(task)

    def _deliver_cancel(self, task: Task) -> None:
        """Cancel *task*'s job now if it can take it, and look again soon.

        Called again on every loop iteration while the job runs, as AnyIO
        delivers a cancel scope's cancellation; while the job is in a
        shielded section, each time it wakes up.
        """
        if task._state != RUNNING or task not in self._cancelling:
            self._cancelling.discard(task)
            return
        loop = self._loop
        if task is self._inline:
            job = self._serving
            assert job is not None
            # Only the job's own scopes count, not those around the serving task.
            shield_base: object = self._host._serve_scope
        else:
            job = self._job_of(task)
            shield_base = None
        if _shielded(job, shield_base):
            # Look again when the job wakes up (it may leave the shield in
            # that step): a callback on what it awaits runs right after its
            # own wake-up. No timer, no spin, and a virtual clock moves on.
            waiter = job._fut_waiter  # type: ignore[attr-defined]
            if waiter is not None and not waiter.done():
                waiter.add_done_callback(partial(self._redeliver, task))
            else:
                loop.call_soon(self._deliver_cancel, task)
            return
        if job is not asyncio.current_task() and _never_started(job):
            # Its coroutine will never run, so neither will _run's bookkeeping.
            job.cancel()
            self._cancelling.discard(task)
            self._host._job_cancelled(task)
            self._forget(task)
            return
        if not job._must_cancel:  # type: ignore[attr-defined]
            waiter = job._fut_waiter  # type: ignore[attr-defined]
            if waiter is None or not waiter.done():
                job.cancel()
                if task is self._inline:
                    self._inline_cancels += 1
        loop.call_soon(self._deliver_cancel, task)

    def _redeliver(self, task: Task, _: object) -> None:
        self._deliver_cancel(task)

    def _forget(self, task: Task) -> None:
        jobs = self._jobs
        jobs.pop(task, None)
        if not jobs and self._all_ended is not None:
            _resolve(self._all_ended)

    def cancel_all(self) -> None:
        inline = self._inline
        if inline is not None and inline._state == RUNNING:
            self.cancel_job(inline)
        for task in list(self._jobs):
            if task._state == RUNNING:
                self.cancel_job(task)


def _retrieve(job: asyncio.Task[Any]) -> None:
    """Mark *job*'s exception retrieved (it was raised out of the loop already)."""
    if not job.cancelled():
        job.exception()


class AsyncioBinding(LoopBinding):
    """One running asyncio loop."""

    name = "asyncio"

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.get_ident()
        self.clock = loop.time
        # BaseEventLoop.time() is time.monotonic(); a test loop (looptime)
        # or uvloop (milliseconds, cached per iteration) has its own.
        self.monotonic_clock = type(loop).time is asyncio.BaseEventLoop.time
        if sys.version_info >= (3, 12):
            self.loop = loop
            self.current_loop = _get_running_loop
        else:
            # On 3.11 asyncio._get_running_loop() makes a getpid() system
            # call (fork detection), 7x the cost of this check: "this thread,
            # and this loop runs" (only one loop runs in a thread at a time).
            self.loop = True
            self.current_loop = _runs_here(loop, self._thread)
        # Strong references to facade serving tasks: the loop itself keeps
        # only weak ones.
        self._facades: set[asyncio.Task[None]] = set()

    def in_loop(self) -> bool:
        return _get_running_loop() is self._loop

    def in_same_thread(self, other: LoopBinding) -> bool:
        return isinstance(other, AsyncioBinding) and other._thread == self._thread

    def open_engine(self, host: JobHost) -> Engine:
        from . import portable_forced

        if portable_forced():
            return AnyioEngine(
                host, timer_slack=_timer_slack(self._loop), stray_cancel=_stray_cancel
            )
        return AsyncioEngine(host, self._loop)

    def start_facade(self, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        facade = self._loop.create_task(run())
        self._facades.add(facade)
        facade.add_done_callback(self._facade_done)

    def _facade_done(self, facade: asyncio.Task[None]) -> None:
        self._facades.discard(facade)
        if facade.cancelled():
            return
        exc = facade.exception()
        if exc is not None:
            # Nobody awaits a facade: report what ended it rather than let
            # asyncio complain that the exception was never retrieved.
            logging.getLogger("aioscheduler").error(
                "scheduler started with start() stopped on an error", exc_info=exc
            )


def _runs_here(loop: asyncio.AbstractEventLoop, thread: int) -> Callable[[], bool]:
    """Return a cheap test: is *loop* running, in the calling thread *thread*?"""
    get_ident = threading.get_ident
    if isinstance(loop, asyncio.BaseEventLoop):
        # _thread_id is set while the loop runs, None otherwise.
        return lambda: loop._thread_id == get_ident()  # type: ignore[attr-defined]
    is_running = loop.is_running
    return lambda: get_ident() == thread and is_running()


def current_binding() -> AsyncioBinding | None:
    """Return the binding of the asyncio loop running in this thread, if any."""
    loop = _get_running_loop()
    if loop is None:
        return None
    binding: AsyncioBinding | None = getattr(loop, "_aioscheduler_binding", None)
    if binding is None:
        binding = AsyncioBinding(loop)
        # A loop class with __slots__ refuses the attribute: then each call
        # makes a fresh binding, which is only slower.
        with contextlib.suppress(AttributeError):
            loop._aioscheduler_binding = binding  # type: ignore[attr-defined]
    return binding
