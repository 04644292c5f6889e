"""Soak: a Manager of 20 TimedSchedulers under sustained load, in real time.

For each event loop (asyncio and Trio, each with its native engine), in a
fresh interpreter of its own so that its peak memory is its own (one after
the other): a Manager of 20
TimedSchedulers is filled with 2,000,000 pending jobs, due over the next
``HORIZON`` seconds; then, for ``AIOSCHEDULER_SOAK_SECONDS`` (default 150),
a feeder keeps 2,000,000 pending by scheduling, every 10 ms, as many jobs as
came due, ``HORIZON`` seconds ahead: 20,000 jobs/s become due, all the while.
About 1% of the jobs raise (counted by ``on_error``) and the feeder cancels
about 1% of the pending ones at random. When the feeding stops, a marker job
due then on each of the 20 schedulers shows that everything due before it
has been dispatched; then the manager is closed, which cancels the rest.

Every job records how late it started (loop clock minus its deadline). The
run prints jobs run, cancelled, failed, lost, lateness p50/p99/max and peak
memory (max RSS), and fails if any job was lost (due before the end, neither
run nor cancelled), ran twice, ran after being cancelled while pending, or
started early. Run it with ``nox -s soak`` (or ``pytest -m soak -s``).
"""

from __future__ import annotations

import array
import json
import os
import random
import resource
import subprocess
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from aioscheduler import Manager, Task, TimedScheduler
from tests._engines import child_env

SCHEDULERS = 20
PENDING = 2_000_000
RATE = 20_000  # jobs per second becoming due
HORIZON = PENDING / RATE  # how far ahead jobs are scheduled: 100 s
LEAD = 25.0  # the first jobs are due this long after the prefill (~10 s) began
TICK = 0.01  # the feeder's period
FAIL_EVERY = 97  # about 1% of jobs raise
CANCEL_SHARE = 0.01  # about 1% of the jobs are cancelled while pending
RECENT = 200_000  # handles kept for random cancels
EARLY_SLACK = 1e-6  # a timer may fire this much before its deadline, no more

ROOT = Path(__file__).resolve().parent.parent


class Failure(Exception):
    pass


