"""Trio: the native engine, the loop binding, and the refusal of ``start()``.

The native engine exists for speed, as on asyncio: since AnyIO 4.14 every
``TaskGroup.start_soon`` also makes a task handle with its own cancel scope
and event, which doubles the cost of starting a job on Trio. Here each job
is one ``nursery.start_soon``, and gets a ``trio.CancelScope`` of its own
only if it is cancelled alone, with the same semantics as the portable
engine.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

import trio

from ._anyio import AnyioEngine, ScopedJobs
from ._interface import Engine, JobHost, LoopBinding

if TYPE_CHECKING:
    from aioscheduler._task import Task

__all__ = ["TrioBinding", "TrioEngine", "current_binding"]


_current_task = trio.lowlevel.current_task

try:
    from trio._core._run import CancelStatus
except ImportError:  # a Trio laid out otherwise: the check below fails
    CancelStatus = None  # type: ignore[misc,assignment]

# What a late-scoped job's runner holds before the job has a Trio task.
_NOT_STARTED = object()
_CANCELLED_EARLY = object()


@trio.lowlevel.enable_ki_protection
def _late_scope(runner: Any, around: trio.CancelScope) -> trio.CancelScope:
    """Return a cancel scope that *runner* is inside as if it had entered it first.

    *runner* is the Trio task of a job started in the nursery whose scope is
    *around*. The new scope's cancel status goes between the nursery's and
    the outermost one the job has entered itself (its own scopes and
    nurseries stay inside it, as they would have), or becomes the task's
    own if the job is in none. Trio's ``TaskStatus.started()`` moves cancel
    statuses between nurseries the same way. This reaches into Trio's
    private cancel-status tree: :func:`_late_scopes_work` checks, once per
    process, that it behaves as this expects. Raises ``RuntimeError`` only
    for a job whose own cancel scopes are misnested (Trio's recovery from
    that normally re-links the task first).
    """
    base = around._cancel_status
    scope = trio.CancelScope()
    status = CancelStatus(scope=scope, parent=base)
    scope._cancel_status = status
    scope._has_been_entered = True
    current = runner._cancel_status
    if current is base:
        runner._activate_cancel_status(status)
    else:
        while current.parent is not base:
            current = current.parent
            if current is None:
                status.parent = None
                raise RuntimeError(
                    f"cannot cancel {runner!r} alone: its cancel scopes are "
                    "not nested inside the scheduler's nursery"
                )
        current.parent = status
    return scope


_late_scopes_checked: bool | None = None


def _late_scopes_work() -> bool:
    """Return ``True`` if :func:`_late_scope` behaves as it must on this Trio.

    Checked once per process, in the calling task, without a checkpoint (so
    no cancellation can land): a late scope around the task alone, and one
    slid under a scope the task is already in, must each become the
    task's cancel status or the inner one's parent, cancel what is inside
    it, and leave as ``with`` would have.
    """
    global _late_scopes_checked
    if _late_scopes_checked is None:
        try:
            _late_scopes_checked = _check_late_scopes()
        except Exception:
            _late_scopes_checked = False
        if not _late_scopes_checked:
            logging.getLogger("aioscheduler").info(
                "trio %s: every job gets its cancel scope up front (slower); "
                "the late-scope check failed",
                trio.__version__,
            )
    return _late_scopes_checked


def _check_late_scopes() -> bool:
    task = trio.lowlevel.current_task()
    # Every step runs whatever an earlier one found, so that the scopes
    # are always left in order (and should a step raise halfway, Trio's
    # recovery from misnesting leaves the task as it was). Shielded: the
    # caller may already be cancelled, and the check is about the tree.
    checks = []
    with trio.CancelScope(shield=True) as outer:  # noqa: ASYNC100 (no checkpoint)
        base = task._cancel_status
        alone = _late_scope(task, outer)
        checks.append(task._cancel_status is alone._cancel_status)
        alone.cancel()
        checks.append(task._cancel_status.effectively_cancelled)
        alone.__exit__(None, None, None)
        checks.append(task._cancel_status is base)
        with trio.CancelScope():  # noqa: ASYNC100
            inner_status = task._cancel_status
            under = _late_scope(task, outer)
            checks.append(inner_status.parent is under._cancel_status)
            under.cancel()
            checks.append(inner_status.effectively_cancelled)
        checks.append(task._cancel_status is under._cancel_status)
        under.__exit__(None, None, None)
        checks.append(task._cancel_status is base)
        checks.append(not base.effectively_cancelled)
    return all(checks) and not outer.cancel_called


class TrioEngine(ScopedJobs):
    """Runs jobs in a Trio nursery; each gets a cancel scope when cancelled.

    Entering and leaving a ``trio.CancelScope`` costs more than everything
    else a started job costs Trio, and almost no job is ever cancelled alone.
    So a spawned job runs straight in the nursery, and only
    :meth:`cancel_job` gives it a scope of its own (see :func:`_late_scope`),
    which the job's runner then leaves as ``with`` would have. Where this
    Trio's internals do not behave as :func:`_late_scopes_work` expects,
    every job gets its scope up front, as on the portable engine.
    """

    _cancelled_exc = trio.Cancelled

    def __init__(self, host: JobHost) -> None:
        self._host = host
        self._scopes = {}
        self._nursery_manager = trio.open_nursery()
        self._wakeup: trio.Event | None = None
        # With late scopes: each spawned job's Trio task while it runs (or
        # _NOT_STARTED / _CANCELLED_EARLY before it does) ...
        self._runners: dict[Task, Any] = {}
        # ... and the scope cancel_job gave it, if any.
        self._late_scopes: dict[Task, trio.CancelScope] = {}
        self._late = _late_scopes_work()

    async def __aenter__(self) -> TrioEngine:
        self._group = await self._nursery_manager.__aenter__()
        # Bound once, not at each of millions of spawns.
        self._start_soon = self._group.start_soon
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        # True when the nursery's own (cancelled) scope caught the
        # Cancelled that closing sent through the serving task.
        return bool(await self._nursery_manager.__aexit__(exc_type, exc, tb))

    def spawn(self, task: Task) -> None:
        if self._late:
            self._runners[task] = _NOT_STARTED
            self._start_soon(self._run_unscoped, task)
        else:
            super().spawn(task)

    async def _run_unscoped(self, task: Task) -> None:
        # ScopedJobs._step, inlined: one coroutine less per job.
        host = self._host
        runners = self._runners
        if runners[task] is _CANCELLED_EARLY or self._all_cancelled:
            del runners[task]
            host._job_cancelled(task)
            return
        runners[task] = _current_task()
        # Keep in step with ScopedJobs._step (less its stray-cancel case,
        # which cannot happen on Trio: a Cancelled always has a scope).
        try:
            value = await host._job_coroutine(task)
        except Exception as exc:
            host._job_failed(task, exc)
        except BaseException as exc:
            late_scopes = self._late_scopes
            failure = None
            if self._is_cancellation(exc):
                host._job_cancelled(task)
            else:
                failure = self._failure_under_cancel(exc, task in late_scopes)
                host._job_failed(task, exc if failure is None else failure)
            if failure is None:
                del runners[task]
                scope = late_scopes.pop(task, None)
                # As leaving ``with scope:`` would: swallow its own Cancelled.
                if scope is None or not scope.__exit__(
                    type(exc), exc, exc.__traceback__
                ):
                    raise
                return
        else:
            host._job_finished(task, value)
        del runners[task]
        if self._late_scopes:
            scope = self._late_scopes.pop(task, None)
            if scope is not None:
                scope.__exit__(None, None, None)

    @trio.lowlevel.enable_ki_protection
    def cancel_job(self, task: Task) -> None:
        runner = self._runners.get(task) if self._late else None
        if runner is None or task is self._inline:
            super().cancel_job(task)
        elif runner is _NOT_STARTED or runner is _CANCELLED_EARLY:
            self._runners[task] = _CANCELLED_EARLY
        else:
            scope = self._late_scopes.get(task)
            if scope is None:
                nursery = cast("trio.Nursery", self._group)
                scope = self._late_scopes[task] = _late_scope(
                    runner, nursery.cancel_scope
                )
            scope.cancel()

    async def sleep_until(self, deadline: float | None) -> None:
        wakeup = self._wakeup = trio.Event()
        try:
            with trio.move_on_at(math.inf if deadline is None else deadline):
                await wakeup.wait()
        finally:
            self._wakeup = None

    def wake(self) -> None:
        # Only ever called while sleep_until sleeps (see AsyncioEngine.wake).
        wakeup = self._wakeup
        if wakeup is not None:
            wakeup.set()

    async def checkpoint(self) -> None:
        await trio.lowlevel.checkpoint()

    def _new_scope(self) -> trio.CancelScope:
        return trio.CancelScope()


class TrioBinding(LoopBinding):
    """One running Trio run."""

    name = "trio"

    def __init__(self, token: trio.lowlevel.TrioToken) -> None:
        self._token = self.loop = token
        self.clock = trio.current_time
        # Trio's default clock is perf_counter() plus an offset, which is the
        # monotonic clock on Linux and macOS; a MockClock is not.
        clock = trio.lowlevel.current_clock()
        self.monotonic_clock = (
            type(clock).__name__ == "SystemClock"
            and type(clock).__module__.startswith("trio.")
            and sys.platform != "win32"
        )
        self.current_loop = _current_token

    def in_loop(self) -> bool:
        try:
            return trio.lowlevel.current_trio_token() is self._token
        except RuntimeError:
            return False

    def open_engine(self, host: JobHost) -> Engine:
        from . import portable_forced

        if portable_forced():
            return AnyioEngine(host)
        return TrioEngine(host)

    def start_facade(self, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        raise RuntimeError(
            "start() is the 1.x asyncio facade and cannot run under Trio: use "
            "'async with scheduler:' or 'await nursery.start(scheduler.run)'"
        )


def _current_token() -> trio.lowlevel.TrioToken | None:
    try:
        return trio.lowlevel.current_trio_token()
    except RuntimeError:
        return None


def current_binding() -> TrioBinding | None:
    """Return the binding of the Trio run in this thread, if any."""
    token = _current_token()
    return None if token is None else TrioBinding(token)
