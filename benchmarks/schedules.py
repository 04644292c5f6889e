"""Recurring schedules at scale, and catch-up after a clock jump.

    python -m benchmarks.schedules [--schedules N] [--seconds S] [--backend B]

1. N ``Every`` schedules (default 100,000), each every 10 s, their phases
   spread evenly over the period (N/10 fires per second), served for S
   seconds of real time (the first fire 10 s after the first add): the
   cost of adding one, the CPU cost per fire (process CPU time over fires:
   it includes running the empty job), and
   how late runs start (p50/p99/max, start time minus fire time).
2. A per-second ``Cron`` schedule whose wall clock jumps 200 years ahead:
   the time from the jump to the catch-up run, and what the serving task
   spent deciding it (``coalesce="latest"``: one run, 10,000 counted as
   missed without enumerating the rest). The floor beside it: one
   ``cronsim`` step, what finding any next fire time costs.

Real time, on whatever else the machine is doing: read the figures as
medians of several runs (``--repeat``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime
from typing import Any

import anyio
import cronsim

from aioscheduler import Cron, Every, TimedScheduler

# The first fires come this long after the first add_schedule: adding
# 100,000 takes seconds, and a fire due while they are added would start
# late by the rest of the adding, which is set-up, not serving.
_LEAD = 10.0


async def _many(n: int, seconds: float) -> dict[str, float]:
    period = 10.0

    async def job() -> None:
        pass

    async with TimedScheduler() as scheduler:
        now = scheduler.now()
        begin = time.perf_counter()
        schedules = [
            scheduler.add_schedule(
                Every(
                    period,
                    start=datetime.fromtimestamp(
                        now.timestamp() + _LEAD + period * i / n, UTC
                    ),
                ),
                job,
            )
            for i in range(n)
        ]
        add_us = (time.perf_counter() - begin) / n * 1e6
        cpu0 = time.process_time()
        await anyio.sleep(seconds)
        cpu = time.process_time() - cpu0
        await scheduler.aclose()
    fires = sum(s.runs for s in schedules)
    return {"add_us": add_us, "fires": fires, "cpu_us_per_fire": cpu / fires * 1e6}


async def _lateness(n: int, seconds: float) -> dict[str, float]:
    """As _many, recording each run's lateness (costs a little per fire)."""
    late: list[float] = []
    period = 10.0
    scheduler = TimedScheduler()

    async def job(i: int) -> None:
        task = schedules[i].last_task
        if task is not None and task.when is not None:
            late.append((scheduler.now() - task.when).total_seconds())

    schedules: list[Any] = []
    async with scheduler:
        now = scheduler.now()
        for i in range(n):
            start = datetime.fromtimestamp(
                now.timestamp() + _LEAD + period * i / n, UTC
            )
            schedules.append(scheduler.add_schedule(Every(period, start=start), job, i))
        await anyio.sleep(seconds)
        await scheduler.aclose()
    late.sort()
    return {
        "p50_ms": late[len(late) // 2] * 1e3,
        "p99_ms": late[int(len(late) * 0.99)] * 1e3,
        "max_ms": late[-1] * 1e3,
        "runs": len(late),
    }


async def _jump() -> dict[str, float]:
    shift = [0.0]
    ran = anyio.Event()

    async def job() -> None:
        ran.set()

    scheduler = TimedScheduler(wall_clock=lambda: time.time() + shift[0], wall_poll=1)
    async with scheduler:
        schedule = scheduler.add_schedule(Cron("* * * * * *"), job, max_runs=100)
        await anyio.sleep(1.5)  # a few normal fires first
        before = schedule.runs
        ran = anyio.Event()
        shift[0] += 200 * 365.25 * 86400
        begin = time.perf_counter()
        await ran.wait()
        seconds = time.perf_counter() - begin
        missed = schedule.missed
        runs = schedule.runs - before
        await scheduler.aclose()
    # What the decision itself costs, without the wait for the next poll.
    trigger = Cron("* * * * * *")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    t1 = datetime(2226, 1, 1, tzinfo=UTC)
    begin = time.perf_counter()
    latest = trigger._last_at_or_before(t1)
    assert latest is not None
    trigger._count_between(t0, latest, 10_000)
    decide = time.perf_counter() - begin
    begin = time.perf_counter()
    it = cronsim.CronSim("* * * * * *", t0)
    for _ in range(1000):
        next(it)
    step = (time.perf_counter() - begin) / 1000
    return {
        "jump_to_run_ms": seconds * 1e3,
        "decide_ms": decide * 1e3,
        "cronsim_step_us": step * 1e6,
        "missed": missed,
        "catch_up_runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.schedules")
    parser.add_argument("--schedules", "-n", type=int, default=100_000)
    parser.add_argument("--seconds", "-s", type=float, default=20.0)
    parser.add_argument(
        "--backend", "-b", choices=["asyncio", "trio"], default="asyncio"
    )
    parser.add_argument("--repeat", "-r", type=int, default=3)
    options = parser.parse_args()
    n, seconds, backend = options.schedules, options.seconds, options.backend
    print(f"{n:,} Every(10 s) schedules, {n / 10:,.0f} fires/s, {seconds:.0f} s")
    print(f"on {backend}, medians of {options.repeat} runs")
    repeat = range(options.repeat)
    cost = [anyio.run(_many, n, seconds, backend=backend) for _ in repeat]
    late = [anyio.run(_lateness, n, seconds, backend=backend) for _ in repeat]

    def med(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(row[key] for row in rows)

    print(f"  add_schedule             {med(cost, 'add_us'):8.2f} µs each")
    print(f"  CPU per fire (job incl.) {med(cost, 'cpu_us_per_fire'):8.2f} µs")
    print(f"  fires in the window      {med(cost, 'fires'):8,.0f}")
    print(
        f"  lateness p50 / p99 / max {med(late, 'p50_ms'):.2f} / "
        f"{med(late, 'p99_ms'):.2f} / {med(late, 'max_ms'):.2f} ms"
    )
    jumps = [anyio.run(_jump, backend=backend) for _ in repeat]
    print("Per-second Cron, wall clock jumps 200 years ahead (wall_poll=1 s)")
    jump_ms = med(jumps, "jump_to_run_ms")
    print(f"  jump to catch-up run     {jump_ms:8.1f} ms (poll incl.)")
    print(f"  deciding the catch-up    {med(jumps, 'decide_ms'):8.1f} ms")
    print(f"  one cronsim step         {med(jumps, 'cronsim_step_us'):8.1f} µs (floor)")
    missed, runs = med(jumps, "missed"), med(jumps, "catch_up_runs")
    print(f"  missed {missed:,.0f}, catch-up runs {runs:.0f}")


if __name__ == "__main__":
    main()
