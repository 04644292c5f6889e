"""The baselines a user would otherwise write: the loops' own floors, aiojobs.

Each ``run_*`` function runs one workload once and returns its figures in
the same keys as :func:`benchmarks._aioscheduler.run`; the jobs are the same
:class:`~benchmarks._tally.Tally` jobs.

- ``asyncio-floor``: ``loop.call_at(deadline, spawn, i)`` per job, where
  ``spawn`` is ``loop.create_task(job(i))`` (W1-W4); an ``asyncio.Queue``
  drained by one task awaiting each job (W5); one task per job (W7).
- ``trio-floor``: one ``nursery.start_soon`` per job sleeping until its
  deadline (W1-W4); a memory channel drained by one task (W5); one task per
  job (W7).
- ``trio-heap``: a minimal one-task heap that ``start_soon``s due jobs
  (W1-W4; W1 measures only the push, which is all it does per job).
- ``aiojobs``: W2 (a task sleeps until the due instant, then spawns every
  job) and W5 (``limit=1`` for the serial queue, ``limit=8`` for the
  Manager of 8).
"""

from __future__ import annotations

import asyncio
import gc
import heapq
import math
import random
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

from ._common import (
    MASK,
    SPREAD_S,
    W4_RUN_LIMIT,
    Result,
    burst_lead,
    cancel_victims,
    drift_stats,
    far_offsets,
    lateness_stats,
    order_kept,
    peak_rss_bytes,
    rss_bytes,
    steady_lead,
    verify_runs,
    w1_low_seconds,
    w3_offsets,
)
from ._tally import Tally

Measured = Callable[[Result], None]
#: seconds of set-up per job of the trio floor (start_soon, then the first
#: step into sleep_until), so that its jobs are all asleep before they are due
TRIO_SETUP = 40e-6


class _Memory:
    """W1's memory figures: RSS delta (time pass) or tracemalloc delta."""

    def __init__(self, tracing: bool) -> None:
        self.tracing = tracing
        gc.collect()
        if tracing:
            tracemalloc.start()
            self.before = tracemalloc.get_traced_memory()[0]
        else:
            self.before = rss_bytes()

    def per_job(self, n: int) -> Result:
        if self.tracing:
            after = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            return {"tm_per_job": (after - self.before) / n, "tm_size": n}
        return {
            "rss_per_job": (rss_bytes() - self.before) / n,
            "peak_rss_mb": peak_rss_bytes() / 1e6,
        }


# -- asyncio -------------------------------------------------------------------


def _asyncio_run(backend: str, main: Callable[[], Awaitable[Result]]) -> Result:
    factory = None
    if backend == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main())


