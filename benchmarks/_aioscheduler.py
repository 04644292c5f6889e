"""The workloads W1-W7 on aioscheduler 2 itself: :func:`run` runs one once.

Both ``python -m benchmarks`` (in a fresh worker process per run) and
``python -m benchmarks.live`` (in this process, with a live progress line)
measure aioscheduler through here. The jobs are :class:`~benchmarks._tally.Tally`
jobs, the same the baselines run.
"""

from __future__ import annotations

import gc
import math
import random
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio

from aioscheduler import Manager, QueuedScheduler, Task, TimedScheduler

from ._common import (
    MASK,
    SPREAD_S,
    TRACEMALLOC_CAP,
    W4_RUN_LIMIT,
    WINDOW_LEAD_S,
    WINDOW_S,
    Result,
    burst_lead,
    cancel_victims,
    drift_stats,
    far_offsets,
    lateness_stats,
    order_kept,
    peak_rss_bytes,
    random_offsets,
    rss_bytes,
    steady_lead,
    verify_runs,
    w1_low_seconds,
    window_size,
)
from ._loops import job_clock, native_event, run_on
from ._progress import Progress
from ._tally import Tally
from ._workloads import WORKLOADS


async def _never(i: int) -> None:
    """The job of W1: it is never due within the run."""


@dataclass
class _Run:
    """What one workload run knows: its parameters and where results go."""

    size: int
    backend: str
    variant: str
    passes: tuple[str, ...]
    progress: Progress
    seed: int
    on_measured: Callable[[Result], None] | None

    def measured(self, result: Result) -> None:
        """Hand over the figures before tearing down (a worker may exit here)."""
        if self.on_measured is not None:
            self.on_measured(result)


async def _wait_done(done: anyio.Event, limit: float) -> bool:
    """Wait for *done*, at most *limit* seconds; ``True`` if it came."""
    with anyio.move_on_after(limit):
        await done.wait()
        return True
    return False


async def _watch(
    progress: Progress, tally: Tally, done: anyio.Event, what: str = "run"
) -> None:
    """Show ``count/target jobs run`` until *done*."""
    if not progress.live:
        return
    while not done.is_set():
        progress.update(f"{tally.count:,}/{tally.target:,} jobs {what}")
        await anyio.sleep(0.2)


def _deadline(task: Task) -> float:
    """The loop-clock deadline the scheduler gave a timed *task*."""
    deadline = task._deadline
    assert deadline is not None
    return deadline


# -- W1: schedule N timed jobs --------------------------------------------------


@dataclass(frozen=True)
class _FarPool:
    """W1's deadlines in each form's terms: seconds ahead, aware and naive UTC."""

    offsets: list[float]
    aware: list[datetime]
    naive: list[datetime]

    @classmethod
    def make(cls, n: int, seed: int) -> _FarPool:
        offsets = far_offsets(random.Random(seed), w1_low_seconds(n))
        now = datetime.now(UTC)
        aware = [now + timedelta(seconds=s) for s in offsets]
        naive = [when.replace(tzinfo=None) for when in aware]  # 1.x: utcnow() + ...
        return cls(offsets, aware, naive)


