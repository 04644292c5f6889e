"""Leaks: after many jobs have run and been awaited, nothing is retained.

A churn of jobs goes through a TimedScheduler, a QueuedScheduler, a
LifoQueuedScheduler and a Manager of 4 TimedSchedulers, 1,000 at a time:
most return, some raise (reported to ``on_error``), some are cancelled
while pending; callable and coroutine forms. Every task is awaited. Then:

* memory traced by ``tracemalloc`` is back within ``BOUND`` bytes of what it
  was after a warm-up, with the schedulers still open: nothing is kept per
  job (a leak of a few bytes per job would show as hundreds of kilobytes);
* once the schedulers are closed, no job coroutine, scheduler coroutine or
  ``Task`` handle is alive, and no event loop task is left behind;
* no warning is issued (warnings are errors here).

The default run churns 100,000 jobs on each of the 4 paths (4-12 s each).
The ``soak`` run (``nox -s soak``) churns 1,000,000 on asyncio and on Trio
(native engines), each in a fresh interpreter, both at once (60-95 s with
tracemalloc on a 2-core machine); run one alone with ``python -m
tests.test_leaks trio`` (``AIOSCHEDULER_TEST_ENGINE=anyio`` for the portable
engine: 2-3 minutes).
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import subprocess
import sys
import time
import tracemalloc
import weakref
from collections.abc import Coroutine, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from aioscheduler import (
    LifoQueuedScheduler,
    Manager,
    QueuedScheduler,
    Task,
    TaskCancelled,
    TimedScheduler,
)
from tests._engines import child_env
from tests.conftest import backend_options

BATCH = 1_000
# Bytes that may stay allocated after the churn, over the warmed-up
# baseline. Hash tables sized by the 1,000 jobs in flight (asyncio's WeakSet
# of tasks, the engines' dicts) may end one resize larger than they started,
# up to ~64 KiB each; a leak of even 8 bytes per job is 800 KiB at 100,000.
BOUND = 192 * 1024
ROOT = Path(__file__).resolve().parent.parent


class Boom(Exception):
    pass


async def job(n: int) -> int:
    if n % 7 == 3:
        await anyio.lowlevel.checkpoint()
    if n % 10 == 7:
        raise Boom(n)
    return n


class Churn:
    """Runs batches of jobs through four fronts and awaits every one."""

    def __init__(self) -> None:
        self.failures = 0
        self.counts = {"finished": 0, "failed": 0, "cancelled": 0}
        self.fronts: list[tuple[Any, bool]] = []

    def on_error(self, task: Task[Any], exc: Exception) -> None:
        assert isinstance(exc, Boom)
        self.failures += 1

    def open(self) -> list[Any]:
        timed = TimedScheduler(on_error=self.on_error)
        queued = QueuedScheduler(on_error=self.on_error)
        lifo = LifoQueuedScheduler(on_error=self.on_error)
        manager: Manager[TimedScheduler] = Manager(4, on_error=self.on_error)
        self.fronts = [(timed, True), (queued, False), (lifo, False), (manager, True)]
        return [front for front, _ in self.fronts]

    def submit(self, n: int) -> Task[Any]:
        front, is_timed = self.fronts[n % len(self.fronts)]
        task: Task[Any]
        if n % 10 == 1:  # the 1.x form: a coroutine object
            coro: Coroutine[Any, Any, int] = job(n)
            if is_timed:
                task = front.schedule(coro, front.now() + timedelta(seconds=1))
            else:
                task = front.schedule(coro)
        elif is_timed:
            task = front.start_after(n % 3, job, n)
        else:
            task = front.start_soon(job, n)
        return task

    async def batch(self, start: int) -> None:
        tasks = [self.submit(n) for n in range(start, start + BATCH)]
        for n in range(start + 5, start + BATCH, 20):
            tasks[n - start].cancel()  # most are still pending
        for n, task in enumerate(tasks, start):
            try:
                value = await task.wait()
            except Boom as exc:
                self.counts["failed"] += exc.args == (n,)
            except TaskCancelled:
                self.counts["cancelled"] += 1
            else:
                assert value == n
                self.counts["finished"] += 1


def leftovers(schedulers: list[weakref.ref[Any]]) -> Iterator[str]:
    """Describe what is still alive: our schedulers (a Task handle or a
    serving coroutine would keep its scheduler alive) and job coroutines."""
    gc.collect()
    for ref in schedulers:
        scheduler = ref()
        if scheduler is not None:
            referrers = [type(r).__name__ for r in gc.get_referrers(scheduler)]
            yield f"{scheduler!r}, referred to by {referrers}"
    for obj in gc.get_objects():
        if inspect.iscoroutine(obj) and obj.cr_code is job.__code__:
            yield f"job coroutine ({inspect.getcoroutinestate(obj)})"


def loop_tasks(backend: str) -> int:
    """Return how many tasks the running event loop has."""
    if backend == "asyncio":
        return len(asyncio.all_tasks())
    import trio

    def count(task: Any) -> int:
        return 1 + sum(
            count(child)
            for nursery in task.child_nurseries
            for child in nursery.child_tasks
        )

    root = trio.lowlevel.current_root_task()
    assert root is not None
    return count(root)


async def churn_and_check(total: int, backend: str) -> dict[str, Any]:
    """Churn *total* jobs, check, and return the figures."""
    began = time.perf_counter()
    tasks_before = loop_tasks(backend)
    churn = Churn()
    tracemalloc.start()
    try:
        fronts = churn.open()
        async with anyio.create_task_group() as group:
            for front in fronts:
                await group.start(front.run)
            # Warm up: caches, free lists and containers reach their size.
            for start in range(0, 3 * BATCH, BATCH):
                await churn.batch(start)
            gc.collect()
            baseline = tracemalloc.get_traced_memory()[0]
            for start in range(3 * BATCH, total, BATCH):
                await churn.batch(start)
            gc.collect()
            retained = tracemalloc.get_traced_memory()[0] - baseline
            for front in fronts:
                await front.join()
                await front.aclose()
    finally:
        tracemalloc.stop()
    schedulers = [
        weakref.ref(scheduler)
        for front in fronts
        for scheduler in (front.schedulers if isinstance(front, Manager) else [front])
    ]
    assert sum(churn.counts.values()) == total
    assert churn.failures == churn.counts["failed"]
    assert churn.counts["cancelled"] >= total // 20 * 9 // 10
    assert retained < BOUND, f"{retained} bytes retained after {total} jobs"
    figures: dict[str, Any] = {"jobs": total, **churn.counts}
    figures["retained_bytes"] = retained
    del fronts, churn, front
    assert list(leftovers(schedulers)) == []
    assert loop_tasks(backend) == tasks_before
    figures["seconds"] = round(time.perf_counter() - began, 1)
    return figures


@pytest.mark.filterwarnings("error")
@pytest.mark.timeout(180)
async def test_100k_jobs_leave_nothing_behind(backend_name: str) -> None:
    await churn_and_check(100_000, backend_name)


# The soak run: each loop with its native engine (the portable engine gets
# the 100,000-job run above on both loops; 1,000,000 more would take 2-3
# minutes each and push ``nox -s soak`` past 10 minutes).
PATHS = [("trio", "native"), ("asyncio", "native")]


def _start(loop: str, engine: str) -> subprocess.Popen[str]:
    env = child_env(engine)
    command = [sys.executable, "-W", "error", "-m", "tests.test_leaks", loop]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.soak
@pytest.mark.timeout(1800)
def test_1m_jobs_leave_nothing_behind(capsys: pytest.CaptureFixture[str]) -> None:
    """1,000,000 jobs on each loop, each in a fresh interpreter (warnings are
    errors there too), both at once: this machine has two cores."""
    waiting = list(PATHS)
    running: dict[str, subprocess.Popen[str]] = {}
    failures: list[str] = []
    while waiting or running:
        while waiting and len(running) < 2:
            loop, engine = waiting.pop(0)
            running[f"{loop}+{engine}"] = _start(loop, engine)
        name, proc = next(iter(running.items()))
        for candidate, process in running.items():
            if process.poll() is not None:
                name, proc = candidate, process
                break
        out, err = proc.communicate()
        del running[name]
        if proc.returncode:
            failures.append(f"{name}: exit {proc.returncode}\n{err[-3000:]}")
        else:
            with capsys.disabled():
                print(f"\nleaks, {name}: {out.strip().splitlines()[-1]}")
    assert failures == []


def main(loop: str) -> None:
    figures = anyio.run(
        churn_and_check,
        1_000_000,
        loop,
        backend=loop,
        backend_options=backend_options(loop),
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main(sys.argv[1])