async def _asyncio_floor(
    workload: str, n: int, variant: str, tracing: bool, seed: int, measured: Measured
) -> Result:
    loop = asyncio.get_running_loop()
    clock = loop.time  # deadlines are in the loop's time
    mono = time.monotonic  # jobs read this: see benchmarks._loops.job_clock
    done = asyncio.Event()
    call_at = loop.call_at
    create_task = loop.create_task

    if workload == "W1":

        async def never(i: int) -> None:
            pass

        def spawn_never(i: int) -> None:
            create_task(never(i))

        offsets = far_offsets(random.Random(seed), w1_low_seconds(n))
        now = clock()
        deadlines = [now + s for s in offsets]
        memory = _Memory(tracing)
        begin = time.perf_counter()
        for i in range(n):
            call_at(deadlines[i & MASK], spawn_never, i)
        result: Result = {"us_per_call": (time.perf_counter() - begin) / n * 1e6}
        if tracing:
            result = {}
        result.update(memory.per_job(n))
        return result

    if workload == "W2":
        tally = Tally(n, mono, done.set)
        job = tally.burst_job()

        def spawn(i: int) -> None:
            create_task(job(i))

        due = clock() + burst_lead(n)
        for i in range(n):
            call_at(due, spawn, i)
        overran = clock() >= due
        finished = await _wait(done.wait(), burst_lead(n) + 60)
        all_s = tally.last - due
        return {
            "first_ms": (tally.first - due) * 1e3,
            "all_ms": all_s * 1e3,
            "jobs_per_s": n / all_s if finished else 0.0,
            "never_run": n - tally.count,
            "setup_overran": overran,
        }

    if workload == "W3":
        late = [math.nan] * n
        tally = Tally(n, mono, done.set)
        base = clock() + steady_lead(n)
        due = [base + s for s in w3_offsets(variant, n, seed)]
        job = tally.steady_job(late, due)

        def spawn(i: int) -> None:
            create_task(job(i))

        for i in range(n):
            call_at(due[i], spawn, i)
        overran = clock() >= min(due)
        await _wait(done.wait(), steady_lead(n) + SPREAD_S + 60)
        result = lateness_stats(late)
        result.update(drift_stats(late, due))
        result["setup_overran"] = overran
        return result

    if workload == "W4":
        victims = cancel_victims(n, seed)
        runs = bytearray(n)
        tally = Tally(n - len(victims), mono, done.set)
        job = tally.marking_job(runs)

        def spawn(i: int) -> None:
            create_task(job(i))

        by_running = n <= W4_RUN_LIMIT
        now = clock()
        if by_running:
            lead = steady_lead(n)
            handles = [call_at(now + lead + i / n, spawn, i) for i in range(n)]
        else:
            offsets = far_offsets(random.Random(seed), w1_low_seconds(n))
            handles = [call_at(now + offsets[i & MASK], spawn, i) for i in range(n)]
        chosen = [handles[i] for i in victims]
        gc.collect()
        begin = time.perf_counter()
        for handle in chosen:
            handle.cancel()
        result = {"us_per_cancel": (time.perf_counter() - begin) / len(chosen) * 1e6}
        if by_running:
            result["setup_overran"] = clock() >= now + lead
        if by_running:
            await _wait(done.wait(), steady_lead(n) + 60)
            await asyncio.sleep(0.05)
            result.update(wrong_runs=verify_runs(runs, victims), checked="run")
        else:
            wrong = sum(1 for handle in chosen if not handle.cancelled())
            result.update(wrong_runs=wrong, checked="state")
        return result

    if workload == "W5":
        order: list[int] = []
        tally = Tally(n, mono, done.set)
        job = tally.ordered_job(order)
        queue: asyncio.Queue[int] = asyncio.Queue()

        async def drain() -> None:
            get = queue.get
            for _ in range(n):
                await job(await get())

        begin = mono()
        drainer = create_task(drain())
        put = queue.put_nowait
        for i in range(n):
            put(i)
        finished = await _wait(done.wait(), 120)
        await drainer
        return {
            "jobs_per_s": n / (tally.last - begin) if finished else 0.0,
            "order_ok": order_kept(order),
            "never_run": n - tally.count,
        }

    if workload == "W7":
        all_started = asyncio.Event()
        gate = asyncio.Event()
        tally = Tally(n, mono, done.set)
        job = tally.gated_job(gate.wait, all_started.set)
        tasks = [create_task(job(i)) for i in range(n)]
        await _wait(all_started.wait(), 60)
        begin = mono()
        gate.set()
        await _wait(done.wait(), 60)
        # Releasing the ended tasks is part of completing them: every
        # scheduler drops its reference to a job's task when the job ends
        # (asyncio then frees it, and takes it out of its WeakSet of all
        # tasks), so the floor's clock runs until it has done so too.
        del tasks
        elapsed = mono() - begin
        return {"us_per_completion": elapsed / n * 1e6, "never_run": n - tally.count}

    raise ValueError(f"asyncio-floor has no {workload}")


async def _wait(awaitable: Awaitable[Any], limit: float) -> bool:
    try:
        await asyncio.wait_for(awaitable, limit)
    except TimeoutError:
        return False
    return True


