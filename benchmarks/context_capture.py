"""What capturing the caller's context per pending job would cost.

Trio's ``start_soon`` and asyncio's ``call_later`` run their callable in a
copy of the caller's :mod:`contextvars` context; aioscheduler runs jobs in
its serving task's context instead. This measures, in one run, what the
copy would add per pending job: the time of ``contextvars.copy_context()``
beside a ``start_after`` call, and the memory a kept context costs (its
object plus the reference a task would hold), by tracemalloc and RSS.

    python -m benchmarks.context_capture [N]
"""

from __future__ import annotations

import contextvars
import gc
import statistics
import sys
import time
import tracemalloc
from typing import Any

import anyio

from aioscheduler import TimedScheduler

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")


async def job() -> None:
    pass


def _schedule(n: int, capture: bool) -> tuple[float, list[Any]]:
    """Schedule *n* far jobs; return seconds per call and what was kept."""
    # A kept context costs its object and one reference (a list slot here,
    # a task slot in the library): 8 bytes either way.
    kept: list[Any] = []
    contexts: list[Any] = []
    scheduler = TimedScheduler()
    start_after = scheduler.start_after
    copy = contextvars.copy_context
    append, keep_context = kept.append, contexts.append
    begin = time.perf_counter()
    if capture:
        for _ in range(n):
            append(start_after(3600, job))
            keep_context(copy())
    else:
        for _ in range(n):
            append(start_after(3600, job))
    elapsed = time.perf_counter() - begin
    for task in kept:
        task.cancel()
    return elapsed / n, [kept, contexts]


async def _measure(n: int) -> dict[str, float]:
    request_id.set("req-1234")  # a context with something in it, as in a server
    out: dict[str, float] = {}
    gc.disable()
    try:
        for capture in (False, True):
            times = [_schedule(n, capture)[0] for _ in range(5)]
            out[f"ns_per_call_{'capture' if capture else 'plain'}"] = (
                statistics.median(times) * 1e9
            )
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            _, kept = _schedule(n, capture)
            after = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            out[f"bytes_per_job_{'capture' if capture else 'plain'}"] = (
                after - before
            ) / n
            del kept
    finally:
        gc.enable()
    return out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    result = anyio.run(_measure, n)
    plain_ns, capture_ns = result["ns_per_call_plain"], result["ns_per_call_capture"]
    plain_b, capture_b = result["bytes_per_job_plain"], result["bytes_per_job_capture"]
    print(f"N={n}, Python {sys.version.split()[0]}, medians of 5 (time), tracemalloc")
    print(f"start_after, no capture:   {plain_ns:7.0f} ns/call {plain_b:6.0f} B/job")
    print(
        f"start_after + copy ctx:    {capture_ns:7.0f} ns/call {capture_b:6.0f} B/job"
    )
    print(
        f"capture adds {capture_ns - plain_ns:+.0f} ns "
        f"({(capture_ns / plain_ns - 1) * 100:+.0f}%) and "
        f"{capture_b - plain_b:+.0f} B per pending job"
    )


if __name__ == "__main__":
    main()