class Soak:
    def __init__(self, loop: str, seconds: float) -> None:
        self.loop = loop
        self.seconds = seconds
        self.clock: Any = None
        self.capacity = capacity = PENDING + int(RATE * (seconds + LEAD + 60))
        self.deadlines = array.array("d", bytes(8 * capacity))
        self.runs = bytearray(capacity)
        self.cancelled = bytearray(capacity)  # 1: pending when cancelled
        self.lateness = array.array("d")
        self.early = 0
        self.failed = 0
        self.scheduled = 0
        self.recent: deque[tuple[int, Task[Any]]] = deque(maxlen=RECENT)
        self.rng = random.Random(5)
        self.fed_until = 0.0
        self.job_fn: Any = None

    def on_error(self, task: Task[Any], exc: Exception) -> None:
        assert isinstance(exc, Failure)
        self.failed += 1

    async def job(self, n: int) -> None:
        late = self.clock() - self.deadlines[n]
        self.runs[n] += 1
        self.lateness.append(late)
        if late < -EARLY_SLACK:
            self.early += 1
        if n % FAIL_EVERY == 0:
            raise Failure(n)

    def add(
        self, manager: Manager[TimedScheduler], deadline: float, now: float
    ) -> None:
        n = self.scheduled
        if n == self.capacity:
            raise RuntimeError("more jobs than planned for: the loop fell far behind")
        self.scheduled += 1
        self.deadlines[n] = deadline
        # The scheduler reads its clock again: its deadline is at least ours.
        task = manager.start_after(deadline - now, self.job_fn, n)
        self.recent.append((n, task))

    def cancel_some(self, count: int) -> None:
        recent = self.recent
        for _ in range(count):
            if not recent:
                return
            i = self.rng.randrange(len(recent))
            n, task = recent[i]
            pending = not self.runs[n]
            if task.cancel() and pending:
                self.cancelled[n] = 1
            recent[i] = recent[-1]
            recent.pop()

    async def run(self) -> dict[str, Any]:
        manager: Manager[TimedScheduler] = Manager(SCHEDULERS, on_error=self.on_error)
        if self.loop == "trio":
            import trio

            self.clock = trio.current_time
        else:
            import asyncio

            self.clock = asyncio.get_running_loop().time
        clock = self.clock
        self.job_fn = self.job  # one bound method: the scheduler checks it once
        began = time.perf_counter()
        async with manager:
            t0 = clock()
            for i in range(PENDING):
                if i % 10_000 == 0:
                    await anyio.lowlevel.checkpoint()
                    now = clock()
                self.add(manager, t0 + LEAD + i / RATE, now)
            prefill = time.perf_counter() - began
            # Feed: keep 2,000,000 pending while RATE jobs per second come due.
            start = t0 + LEAD
            await anyio.sleep_until(start)
            end = start + self.seconds
            next_due = t0 + LEAD + PENDING / RATE
            tick = start
            while True:
                tick += TICK
                await anyio.sleep_until(tick)
                now = clock()
                if now >= end:
                    break
                target = now + HORIZON
                while next_due < target:
                    self.add(manager, next_due, now)
                    next_due += 1 / RATE
                self.cancel_some(int(RATE * TICK * CANCEL_SHARE))
            self.fed_until = clock()
            # Everything due before the markers is dispatched before them.
            markers = [s.start_after(0, anyio.sleep, 0) for s in manager.schedulers]
            for marker in markers:
                await marker.wait()
            await anyio.sleep(0.5)  # let the last dispatched jobs run
            closed_at = clock()
            await manager.aclose()
        return self.verdict(prefill, closed_at)

    def verdict(self, prefill: float, closed_at: float) -> dict[str, Any]:
        lost = twice = ran_cancelled = 0
        run = cancelled = cancelled_at_close = 0
        for n in range(self.scheduled):
            runs = self.runs[n]
            if runs > 1:
                twice += 1
            if runs:
                run += 1
                if self.cancelled[n]:
                    ran_cancelled += 1
            elif self.cancelled[n]:
                cancelled += 1
            elif self.deadlines[n] < self.fed_until:
                lost += 1
            else:
                cancelled_at_close += 1
        late = sorted(self.lateness)

        def pick(q: float) -> float:
            return late[min(len(late) - 1, int(q * len(late)))] if late else 0.0

        return {
            "loop": self.loop,
            "scheduled": self.scheduled,
            "run": run,
            "cancelled": cancelled,
            "cancelled_at_close": cancelled_at_close,
            "failed": self.failed,
            "lost": lost,
            "ran_twice": twice,
            "ran_after_cancel": ran_cancelled,
            "early": self.early,
            "lateness_p50_ms": pick(0.5) * 1000,
            "lateness_p99_ms": pick(0.99) * 1000,
            "lateness_max_ms": (late[-1] if late else 0.0) * 1000,
            "prefill_s": prefill,
            "fed_s": self.seconds,
            "closed_at": closed_at,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }


def main(loop: str) -> None:
    seconds = float(os.environ.get("AIOSCHEDULER_SOAK_SECONDS", "150"))
    soak = Soak(loop, seconds)
    figures = anyio.run(soak.run, backend=loop)
    print(json.dumps(figures))


PATHS = [("asyncio", "native"), ("trio", "native")]


@pytest.mark.soak
@pytest.mark.timeout(900)
def test_soak(capsys: pytest.CaptureFixture[str]) -> None:
    """One loop after the other, each in a fresh interpreter.

    Not at once: two soaks side by side on a 2-core machine slow each other
    down enough to turn the lateness figures into noise.
    """
    results: dict[str, dict[str, Any]] = {}
    errors: list[str] = []
    for loop, engine in PATHS:
        env = child_env(engine)
        proc = subprocess.run(
            [sys.executable, "-W", "error", "-m", "tests.test_soak", loop],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            errors.append(f"{loop}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
            continue
        results[loop] = json.loads(proc.stdout.strip().splitlines()[-1])
    with capsys.disabled():  # the figures are the point: always show them
        for loop, figures in results.items():
            print(
                f"\nsoak on {loop}: {SCHEDULERS} TimedSchedulers, {PENDING:,} "
                f"pending, {RATE:,} jobs/s due for {figures['fed_s']:.0f} s"
            )
            for key, value in figures.items():
                if isinstance(value, float):
                    shown = f"{value:,.2f}"
                elif isinstance(value, int):
                    shown = f"{value:,}"
                else:
                    shown = str(value)
                print(f"  {key:>20}: {shown}")
    assert errors == []
    for loop, figures in results.items():
        for key in ("lost", "ran_twice", "ran_after_cancel", "early"):
            assert figures[key] == 0, (loop, key, figures)
        assert figures["failed"] > 0
        assert figures["cancelled"] > 0
        assert (
            figures["run"] + figures["cancelled"] + figures["cancelled_at_close"]
            == figures["scheduled"]
        )


if __name__ == "__main__":
    main(sys.argv[1])
