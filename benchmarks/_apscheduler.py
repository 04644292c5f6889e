"""The workloads on APScheduler 3.x, the scheduler most asyncio users run.

``AsyncIOScheduler`` with its defaults (the memory job store, the
``AsyncIOExecutor``, which runs a coroutine job as a task on the event loop
itself), on asyncio only; every job one ``add_job(job, "date",
run_date=..., args=(i,))``, the same :class:`~benchmarks._tally.Tally` jobs,
sizes and deadlines as every other implementation. :func:`run` runs one
workload once and returns its figures in the keys of
:func:`benchmarks._floors.run`.

Settings (the fair ones, not the defaults): ``misfire_grace_time=None``, so
that a job started late still runs (APScheduler's default of 1 s would drop
it: a dropped job counts as never run); ``coalesce=False`` and
``max_instances`` of N (neither changes anything for one-shot jobs with
distinct ids, they are set so that no limit can be the cause of a figure);
``timezone=UTC`` (no local-zone look-up). Logging is left as Python's
default (``WARNING``, no handler): its ``info`` calls are cheap no-ops.

APScheduler decides what is due by the wall clock (``datetime.now(tz)``),
so the jobs read :func:`time.time` and lateness is measured on the wall
clock against the ``run_date``'s timestamp, as for aioscheduler 1.4.2.

- W1: ``add_job`` N times on a running scheduler; ``us_per_call`` is the
  loop of calls; each call also queues a wake-up of the scheduler
  (``call_soon_threadsafe``), and ``settle_us`` includes running those.
- W2/W3: due at one instant / evenly over 5 s.
- W4: 10% removed with ``job.remove()``; the rest are due over 1 s and
  run, so that every outcome is checked.
- W7: ``add_job(job, args=(i,))`` with no trigger (run now); from the
  gate's ``set()`` until the executor has recorded every job's end.
- No W5 (APScheduler has no queue that runs jobs one after another, in
  order) and no W6 (it has no Manager, and 10M ``add_job`` calls would take
  hours: the memory job store inserts into a sorted list).
"""

from __future__ import annotations

import asyncio
import gc
import math
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from ._common import (
    MASK,
    SPREAD_S,
    Result,
    burst_lead,
    cancel_victims,
    far_offsets,
    lateness_stats,
    steady_lead,
    verify_runs,
    w1_low_seconds,
)
from ._floors import _Memory  # the same memory measurement as the floors'
from ._tally import Tally

Measured = Callable[[Result], None]

#: Seconds of set-up per job: ``add_job`` costs 35-50 µs on an idle machine
#: (more as the sorted job list grows), up to ~90 µs on a busy one, and its
#: queued wake-up ~7 µs more. The leads allow this much, so that every job
#: is added before the first is due (``setup_overran`` says if not).
PER_JOB = 120e-6


def _scheduler(n: int) -> tuple[AsyncIOScheduler, AsyncIOExecutor]:
    """A started ``AsyncIOScheduler`` with the fair job defaults, and its executor."""
    executor = AsyncIOExecutor()
    scheduler = AsyncIOScheduler(
        timezone=UTC,
        executors={"default": executor},
        job_defaults={
            "misfire_grace_time": None,
            "coalesce": False,
            "max_instances": max(1, n),
        },
    )
    scheduler.start()
    return scheduler, executor


def _at(when: float) -> datetime:
    """The aware UTC datetime of wall-clock *when* (to the microsecond)."""
    return datetime.fromtimestamp(when, UTC)


async def _wait(awaitable: Awaitable[Any], limit: float) -> bool:
    """Await *awaitable* for at most *limit* seconds; ``True`` if it finished."""
    try:
        await asyncio.wait_for(awaitable, limit)
    except TimeoutError:
        return False
    return True


async def _settle() -> None:
    """Let the wake-ups queued by ``add_job`` run (all were queued before this)."""
    await asyncio.sleep(0)


async def _never(i: int) -> None:
    """The job of W1: it is never due within the run."""


async def _w1(n: int, tracing: bool, seed: int, measured: Measured) -> Result:
    scheduler, _ = _scheduler(n)
    now = datetime.now(UTC)
    offsets = far_offsets(random.Random(seed), w1_low_seconds(n))
    pool = [now + timedelta(seconds=s) for s in offsets]
    add_job = scheduler.add_job
    memory = _Memory(tracing)
    begin = time.perf_counter()
    for i in range(n):
        add_job(_never, "date", run_date=pool[i & MASK], args=(i,))
    elapsed = time.perf_counter() - begin
    await _settle()
    result: Result = {
        "us_per_call": elapsed / n * 1e6,
        "settle_us": (time.perf_counter() - begin) / n * 1e6,
    }
    if tracing:
        result = {}
    result.update(memory.per_job(n))
    measured(result)
    return result


