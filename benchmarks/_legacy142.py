"""The workloads on aioscheduler 1.4.2, the 1.x line, as a stand-alone script.

    PYTHONPATH=benchmarks/.baselines/aioscheduler-1.4.2:. \\
        python3.10 benchmarks/_legacy142.py '{"workload": "W2", "size": 10000}'

1.4.2 runs on asyncio only, and its TimedScheduler only on Python <= 3.10
(it passes bare coroutines to ``asyncio.wait``), so this runs under Python
3.10 with 1.4.2 ahead of the source tree on the path. It imports only the
standard-library modules of ``benchmarks`` (set-up sizes, measurements, the
job bodies, the result line), so the baseline runs exactly the same jobs as
every other implementation. 1.4.2 has only the coroutine form and naive UTC
datetimes (it compares with ``datetime.utcnow()``), so lateness is measured
on the wall clock against the datetime's timestamp.

Prints ``@@RESULT <json>`` and exits at once, as ``benchmarks/_worker.py``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import random
import sys
import time
import tracemalloc
import warnings
from datetime import datetime, timedelta

import aioscheduler
from benchmarks._common import (
    MASK,
    SPREAD_S,
    WINDOW_LEAD_S,
    WINDOW_S,
    cancel_victims,
    drift_stats,
    far_offsets,
    lateness_stats,
    order_kept,
    peak_rss_bytes,
    random_offsets,
    rss_bytes,
    w1_low_seconds,
    window_size,
)
from benchmarks._tally import Tally
from benchmarks._worker import report

#: 1.4.2's cancel is O(n) (a scan and a heapify); W4 stops cancelling after
#: this many seconds and reports the cost of the cancels done so far.
CANCEL_BUDGET_S = 3.0
#: 1.4.2 schedules at ~5-15 µs a job, so its leads allow 30 µs.
PER_JOB = 30e-6
EPOCH = datetime(1970, 1, 1)


def stamp(when):
    return (when - EPOCH).total_seconds()


async def wait(event, limit):
    try:
        await asyncio.wait_for(event.wait(), limit)
    except asyncio.TimeoutError:  # noqa: UP041 - not the builtin on 3.10
        return False
    return True


def far_pool(rng, n, extra=0.0):
    now = datetime.utcnow()
    offsets = far_offsets(rng, w1_low_seconds(n) + extra)
    return [now + timedelta(seconds=s) for s in offsets]


# -- the workloads -----------------------------------------------------------------


async def w1(n, tracing, seed):
    async def never(i):
        pass

    pool = far_pool(random.Random(seed), n)
    scheduler = aioscheduler.TimedScheduler()
    scheduler.start()
    schedule = scheduler.schedule
    gc.collect()
    if tracing:
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
    else:
        before = rss_bytes()
    begin = time.perf_counter()
    for i in range(n):
        schedule(never(i), pool[i & MASK])
    elapsed = time.perf_counter() - begin
    if tracing:
        return {"tm_per_job": (tracemalloc.get_traced_memory()[0] - before) / n}
    return {
        "us_per_call": elapsed / n * 1e6,
        "rss_per_job": (rss_bytes() - before) / n,
        "peak_rss_mb": peak_rss_bytes() / 1e6,
    }


async def w2(n, seed):
    done = asyncio.Event()
    tally = Tally(n, time.time, done.set)
    clock = tally.clock
    job = tally.burst_job()
    lead = 0.25 + n * PER_JOB
    scheduler = aioscheduler.TimedScheduler()
    scheduler.start()
    when = datetime.utcnow() + timedelta(seconds=lead)
    for i in range(n):
        scheduler.schedule(job(i), when)
    due = stamp(when)
    overran = clock() >= due
    finished = await wait(done, lead + 120)
    all_s = tally.last - due
    return {
        "first_ms": (tally.first - due) * 1e3,
        "all_ms": all_s * 1e3,
        "jobs_per_s": n / all_s if finished else 0.0,
        "never_run": n - tally.count,
        "setup_overran": overran,
    }


async def w3(n, variant, seed):
    done = asyncio.Event()
    late = [math.nan] * n
    due = [0.0] * n
    tally = Tally(n, time.time, done.set)
    clock = tally.clock
    job = tally.steady_job(late, due)
    lead = 0.5 + n * PER_JOB
    scheduler = aioscheduler.TimedScheduler()
    scheduler.start()
    base = datetime.utcnow() + timedelta(seconds=lead)
    if variant == "random":
        whens = [base + timedelta(seconds=s) for s in random_offsets(n, seed)]
    else:
        step = timedelta(seconds=SPREAD_S / n)
        whens = [base + step * i for i in range(n)]
    for i, when in enumerate(whens):
        due[i] = stamp(when)
        scheduler.schedule(job(i), when)
    overran = clock() >= min(due)
    await wait(done, lead + SPREAD_S + 60)
    result = lateness_stats(late)
    result.update(drift_stats(late, due))
    result["setup_overran"] = overran
    return result


async def w4(n, seed):
    async def never(i):
        pass

    pool = far_pool(random.Random(seed), n)
    victims = cancel_victims(n, seed)
    scheduler = aioscheduler.TimedScheduler()
    scheduler.start()
    tasks = [scheduler.schedule(never(i), pool[i & MASK]) for i in range(n)]
    await asyncio.sleep(0)
    chosen = [tasks[i] for i in victims]
    cancel = scheduler.cancel
    gc.collect()
    done = 0
    begin = time.perf_counter()
    for task in chosen:
        cancel(task)
        done += 1
        if not done & 15 and time.perf_counter() - begin > CANCEL_BUDGET_S:
            break
    elapsed = time.perf_counter() - begin
    return {
        "us_per_cancel": elapsed / done * 1e6,
        "cancels_done": done,
        "checked": "none" if done < len(chosen) else "count",
        "wrong_runs": 0
        if done < len(chosen)
        else scheduler._task_count - (n - len(chosen)),
    }


async def w5(n, variant, seed):
    done = asyncio.Event()
    order = []
    tally = Tally(n, time.monotonic, done.set)
    clock = tally.clock
    job = tally.ordered_job(order)
    if variant == "serial":
        queue = aioscheduler.QueuedScheduler()
        queues = [queue]
    else:
        queue = aioscheduler.Manager(8, cls=aioscheduler.QueuedScheduler)
        queues = queue._schedulers
    queue.start()
    begin = clock()
    for i in range(n):
        queue.schedule(job(i))
    # 1.4.2's tasks do not say which queue took them: read job i's argument
    # back from the coroutine each queue holds.
    slots = [-1] * n
    for slot, scheduler in enumerate(queues):
        for task in scheduler._tasks._queue:
            slots[task.callback.cr_frame.f_locals["i"]] = slot
    finished = await wait(done, 120)
    return {
        "jobs_per_s": n / (tally.last - begin) if finished else 0.0,
        "order_ok": order_kept(order, slots),
        "never_run": n - tally.count,
    }


async def w6(n, seed):
    window = window_size(n)
    far = n - window
    done = asyncio.Event()
    late = [math.nan] * window
    due = [0.0] * window
    tally = Tally(window, time.time, done.set)
    window_job = tally.steady_job(late, due)
    far_ran = 0

    async def far_job(i):
        nonlocal far_ran
        far_ran += 1

    pool = far_pool(random.Random(seed), n, extra=120 + n * PER_JOB)
    steps = [timedelta(seconds=WINDOW_S * k / window) for k in range(window)]
    gc.collect()
    rss_before = rss_bytes()
    manager = aioscheduler.Manager(20)
    manager.start()
    schedule = manager.schedule
    begin = time.perf_counter()
    for i in range(far):
        schedule(far_job(i), pool[i & MASK])
    base = datetime.utcnow() + timedelta(seconds=WINDOW_LEAD_S)
    for k, step in enumerate(steps):
        due[k] = stamp(base + step)
        schedule(window_job(k), base + step)
    schedule_s = time.perf_counter() - begin
    rss_after = rss_bytes()
    await wait(done, WINDOW_LEAD_S + WINDOW_S + 60)
    result = lateness_stats(late)
    result.update(
        schedule_s=schedule_s,
        us_per_call=schedule_s / n * 1e6,
        rss_per_job=(rss_after - rss_before) / n,
        peak_rss_mb=peak_rss_bytes() / 1e6,
        lost=result["never_run"] + tally.count - window,
        far_ran=far_ran,
        window=window,
    )
    return result


async def w7(n, seed):
    done = asyncio.Event()
    all_started = asyncio.Event()
    gate = asyncio.Event()
    tally = Tally(n, time.monotonic, done.set)
    clock = tally.clock
    job = tally.gated_job(gate.wait, all_started.set)
    scheduler = aioscheduler.TimedScheduler()
    scheduler.start()
    when = datetime.utcnow() + timedelta(seconds=0.25 + n * PER_JOB)
    for i in range(n):
        scheduler.schedule(job(i), when)
    await wait(all_started, 120)
    begin = clock()
    gate.set()
    await wait(done, 120)
    # 1.4.2's done callbacks (the running-list scan) run after the job's last
    # step; let them all run before stopping the clock.
    while scheduler._running:  # noqa: ASYNC110 - polling 1.4.2's own list
        await asyncio.sleep(0)
    elapsed = clock() - begin
    return {"us_per_completion": elapsed / n * 1e6, "never_run": n - tally.count}


def main(argv):
    warnings.simplefilter("ignore")
    case = json.loads(argv[0])
    workload, n = case["workload"], case["size"]
    seed = case.get("seed", 0)
    variant = case.get("variant", "")
    runners = {
        "W1": lambda: w1(n, bool(case.get("tracemalloc")), seed),
        "W2": lambda: w2(n, seed),
        "W3": lambda: w3(n, variant, seed),
        "W4": lambda: w4(n, seed),
        "W5": lambda: w5(n, variant, seed),
        "W6": lambda: w6(n, seed),
        "W7": lambda: w7(n, seed),
    }
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    report(loop.run_until_complete(runners[workload]()))


if __name__ == "__main__":
    main(sys.argv[1:])
