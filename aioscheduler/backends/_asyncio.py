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
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio

from aioscheduler._task import FINISHED

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
    if not isinstance(resolution, float):
        resolution = time.get_clock_info("monotonic").resolution
    return resolution


# AnyIO's table of each asyncio task's innermost cancel scope (private; see
# _shielded). Imported once here: a cancel of every running job looks at it.
try:
    from anyio._backends._asyncio import _task_states as _anyio_task_states
except ImportError:  # pragma: no cover - depends on AnyIO's internals
    _anyio_task_states = None  # type: ignore[assignment]

#: How often to look again whether a shielded job can take its cancellation.
SHIELD_POLL = 0.01


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
        # job -> its Task, so cancel_all can settle jobs that never started.
        self._jobs: dict[asyncio.Task[None], Task] = {}
        self._wakeup: asyncio.Future[None] | None = None
        self._woken = False
        self._all_ended: asyncio.Future[None] | None = None
        self._serving: asyncio.Task[Any] | None = None
        # The job running inline in the serving task, and whether we have
        # cancelled the serving task on its behalf.
        self._timer_slack = _timer_slack(loop)
        self._inline: Task | None = None
        self._inline_cancelled = False
        # Jobs (or the inline Task) whose cancellation waits for a shield.
        self._deferred: set[Any] = set()
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
        if self._woken:
            self._woken = False
            await asyncio.sleep(0)
            return
        loop = self._loop
        future = self._wakeup = loop.create_future()
        timer = None
        if deadline is not None:
            timer = loop.call_at(deadline + self._timer_slack, _resolve, future)
        try:
            await future
        finally:
            self._wakeup = None
            self._woken = False
            if timer is not None:
                timer.cancel()

    def wake(self) -> None:
        future = self._wakeup
        if future is None:
            self._woken = True
        elif not future.done():
            future.set_result(None)

    async def checkpoint(self) -> None:
        await asyncio.sleep(0)

    def spawn(self, task: Task) -> None:
        job = self._loop.create_task(self._run(task))
        task._value = job
        self._jobs[job] = task

    async def _run(self, task: Task) -> None:
        # spawn() stored our handle there before this coroutine first runs.
        job: asyncio.Task[None] = task._value
        host = self._host
        try:
            # host._job_coroutine and host._job_finished, inlined: this is
            # the per-job path of every timed job.
            args = task._args
            value = await (task.callback if args is None else task.callback(*args))  # type: ignore[operator, misc]
        except asyncio.CancelledError:
            host._job_cancelled(task)
        except Exception as exc:
            host._job_failed(task, exc)
        except BaseException as exc:
            host._job_failed(task, exc)
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                # asyncio re-raises these out of the event loop, which is
                # where they belong.
                raise
            # Any other BaseException would sit on a task nobody awaits:
            # end the serving task with it instead, as a task group would
            # (this job has ended: it is not among those to cancel).
            self._forget(job)
            self._abort(exc)
        else:
            task._state = FINISHED
            task._value = value
            host._settle(task)
        finally:
            jobs = self._jobs
            jobs.pop(job, None)
            if not jobs and self._all_ended is not None:
                _resolve(self._all_ended)

    def _abort(self, exc: BaseException) -> None:
        if self._fatal is None:
            self._fatal = exc
        self._host._request_close()

    def _forget(self, job: asyncio.Task[None]) -> None:
        jobs = self._jobs
        jobs.pop(job, None)
        if not jobs and self._all_ended is not None:
            _resolve(self._all_ended)

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
        task._value = None
        try:
            args = task._args
            value = await (task.callback if args is None else task.callback(*args))  # type: ignore[operator, misc]
        except asyncio.CancelledError:
            host._job_cancelled(task)
            if self._inline_cancelled:
                if not self._take_back_inline_cancel():
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
            task._state = FINISHED
            task._value = value
            host._settle(task)
        finally:
            self._inline = None
        if self._inline_cancelled:
            await self._absorb_inline_cancel()

    async def _absorb_inline_cancel(self) -> None:
        """Undo the cancel sent to an inline job that ended without it.

        Either the job swallowed it, or it came after the job's last await
        (the job cancelled itself, say) and would land on the serving
        task's next await, killing the next job. Take it here, then undo it
        on the serving task, so it does not look cancelled from outside.
        """
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            if not self._take_back_inline_cancel():
                raise  # someone else cancelled the serving task too
        else:
            self._take_back_inline_cancel()

    def _take_back_inline_cancel(self) -> bool:
        """Undo the cancel we sent; ``True`` if no other cancel is pending."""
        if not self._inline_cancelled:
            return False
        self._inline_cancelled = False
        assert self._serving is not None
        return self._serving.uncancel() == 0

    def cancel_job(self, task: Task) -> None:
        if task is self._inline:
            self._cancel_inline(task)
            return
        self._cancel_spawned(task._value, task)

    def _cancel_spawned(self, job: asyncio.Task[None], task: Task) -> None:
        if job.cancelling() or job in self._deferred:
            # Cancelled once already: a second task.cancel() could land in
            # the job's shielded cleanup.
            return
        if _shielded(job, None):
            self._defer(job, task)
            return
        job.cancel()
        if _never_started(job):
            # Its coroutine will never run, so neither will _run's bookkeeping.
            self._host._job_cancelled(task)
            self._forget(job)

    def _cancel_inline(self, task: Task) -> None:
        if self._inline_cancelled or task in self._deferred:
            return
        serving = self._serving
        assert serving is not None
        # Only the job's own scopes count, not those around the serving task.
        if _shielded(serving, self._host._serve_scope):
            self._defer(task, task)
            return
        self._inline_cancelled = True
        serving.cancel()

    def _defer(self, key: Any, task: Task) -> None:
        self._deferred.add(key)
        self._loop.call_later(SHIELD_POLL, self._retry_cancel, key, task)

    def _retry_cancel(self, key: Any, task: Task) -> None:
        self._deferred.discard(key)
        if task is self._inline:
            self._cancel_inline(task)
        elif key in self._jobs:
            self._cancel_spawned(key, task)

    def cancel_all(self) -> None:
        inline = self._inline
        if inline is not None:
            self.cancel_job(inline)
        for job, task in list(self._jobs.items()):
            self._cancel_spawned(job, task)


class AsyncioBinding(LoopBinding):
    """One running asyncio loop."""

    name = "asyncio"

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.clock = loop.time
        if sys.version_info >= (3, 12):
            self.loop = loop
            self.current_loop = _get_running_loop
        else:
            # On 3.11 asyncio._get_running_loop() makes a getpid() system
            # call (fork detection): the thread is a 6x cheaper identity for
            # the per-job check. Binding (_bind) still checks the loop itself.
            self.loop = threading.get_ident()
            self.current_loop = threading.get_ident
        # Strong references to facade serving tasks: the loop itself keeps
        # only weak ones.
        self._facades: set[asyncio.Task[None]] = set()

    def in_loop(self) -> bool:
        return _get_running_loop() is self._loop

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
