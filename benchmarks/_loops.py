"""Running on a backend: asyncio, asyncio on uvloop, or Trio, through AnyIO."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import anyio

from ._workloads import BACKENDS

T = TypeVar("T")


def run_on(backend: str, fn: Callable[[], Awaitable[T]]) -> T:
    """Run ``fn()`` under AnyIO on *backend* (``asyncio``, ``uvloop``, ``trio``)."""
    if backend == "trio":
        return anyio.run(fn, backend="trio")
    if backend not in ("asyncio", "uvloop"):
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    options = {"use_uvloop": backend == "uvloop"}
    return anyio.run(fn, backend="asyncio", backend_options=options)


def job_clock(backend: str) -> Callable[[], float]:
    """Return the clock jobs read their start time from, in the loop's time base.

    asyncio's loop clock is :func:`time.monotonic`; uvloop's is the same clock
    truncated to milliseconds and read once per loop iteration, too coarse
    for lateness, so jobs read :func:`time.monotonic` there too. Trio's
    :func:`trio.current_time` is exact.
    """
    if backend == "trio":
        import trio

        return trio.current_time
    return time.monotonic


class _Gate(Protocol):
    def set(self) -> None: ...

    async def wait(self) -> Any: ...


def native_event(backend: str) -> _Gate:
    """The loop's own event, as a floor job would wait on."""
    if backend == "trio":
        import trio

        return trio.Event()
    return asyncio.Event()