async def _aiojobs(
    workload: str, n: int, variant: str, tracing: bool, seed: int, measured: Measured
) -> Result:
    import aiojobs

    loop = asyncio.get_running_loop()
    clock = loop.time
    mono = time.monotonic
    done = asyncio.Event()
    if workload == "W2":
        tally = Tally(n, mono, done.set)
        job = tally.burst_job()
        scheduler = aiojobs.Scheduler(limit=None)
        due = clock() + burst_lead(n)
        await asyncio.sleep(due - clock())
        spawn = scheduler.spawn
        for i in range(n):
            await spawn(job(i))
        finished = await _wait(done.wait(), 60)
        all_s = tally.last - due
        await scheduler.close()
        return {
            "first_ms": (tally.first - due) * 1e3,
            "all_ms": all_s * 1e3,
            "jobs_per_s": n / all_s if finished else 0.0,
            "never_run": n - tally.count,
        }
    if workload == "W5":
        order: list[int] = []
        tally = Tally(n, mono, done.set)
        job = tally.ordered_job(order)
        limit = {"serial": 1, "manager8": 8}[variant]
        scheduler = aiojobs.Scheduler(limit=limit, pending_limit=n)
        begin = mono()
        spawn = scheduler.spawn
        for i in range(n):
            await spawn(job(i))
        finished = await _wait(done.wait(), 120)
        await scheduler.close()
        return {
            "jobs_per_s": n / (tally.last - begin) if finished else 0.0,
            "order_ok": order_kept(order),
            "never_run": n - tally.count,
        }
    raise ValueError(f"aiojobs has no {workload}")


# -- trio ------------------------------------------------------------------------


