"""Trio: the loop binding, and the refusal of the 1.x ``start()`` facade.

Trio's nurseries make AnyIO's task groups nearly free, so Trio runs the
portable engine; there is no native one to keep in step.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import trio

from ._anyio import AnyioEngine
from ._interface import Engine, JobHost, LoopBinding

__all__ = ["TrioBinding", "current_binding"]


class TrioBinding(LoopBinding):
    """One running Trio run."""

    name = "trio"

    def __init__(self, token: trio.lowlevel.TrioToken) -> None:
        self._token = self.loop = token
        self.clock = trio.current_time
        self.current_loop = _current_token

    def in_loop(self) -> bool:
        try:
            return trio.lowlevel.current_trio_token() is self._token
        except RuntimeError:
            return False

    def open_engine(self, host: JobHost) -> Engine:
        return AnyioEngine(host)

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
    try:
        token = trio.lowlevel.current_trio_token()
    except RuntimeError:
        return None
    return TrioBinding(token)
