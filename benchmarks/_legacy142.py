"""The workloads on aioscheduler 1.4.2, the 1.x line, as a stand-alone script.

    PYTHONPATH=benchmarks/.baselines/aioscheduler-1.4.2 \\
        python3.10 benchmarks/_legacy142.py '{"workload": "W2", "size": 10000}'

1.4.2 runs on asyncio only, and its TimedScheduler only on Python <= 3.10
(it passes bare coroutines to ``asyncio.wait``), so this runs under Python
3.10 and imports neither aioscheduler 2 nor the ``benchmarks`` package: the
few helpers it needs are copied from ``aioscheduler/_bench.py`` (keep the
set-up sizes in step). 1.4.2 has only the coroutine form and naive UTC
datetimes (it compares with ``datetime.utcnow()``), so lateness is measured
on the wall clock against the datetime's timestamp.

Prints ``@@RESULT <json>`` and exits at once, as ``benchmarks/_worker.py``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import os
import random
import resource
import sys
import time
import tracemalloc
import warnings
from datetime import datetime, timedelta

import aioscheduler

# -- copied from aioscheduler/_bench.py ------------------------------------------
POOL_SIZE = 1 << 16
MASK = POOL_SIZE - 1
SPREAD_S = 5.0
WINDOW_MAX = 50_000
WINDOW_S = 2.0
#: 1.4.2's cancel is O(n) (a scan and a heapify); W4 stops cancelling after
#: this many seconds and reports the cost of the cancels done so far.
CANCEL_BUDGET_S = 3.0
#: 1.4.2 schedules at ~5-15 µs a job, so its leads allow 30 µs.
PER_JOB = 30e-6
EPOCH = datetime(1970, 1, 1)
PAGE = os.sysconf("SC_PAGE_SIZE")


def w1_low_seconds(n):
    return 10.0 + n * 10e-6


def rss_bytes():
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * PAGE


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def lateness_stats(late):
    ran = sorted(x for x in late if x == x)
    result = {"never_run": len(late) - len(ran), "early": sum(1 for x in ran if x < 0)}
    if ran:

        def pct(q):
            return ran[min(len(ran) - 1, max(0, math.ceil(q * len(ran)) - 1))] * 1e3

        result.update(p50_ms=pct(0.5), p99_ms=pct(0.99), max_ms=ran[-1] * 1e3)
        result["min_ms"] = ran[0] * 1e3
    return result


def report(result):
    sys.stdout.write("@@RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()
    os._exit(0)


def stamp(when):
    return (when - EPOCH).total_seconds()


class Tally:
    def __init__(self, target, done):
        self.target = target
        self.done = done
        self.count = 0
        self.started = 0
        self.first = math.nan
        self.last = math.nan


async def wait(event, limit):
    try:
        await asyncio.wait_for(event.wait(), limit)
    except asyncio.TimeoutError:  # noqa: UP041 - not the builtin on 3.10
        return False
    return True


def far_pool(rng, n, extra=0.0):
    now = datetime.utcnow()
    low = w1_low_seconds(n) + extra
    return [now + timedelta(seconds=rng.uniform(low, 3600)) for _ in range(POOL_SIZE)]


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
    tally = Tally(n, done.set)
    clock = time.time

    async def job(i):
        count = tally.count = tally.count + 1
        if count == 1:
            tally.first = clock()
        if count == n:
            tally.last = clock()
            done.set()

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


async def w3(n, seed):
    done = asyncio.Event()
    tally = Tally(n, done.set)
    clock = time.time
    late = [math.nan] * n
    due = [0.0] * n

    async def job(i):
        late[i] = clock() - due[i]
        tally.count += 1
        if tally.count == n:
            done.set()

    lead = 0.5 + n * PER_JOB
    scheduler = aioscheduler.TimedScheduler()
    scheduler.start()
    base = datetime.utcnow() + timedelta(seconds=lead)
    step = timedelta(seconds=SPREAD_S / n)
    for i in range(n):
        when = base + step * i
        due[i] = stamp(when)
        scheduler.schedule(job(i), when)
    overran = clock() >= due[0]
    await wait(done, lead + SPREAD_S + 60)
    result = lateness_stats(late)
    result["setup_overran"] = overran
    return result


async def w4(n, seed):
    async def never(i):
        pass

    pool = far_pool(random.Random(seed), n)
    victims = random.Random(seed + 4).sample(range(n), n // 10)
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
    tally = Tally(n, done.set)
    clock = time.monotonic
    order = []

    async def job(i):
        order.append(i)
        tally.count += 1
        if tally.count == n:
            tally.last = clock()
            done.set()

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
    slot_of = {}
    for slot, scheduler in enumerate(queues):
        for task in scheduler._tasks._queue:
            slot_of[task.callback.cr_frame.f_locals["i"]] = slot
    finished = await wait(done, 120)
    last = {}
    order_ok = True
    for i in order:
        slot = slot_of.get(i, -1)
        if last.get(slot, -1) > i:
            order_ok = False
        last[slot] = i
    return {
        "jobs_per_s": n / (tally.last - begin) if finished else 0.0,
        "order_ok": order_ok,
        "never_run": n - tally.count,
    }


async def w6(n, seed):
    window = min(WINDOW_MAX, max(1, n // 20))
    far = n - window
    done = asyncio.Event()
    tally = Tally(window, done.set)
    clock = time.time
    late = [math.nan] * window
    due = [0.0] * window
    far_ran = 0

    async def far_job(i):
        nonlocal far_ran
        far_ran += 1

    async def window_job(k):
        late[k] = clock() - due[k]
        tally.count += 1
        if tally.count == window:
            done.set()

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
    base = datetime.utcnow() + timedelta(seconds=1.0)
    for k, step in enumerate(steps):
        due[k] = stamp(base + step)
        schedule(window_job(k), base + step)
    schedule_s = time.perf_counter() - begin
    rss_after = rss_bytes()
    await wait(done, 1.0 + WINDOW_S + 60)
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
    tally = Tally(n, done.set)
    clock = time.monotonic

    async def job(i):
        tally.started += 1
        if tally.started == n:
            all_started.set()
        await gate.wait()
        tally.count += 1
        if tally.count == n:
            tally.last = clock()
            done.set()

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
        "W3": lambda: w3(n, seed),
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
