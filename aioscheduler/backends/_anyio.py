"""The portable engine: every mechanism through AnyIO's public API.

It runs on any loop AnyIO supports and is the reference the native engines
must match. Jobs run in an AnyIO task group, each inside its own cancel scope
(so one job can be cancelled alone); the serving task sleeps on a memory
object stream, the scheduler's inbox of wake-ups.
"""

from __future__ import annotations

import contextlib
import math
from abc import abstractmethod
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskGroup

from ._interface import Engine, JobHost

if TYPE_CHECKING:
    from aioscheduler._task import Task

__all__ = ["AnyioEngine", "ScopedJobs"]


class ScopedJobs(Engine):
    """Jobs each in a cancel scope of its own: what the AnyIO and Trio engines share.

    A subclass says how to make a scope and opens the group (a task group
    or a nursery: both have ``start_soon`` and ``cancel_scope``); this class
    starts each job in the group inside its scope (or runs it inline),
    records its outcome, and cancels it through its scope.
    """

    _host: JobHost
    _cancelled_exc: type[BaseException]
    # The open task group or nursery, while serving.
    _group: TaskGroup | Any = None
    # Set by cancel_all: the group's scope is cancelled, so a job that has
    # not started yet must not start (it would run to its first checkpoint).
    _all_cancelled = False
    # Each spawned job's cancel scope, by its Task, while it runs.
    _scopes: dict[Task, Any]
    # The job running inline in the serving task, and its scope.
    _inline: Task | None = None
    _inline_scope: Any = None

    @abstractmethod
    def _new_scope(self) -> Any:
        """Return a new, unentered cancel scope."""

    def spawn(self, task: Task) -> None:
        scope = self._scopes[task] = self._new_scope()
        self._group.start_soon(self._run, task, scope)

    def cancel_all(self) -> None:
        self._all_cancelled = True
        if self._group is not None:
            self._group.cancel_scope.cancel()

    async def run_inline(
        self, task: Task, next_task: Callable[[], Task | None], limit: int
    ) -> None:
        # One cancel scope for a run of jobs, not one each: entering and
        # leaving a Trio cancel scope costs more than the rest of a queued
        # job's bookkeeping. Jobs run one at a time, so cancelling the scope
        # cancels exactly the running one; a scope once cancelled is not
        # used for another job.
        while True:
            scope = self._inline_scope = self._new_scope()
            with scope:
                while True:
                    self._inline = task
                    limit -= 1
                    try:
                        await self._step(task, scope)
                    finally:
                        self._inline = None
                    if scope.cancel_called:
                        break  # spent, if only by a cancel after the job's last await
                    following = next_task() if limit else None
                    if following is None:
                        return
                    task = following
            # The job was cancelled (its Cancelled ended the scope) or the
            # scope is spent: the next job gets a fresh one.
            following = next_task() if limit else None
            if following is None:
                return
            task = following

    async def _run(self, task: Task, scope: Any) -> None:
        try:
            with scope:
                await self._step(task, scope)
        finally:
            del self._scopes[task]

    async def _step(self, task: Task, scope: Any) -> None:
        """Run *task*'s job inside *scope* (entered) and record its outcome."""
        host = self._host
        if scope.cancel_called or self._all_cancelled:
            # Cancelled between dispatch and its first step: never start it.
            host._job_cancelled(task)
            return
        try:
            value = await host._job_coroutine(task)
        except Exception as exc:
            host._job_failed(task, exc)
            return
        except BaseException as exc:
            if self._is_cancellation(exc):
                host._job_cancelled(task)
                if not scope.cancel_called and self._stray_cancel():
                    # The job raised the cancellation exception without
                    # being cancelled (e.g. it awaited a future that
                    # something else cancelled): it ends cancelled, and
                    # nothing else does.
                    return
            else:
                failure = self._failure_under_cancel(exc, scope.cancel_called)
                if failure is not None:
                    host._job_failed(task, failure)
                    return
                host._job_failed(task, exc)
            raise
        host._job_finished(task, value)

    def _is_cancellation(self, exc: BaseException) -> bool:
        # A job cancelled inside a nursery of its own ends with a group of
        # the nursery's Cancelled exceptions (Trio): cancelled all the same.
        cancelled = self._cancelled_exc
        if isinstance(exc, BaseExceptionGroup):
            return exc.split(cancelled)[1] is None
        return isinstance(exc, cancelled)

    def _failure_under_cancel(
        self, exc: BaseException, cancelled_alone: bool
    ) -> Exception | None:
        """Return what failed in a job cancelled alone, if that is all it raised.

        A job cancelled inside a nursery of its own whose child then fails
        (in its cleanup, say) ends with a group of its own cancellation and
        that failure. The failure is the job's outcome, reported as any
        other; the cancellation was the job's alone, so it goes no further
        (as on asyncio). ``None`` if *exc* is not that, or if the whole
        group is being cancelled too (then it all propagates).
        """
        if not cancelled_alone or self._all_cancelled:
            return None
        if not isinstance(exc, BaseExceptionGroup):
            return None
        cancels, rest = exc.split(self._cancelled_exc)
        if cancels is None or not isinstance(rest, Exception):
            return None
        return rest

    def cancel_job(self, task: Task) -> None:
        if task is self._inline:
            self._inline_scope.cancel()
        else:
            self._scopes[task].cancel()

    def _stray_cancel(self) -> bool:
        """Return ``True`` if a cancellation exception here is nobody's cancel."""
        return False


class AnyioEngine(ScopedJobs):
    """Runs jobs in an AnyIO task group; see the module docstring."""

    def __init__(
        self,
        host: JobHost,
        timer_slack: float = 0.0,
        stray_cancel: Callable[[], bool] | None = None,
    ) -> None:
        self._host = host
        self._scopes = {}
        if stray_cancel is not None:
            self._stray_cancel = stray_cancel  # type: ignore[method-assign]
        # See AsyncioEngine: asyncio fires timers up to its clock resolution
        # early; sleeping that much longer makes the wake-up never early.
        self._timer_slack = timer_slack
        # Capacity 1: one pending wake-up is as good as many.
        self._wake_send, self._wake_receive = anyio.create_memory_object_stream[None](1)
        self._cancelled_exc = anyio.get_cancelled_exc_class()

    async def __aenter__(self) -> AnyioEngine:
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._group = task_group
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        assert self._group is not None
        try:
            # True when the group's own (cancelled) scope caught the
            # cancellation that closing sent through the serving task.
            return await self._group.__aexit__(exc_type, exc, tb)
        finally:
            self._wake_send.close()
            self._wake_receive.close()

    async def sleep_until(self, deadline: float | None) -> None:
        if deadline is None:
            deadline = math.inf
        with anyio.CancelScope(deadline=deadline + self._timer_slack):
            await self._wake_receive.receive()

    def wake(self) -> None:
        # WouldBlock: a wake-up is already waiting, which is as good.
        with contextlib.suppress(anyio.WouldBlock):
            self._wake_send.send_nowait(None)

    async def checkpoint(self) -> None:
        await anyio.lowlevel.checkpoint()

    def _new_scope(self) -> anyio.CancelScope:
        return anyio.CancelScope()
