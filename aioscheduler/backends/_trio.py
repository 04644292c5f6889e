"""Trio: the native engine, the loop binding, and the refusal of ``start()``.

The native engine exists for speed, as on asyncio: since AnyIO 4.14 every
``TaskGroup.start_soon`` also makes a task handle with its own cancel scope
and event, which doubles the cost of starting a job on Trio. Here each job
is one ``nursery.start_soon`` and one ``trio.CancelScope``, with the same
semantics as the portable engine.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any

import trio

from ._anyio import AnyioEngine, ScopedJobs
from ._interface import Engine, JobHost, LoopBinding

__all__ = ["TrioBinding", "TrioEngine", "current_binding"]


class TrioEngine(ScopedJobs):
    """Runs jobs in a Trio nursery, each in its own cancel scope."""

    _cancelled_exc = trio.Cancelled

    def __init__(self, host: JobHost) -> None:
        self._host = host
        self._scopes = {}
        self._nursery_manager = trio.open_nursery()
        self._wakeup: trio.Event | None = None

    async def __aenter__(self) -> TrioEngine:
        self._group = await self._nursery_manager.__aenter__()
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