def _schedule_far(
    scheduler: TimedScheduler | Manager[TimedScheduler],
    form: str,
    n: int,
    pool: _FarPool,
    progress: Progress,
) -> float:
    """Schedule *n* never-due jobs the *form* way; return the seconds it took."""
    offsets, aware, naive = pool.offsets, pool.aware, pool.naive
    mask = MASK
    chunk = max(1, n // 50) if progress.live else n
    start_at = scheduler.start_at
    start_after = scheduler.start_after
    schedule = scheduler.schedule
    progress.update(f"scheduling {n:,} jobs ({form})")
    begin = time.perf_counter()
    for low in range(0, n, chunk):
        high = min(n, low + chunk)
        if form == "start_at":
            for i in range(low, high):
                start_at(aware[i & mask], _never, i)
        elif form == "schedule":
            for i in range(low, high):
                schedule(_never(i), naive[i & mask])
        elif form == "start_after":
            for i in range(low, high):
                start_after(offsets[i & mask], _never, i)
        else:
            raise ValueError(f"unknown W1 form {form!r}")
        if chunk < n:
            progress.update(f"scheduling {form}: {high:,}/{n:,}")
    return time.perf_counter() - begin


async def _w1(run: _Run) -> Result:
    n = run.size
    result: Result = {}
    if "time" in run.passes:
        async with TimedScheduler() as scheduler:
            pool = _FarPool.make(n, run.seed)
            gc.collect()
            rss_before = rss_bytes()
            elapsed = _schedule_far(scheduler, run.variant, n, pool, run.progress)
            rss_after = rss_bytes()
            result["us_per_call"] = elapsed / n * 1e6
            result["rss_per_job"] = (rss_after - rss_before) / n
            result["pending"] = len(scheduler._pending)
            result["peak_rss_mb"] = peak_rss_bytes() / 1e6
            run.measured(result)
            run.progress.update(f"cancelling {n:,} pending jobs")
            await scheduler.aclose()
    if "tracemalloc" in run.passes:
        size = min(n, TRACEMALLOC_CAP)
        async with TimedScheduler() as scheduler:
            scheduler.start_after(3600, _never, -1)  # bind to the loop first
            pool = _FarPool.make(size, run.seed)
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            _schedule_far(scheduler, run.variant, size, pool, run.progress)
            after = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            result["tm_per_job"] = (after - before) / size
            result["tm_size"] = size
            run.measured(result)
            await scheduler.aclose()
    return result


# -- W2: burst --------------------------------------------------------------------


async def _w2(run: _Run) -> Result:
    n = run.size
    done = anyio.Event()
    tally = Tally(n, job_clock(run.backend), done.set)
    job = tally.burst_job()
    lead = burst_lead(n)
    async with TimedScheduler() as scheduler, anyio.create_task_group() as watch:
        run.progress.update(f"scheduling {n:,} jobs due in {lead:.2f} s")
        when = datetime.now(UTC) + timedelta(seconds=lead)
        start_at = scheduler.start_at
        first = start_at(when, job, 0)
        for i in range(1, n):
            start_at(when, job, i)
        due = _deadline(first)
        overran = tally.clock() >= due
        watch.start_soon(_watch, run.progress, tally, done)
        finished = await _wait_done(done, lead + 60 + n * 1e-4)
    all_s = tally.last - due
    result: Result = {
        "first_ms": (tally.first - due) * 1e3,
        "all_ms": all_s * 1e3,
        "jobs_per_s": n / all_s if finished else 0.0,
        "never_run": n - tally.count,
        "setup_overran": overran,
    }
    run.measured(result)
    return result


# -- W3: steady -------------------------------------------------------------------


async def _w3(run: _Run) -> Result:
    n = run.size
    done = anyio.Event()
    late = [math.nan] * n
    due = [0.0] * n
    tally = Tally(n, job_clock(run.backend), done.set)
    job = tally.steady_job(late, due)
    lead = steady_lead(n)
    async with TimedScheduler() as scheduler, anyio.create_task_group() as watch:
        run.progress.update(f"scheduling {n:,} jobs over {SPREAD_S:g} s")
        base = datetime.now(UTC) + timedelta(seconds=lead)
        start_at = scheduler.start_at
        if run.variant == "random":
            # The baselines' deadlines, to the microsecond of a datetime; the
            # lateness is taken from the deadline the scheduler holds.
            whens = [base + timedelta(seconds=s) for s in random_offsets(n, run.seed)]
            tasks = [start_at(when, job, i) for i, when in enumerate(whens)]
            del whens
        else:
            step = timedelta(seconds=SPREAD_S / n)
            tasks = [start_at(base + step * i, job, i) for i in range(n)]
        for i, task in enumerate(tasks):
            due[i] = _deadline(task)
        overran = tally.clock() >= min(due)
        del tasks
        watch.start_soon(_watch, run.progress, tally, done)
        await _wait_done(done, lead + SPREAD_S + 60)
        scheduler._request_close()  # whatever is left over never runs
    result = lateness_stats(late)
    result.update(drift_stats(late, due))
    result["setup_overran"] = overran
    run.measured(result)
    return result


# -- W4: cancel -------------------------------------------------------------------


async def _w4(run: _Run) -> Result:
    n = run.size
    victims = cancel_victims(n, run.seed)
    done = anyio.Event()
    runs = bytearray(n)
    tally = Tally(n - len(victims), job_clock(run.backend), done.set)
    job = tally.marking_job(runs)
    check_by_running = n <= W4_RUN_LIMIT
    result: Result = {}
    async with TimedScheduler() as scheduler, anyio.create_task_group() as watch:
        run.progress.update(f"scheduling {n:,} jobs")
        start_after = scheduler.start_after
        if check_by_running:
            # Due soon, one second apart in total: the survivors then run.
            lead = steady_lead(n)
            tasks = [start_after(lead + i / n, job, i) for i in range(n)]
        else:
            offsets = far_offsets(random.Random(run.seed), w1_low_seconds(n))
            mask = MASK
            tasks = [start_after(offsets[i & mask], job, i) for i in range(n)]
        chosen = [tasks[i] for i in victims]
        cancel = scheduler.cancel
        run.progress.update(f"cancelling {len(chosen):,} of {n:,}")
        gc.collect()
        begin = time.perf_counter()
        for task in chosen:
            cancel(task)
        elapsed = time.perf_counter() - begin
        result["us_per_cancel"] = elapsed / len(chosen) * 1e6
        if check_by_running:
            result["setup_overran"] = tally.clock() >= _deadline(tasks[0])
        del chosen
        if check_by_running:
            watch.start_soon(_watch, run.progress, tally, done)
            await _wait_done(done, steady_lead(n) + 60)
            await anyio.sleep(0.05)  # room for a cancelled job to run, wrongly
            result["wrong_runs"] = verify_runs(runs, victims)
            result["checked"] = "run"
        else:
            wrong = sum(1 for i in victims if not tasks[i].cancelled())
            wrong += abs(len(scheduler._pending) - (n - len(victims)))
            result["wrong_runs"] = wrong
            result["checked"] = "state"
            run.measured(result)
        del tasks
        run.progress.update("closing")
        scheduler._request_close()
    run.measured(result)
    return result


# -- W5: queue --------------------------------------------------------------------


async def _w5(run: _Run) -> Result:
    n = run.size
    done = anyio.Event()
    order: list[int] = []
    tally = Tally(n, job_clock(run.backend), done.set)
    job = tally.ordered_job(order)
    queue: QueuedScheduler | Manager[QueuedScheduler]
    if run.variant == "serial":
        queue = QueuedScheduler()
    elif run.variant == "manager8":
        queue = Manager(8, cls=QueuedScheduler)
    else:
        raise ValueError(f"unknown W5 variant {run.variant!r}")
    async with queue, anyio.create_task_group() as watch:
        watch.start_soon(_watch, run.progress, tally, done)
        begin = tally.clock()
        start_soon = queue.start_soon
        tasks = [start_soon(job, i) for i in range(n)]
        finished = await _wait_done(done, 120)
    elapsed = tally.last - begin
    slots = None
    if isinstance(queue, Manager):
        owners = {id(s): k for k, s in enumerate(queue.schedulers)}
        slots = [owners[id(task._owner)] for task in tasks]
    result: Result = {
        "jobs_per_s": n / elapsed if finished else 0.0,
        "order_ok": order_kept(order, slots),
        "never_run": n - tally.count,
    }
    run.measured(result)
    return result


# -- W6: Manager(20) with N pending -------------------------------------------------


async def _w6(run: _Run) -> Result:
    n = run.size
    window = window_size(n)
    far = n - window
    done = anyio.Event()
    late = [math.nan] * window
    due = [0.0] * window
    tally = Tally(window, job_clock(run.backend), done.set)
    window_job = tally.steady_job(late, due)
    far_ran = 0

    async def far_job(i: int) -> None:  # never due within the run
        nonlocal far_ran
        far_ran += 1

    offsets = far_offsets(random.Random(run.seed), 120 + w1_low_seconds(n))
    mask = MASK
    steps = [timedelta(seconds=WINDOW_S * k / window) for k in range(window)]
    gc.collect()
    rss_before = rss_bytes()
    manager: Manager[TimedScheduler] = Manager(20)
    async with manager, anyio.create_task_group() as watch:
        start_at = manager.start_at
        chunk = max(1, far // 50) if run.progress.live else far
        now = datetime.now(UTC)
        pool = [now + timedelta(seconds=s) for s in offsets]
        begin = time.perf_counter()
        for low in range(0, far, chunk):
            for i in range(low, min(far, low + chunk)):
                start_at(pool[i & mask], far_job, i)
            run.progress.update(f"scheduling: {min(far, low + chunk):,}/{n:,}")
        base = datetime.now(UTC) + timedelta(seconds=WINDOW_LEAD_S)
        tasks = [start_at(base + step, window_job, k) for k, step in enumerate(steps)]
        schedule_s = time.perf_counter() - begin
        for k, task in enumerate(tasks):
            due[k] = _deadline(task)
        del tasks
        rss_after = rss_bytes()
        watch.start_soon(_watch, run.progress, tally, done)
        await _wait_done(done, WINDOW_LEAD_S + WINDOW_S + 60)
        await anyio.sleep(0.05)  # room for a duplicate run to show
        stats = lateness_stats(late)
        result: Result = {
            "schedule_s": schedule_s,
            "us_per_call": schedule_s / n * 1e6,
            "rss_per_job": (rss_after - rss_before) / n,
            "peak_rss_mb": peak_rss_bytes() / 1e6,
            **stats,
            "lost": stats["never_run"] + (tally.count - window),
            "far_ran": far_ran,
            "window": window,
        }
        run.measured(result)
        run.progress.update(f"cancelling {far:,} pending jobs")
        await manager.aclose()
    return result


# -- W7: completion cost ------------------------------------------------------------


async def _w7(run: _Run) -> Result:
    n = run.size
    done = anyio.Event()
    all_started = anyio.Event()
    gate = native_event(run.backend)
    tally = Tally(n, job_clock(run.backend), done.set)
    job = tally.gated_job(gate.wait, all_started.set)
    async with TimedScheduler() as scheduler:
        run.progress.update(f"starting {n:,} jobs")
        start_after = scheduler.start_after
        for i in range(n):
            start_after(0, job, i)
        await _wait_done(all_started, 60)
        run.progress.update(f"releasing {n:,} running jobs")
        begin = tally.clock()
        gate.set()
        with anyio.move_on_after(60):
            await scheduler.join()
        elapsed = tally.clock() - begin
    result: Result = {
        "us_per_completion": elapsed / n * 1e6,
        "never_run": n - tally.count,
    }
    run.measured(result)
    return result


_RUNNERS: dict[str, Callable[[_Run], Awaitable[Result]]] = {
    "W1": _w1,
    "W2": _w2,
    "W3": _w3,
    "W4": _w4,
    "W5": _w5,
    "W6": _w6,
    "W7": _w7,
}


def run(
    workload: str,
    size: int,
    backend: str = "asyncio",
    *,
    variant: str | None = None,
    passes: tuple[str, ...] = ("time", "tracemalloc"),
    progress: Progress | None = None,
    seed: int = 0,
    on_measured: Callable[[Result], None] | None = None,
) -> Result:
    """Run *workload* once on aioscheduler at *size* on *backend*; return figures.

    :param variant: the workload's variant (W1 form, W5 queue kind); default
        its first
    :param passes: W1 only: ``"time"`` (µs per call and RSS) and/or
        ``"tracemalloc"`` (bytes per job, at most at :data:`TRACEMALLOC_CAP`)
    :param on_measured: called with the figures as soon as they are known,
        before the (possibly long) tear-down of millions of pending jobs
    """
    spec = WORKLOADS[workload]
    chosen = variant or spec.variants[0]
    if chosen not in spec.variants:
        raise ValueError(f"{workload} has variants {spec.variants}, not {chosen!r}")
    state = _Run(
        size=size,
        backend=backend,
        variant=chosen,
        passes=passes,
        progress=progress or Progress("", enabled=False),
        seed=seed,
        on_measured=on_measured,
    )
    runner = _RUNNERS[workload]

    async def main() -> Result:
        return await runner(state)

    return run_on(backend, main)