async def _w2(n: int, seed: int) -> Result:
    done = asyncio.Event()
    tally = Tally(n, time.time, done.set)
    job = tally.burst_job()
    scheduler, _ = _scheduler(n)
    lead = burst_lead(n, PER_JOB)
    when = _at(time.time() + lead)
    due = when.timestamp()
    add_job = scheduler.add_job
    for i in range(n):
        add_job(job, "date", run_date=when, args=(i,))
    await _settle()
    overran = time.time() >= due
    finished = await _wait(done.wait(), lead + 120)
    all_s = tally.last - due
    return {
        "first_ms": (tally.first - due) * 1e3,
        "all_ms": all_s * 1e3,
        "jobs_per_s": n / all_s if finished else 0.0,
        "never_run": n - tally.count,
        "setup_overran": overran,
    }


async def _w3(n: int, seed: int) -> Result:
    done = asyncio.Event()
    late = [math.nan] * n
    tally = Tally(n, time.time, done.set)
    scheduler, _ = _scheduler(n)
    lead = steady_lead(n, PER_JOB)
    base = time.time() + lead
    whens = [_at(base + SPREAD_S * i / n) for i in range(n)]
    due = [when.timestamp() for when in whens]  # to the microsecond, as it runs
    job = tally.steady_job(late, due)
    add_job = scheduler.add_job
    for i in range(n):
        add_job(job, "date", run_date=whens[i], args=(i,))
    await _settle()
    overran = time.time() >= due[0]
    await _wait(done.wait(), lead + SPREAD_S + 120)
    result = lateness_stats(late)
    result["setup_overran"] = overran
    return result


async def _w4(n: int, seed: int, measured: Measured) -> Result:
    done = asyncio.Event()
    victims = cancel_victims(n, seed)
    runs = bytearray(n)
    tally = Tally(n - len(victims), time.time, done.set)
    job = tally.marking_job(runs)
    scheduler, _ = _scheduler(n)
    # Due over 1 s after the set-up (and the cancels), so that the survivors
    # run and every outcome is checked; the plan stops at 100k.
    lead = steady_lead(n, PER_JOB)
    base = time.time() + lead
    whens = [_at(base + i / n) for i in range(n)]
    add_job = scheduler.add_job
    jobs = [add_job(job, "date", run_date=whens[i], args=(i,)) for i in range(n)]
    await _settle()
    chosen = [jobs[i] for i in victims]
    gc.collect()
    begin = time.perf_counter()
    for victim in chosen:
        victim.remove()
    elapsed = time.perf_counter() - begin
    result: Result = {
        "us_per_cancel": elapsed / len(chosen) * 1e6,
        "setup_overran": time.time() >= whens[0].timestamp(),
    }
    await _wait(done.wait(), lead + 1 + 120)
    await asyncio.sleep(0.05)  # a cancelled job that ran late would show now
    result.update(wrong_runs=verify_runs(runs, victims), checked="run")
    measured(result)
    return result


async def _w7(n: int, seed: int) -> Result:
    done = asyncio.Event()
    all_started = asyncio.Event()
    gate = asyncio.Event()
    clock = time.monotonic  # a duration: any steady clock
    tally = Tally(n, clock, done.set)
    job = tally.gated_job(gate.wait, all_started.set)
    scheduler, executor = _scheduler(n)
    add_job = scheduler.add_job
    for i in range(n):
        add_job(job, args=(i,))  # no trigger: run now
    await _wait(all_started.wait(), 120)
    begin = clock()
    gate.set()
    await _wait(done.wait(), 120)
    # Each job's end is recorded by its task's done callback (instance count,
    # events), which runs after the job's last step: stop the clock when the
    # executor holds no more futures (its own set; APScheduler has no join).
    while executor._pending_futures:  # noqa: ASYNC110 - polling its own set
        await asyncio.sleep(0)
    elapsed = clock() - begin
    return {"us_per_completion": elapsed / n * 1e6, "never_run": n - tally.count}


def run(
    workload: str,
    size: int,
    backend: str,
    *,
    variant: str = "",
    tracing: bool = False,
    seed: int = 0,
    on_measured: Measured | None = None,
) -> Result:
    """Run one workload once; *on_measured* may get the figures before tear-down."""
    if backend != "asyncio":
        raise ValueError(f"apscheduler runs on asyncio only, not {backend}")
    measured = on_measured or (lambda result: None)
    runners: dict[str, Callable[[], Coroutine[Any, Any, Result]]] = {
        "W1": lambda: _w1(size, tracing, seed, measured),
        "W2": lambda: _w2(size, seed),
        "W3": lambda: _w3(size, seed),
        "W4": lambda: _w4(size, seed, measured),
        "W7": lambda: _w7(size, seed),
    }
    if workload not in runners:
        raise ValueError(f"apscheduler has no {workload}")
    with asyncio.Runner() as runner:
        return runner.run(runners[workload]())