async def _trio_floor(
    workload: str, n: int, variant: str, tracing: bool, seed: int, measured: Measured
) -> Result:
    import trio
    import trio.testing

    clock = trio.current_time
    done = trio.Event()
    result: Result
    async with trio.open_nursery() as nursery:
        start_soon = nursery.start_soon
        if workload == "W1":

            async def sleeper(deadline: float, i: int) -> None:
                await trio.sleep_until(deadline)

            offsets = far_offsets(random.Random(seed), w1_low_seconds(n))
            now = clock()
            deadlines = [now + s for s in offsets]
            memory = _Memory(tracing)
            begin = time.perf_counter()
            for i in range(n):
                start_soon(sleeper, deadlines[i & MASK], i)
            elapsed = time.perf_counter() - begin
            await trio.testing.wait_all_tasks_blocked()  # every job now sleeps
            result = {"us_per_call": elapsed / n * 1e6}
            result["settle_us"] = (time.perf_counter() - begin) / n * 1e6
            if tracing:
                result = {}
            result.update(memory.per_job(n))
            measured(result)

        elif workload in ("W2", "W3"):
            tally = Tally(n, clock, done.set)
            if workload == "W2":
                job = tally.burst_job()
                lead = burst_lead(n, TRIO_SETUP)
                due = [clock() + lead] * n
            else:
                late = [math.nan] * n
                lead = steady_lead(n, TRIO_SETUP)
                base = clock() + lead
                due = [base + s for s in w3_offsets(variant, n, seed)]
                job = tally.steady_job(late, due)

            async def sleeper(deadline: float, i: int) -> None:
                await trio.sleep_until(deadline)
                await job(i)

            for i in range(n):
                start_soon(sleeper, due[i], i)
            # Its set-up ends when every job sleeps (their first steps).
            await trio.testing.wait_all_tasks_blocked()
            overran = clock() >= min(due)
            with trio.move_on_after(lead + SPREAD_S + 60):
                await done.wait()
            if workload == "W2":
                all_s = tally.last - due[0]
                result = {
                    "first_ms": (tally.first - due[0]) * 1e3,
                    "all_ms": all_s * 1e3,
                    "jobs_per_s": n / all_s if done.is_set() else 0.0,
                    "never_run": n - tally.count,
                }
            else:
                result = lateness_stats(late)
                result.update(drift_stats(late, due))
            result["setup_overran"] = overran

        elif workload == "W4":
            victims = cancel_victims(n, seed)
            runs = bytearray(n)
            tally = Tally(n - len(victims), clock, done.set)
            job = tally.marking_job(runs)

            async def cancellable(deadline: float, i: int, scope: Any) -> None:
                with scope:
                    await trio.sleep_until(deadline)
                    await job(i)

            # Its set-up (a task and a first step per job) is too slow to
            # finish before jobs due soon: the check is on state only.
            by_running = False
            now = clock()
            if by_running:
                due = [now + steady_lead(n, TRIO_SETUP) + i / n for i in range(n)]
            else:
                offsets = far_offsets(random.Random(seed), w1_low_seconds(n))
                due = [now + offsets[i & MASK] for i in range(n)]
            scopes = []
            for i in range(n):
                scope = trio.CancelScope()
                scopes.append(scope)
                start_soon(cancellable, due[i], i, scope)
            await trio.testing.wait_all_tasks_blocked()  # every job now sleeps
            chosen = [scopes[i] for i in victims]
            gc.collect()
            begin = time.perf_counter()
            for scope in chosen:
                scope.cancel()
            elapsed = time.perf_counter() - begin
            result = {"us_per_cancel": elapsed / len(chosen) * 1e6}
            if by_running:
                result["setup_overran"] = clock() >= due[0]
            if by_running:
                with trio.move_on_after(steady_lead(n) + 60):
                    await done.wait()
                await trio.sleep(0.05)
                result.update(wrong_runs=verify_runs(runs, victims), checked="run")
            else:
                wrong = sum(1 for scope in chosen if not scope.cancel_called)
                result.update(wrong_runs=wrong, checked="state")
                measured(result)

        elif workload == "W5":
            order: list[int] = []
            tally = Tally(n, clock, done.set)
            job = tally.ordered_job(order)
            send, receive = trio.open_memory_channel[int](math.inf)

            async def drain() -> None:
                for _ in range(n):
                    await job(await receive.receive())

            begin = clock()
            start_soon(drain)
            for i in range(n):
                send.send_nowait(i)
            with trio.move_on_after(120):
                await done.wait()
            result = {
                "jobs_per_s": n / (tally.last - begin) if done.is_set() else 0.0,
                "order_ok": order_kept(order),
                "never_run": n - tally.count,
            }

        elif workload == "W7":
            all_started = trio.Event()
            gate = trio.Event()
            tally = Tally(n, clock, done.set)
            job = tally.gated_job(gate.wait, all_started.set)
            for i in range(n):
                start_soon(job, i)
            await all_started.wait()
            begin = clock()
            gate.set()
            with trio.move_on_after(60):
                await done.wait()
            elapsed = clock() - begin
            result = {
                "us_per_completion": elapsed / n * 1e6,
                "never_run": n - tally.count,
            }
        else:
            raise ValueError(f"trio-floor has no {workload}")
        nursery.cancel_scope.cancel()
    return result


async def _trio_heap(
    workload: str, n: int, variant: str, tracing: bool, seed: int, measured: Measured
) -> Result:
    import trio

    clock = trio.current_time
    done = trio.Event()
    heap: list[tuple[float, int]] = []
    push = heapq.heappush
    cancelled = bytearray(n)

    async def serve(nursery: trio.Nursery, job: Callable[[int], Any]) -> None:
        """The minimal one-task heap: sleep until the earliest, start the due."""
        pop = heapq.heappop
        start_soon = nursery.start_soon
        while heap:
            now = clock()
            if heap[0][0] > now:
                await trio.sleep_until(heap[0][0])
                continue
            while heap and heap[0][0] <= now:
                i = pop(heap)[1]
                if not cancelled[i]:
                    start_soon(job, i)
            await trio.lowlevel.checkpoint()

    if workload == "W1":
        offsets = far_offsets(random.Random(seed), w1_low_seconds(n))
        now = clock()
        deadlines = [now + s for s in offsets]
        memory = _Memory(tracing)
        begin = time.perf_counter()
        for i in range(n):
            push(heap, (deadlines[i & MASK], i))
        result: Result = {"us_per_call": (time.perf_counter() - begin) / n * 1e6}
        if tracing:
            result = {}
        result.update(memory.per_job(n))
        return result

    async with trio.open_nursery() as nursery:
        if workload in ("W2", "W3"):
            tally = Tally(n, clock, done.set)
            if workload == "W2":
                job = tally.burst_job()
                lead = burst_lead(n)
                due = [clock() + lead] * n
            else:
                late = [math.nan] * n
                lead = steady_lead(n)
                base = clock() + lead
                due = [base + s for s in w3_offsets(variant, n, seed)]
                job = tally.steady_job(late, due)
            for i in range(n):
                push(heap, (due[i], i))
            overran = clock() >= min(due)
            nursery.start_soon(serve, nursery, job)
            with trio.move_on_after(lead + SPREAD_S + 60):
                await done.wait()
            if workload == "W2":
                all_s = tally.last - due[0]
                result = {
                    "first_ms": (tally.first - due[0]) * 1e3,
                    "all_ms": all_s * 1e3,
                    "jobs_per_s": n / all_s if done.is_set() else 0.0,
                    "never_run": n - tally.count,
                }
            else:
                result = lateness_stats(late)
                result.update(drift_stats(late, due))
            result["setup_overran"] = overran
        elif workload == "W4":
            victims = cancel_victims(n, seed)
            runs = bytearray(n)
            tally = Tally(n - len(victims), clock, done.set)
            job = tally.marking_job(runs)
            by_running = n <= W4_RUN_LIMIT
            now = clock()
            if by_running:
                lead = steady_lead(n)
                for i in range(n):
                    push(heap, (now + lead + i / n, i))
            else:
                offsets = far_offsets(random.Random(seed), w1_low_seconds(n))
                for i in range(n):
                    push(heap, (now + offsets[i & MASK], i))
            gc.collect()
            begin = time.perf_counter()
            for i in victims:
                cancelled[i] = 1
            elapsed = time.perf_counter() - begin
            result = {"us_per_cancel": elapsed / len(victims) * 1e6}
            if by_running:
                result["setup_overran"] = clock() >= now + lead
            if by_running:
                nursery.start_soon(serve, nursery, job)
                with trio.move_on_after(steady_lead(n) + 60):
                    await done.wait()
                await trio.sleep(0.05)
                result.update(wrong_runs=verify_runs(runs, victims), checked="run")
            else:
                result.update(wrong_runs=0, checked="state")
                measured(result)
        else:
            raise ValueError(f"trio-heap has no {workload}")
        nursery.cancel_scope.cancel()
    return result


def _trio_run(main: Callable[[], Awaitable[Result]]) -> Result:
    import trio

    return trio.run(main)


#: impl -> the backends it runs on
BACKENDS = {
    "asyncio-floor": ("asyncio", "uvloop"),
    "aiojobs": ("asyncio", "uvloop"),
    "trio-floor": ("trio",),
    "trio-heap": ("trio",),
}

_IMPLS = {
    "asyncio-floor": _asyncio_floor,
    "aiojobs": _aiojobs,
    "trio-floor": _trio_floor,
    "trio-heap": _trio_heap,
}


def run(
    impl: str,
    workload: str,
    size: int,
    backend: str,
    *,
    variant: str = "",
    tracing: bool = False,
    seed: int = 0,
    on_measured: Measured | None = None,
) -> Result:
    """Run one baseline once; *on_measured* may get the figures before tear-down."""
    if backend not in BACKENDS[impl]:
        raise ValueError(f"{impl} runs on {BACKENDS[impl]}, not {backend}")
    fn = _IMPLS[impl]
    measured = on_measured or (lambda result: None)

    async def main() -> Result:
        return await fn(workload, size, variant, tracing, seed, measured)

    if backend == "trio":
        return _trio_run(main)
    return _asyncio_run(backend, main)
