"""Wall-clock time: ``start_at`` jobs go by the wall clock, re-read at every
wake-up, so a step of the clock or a suspend of the machine is noticed within
``wall_poll`` seconds; ``start_after`` stays on elapsed time.

Every test runs on every path in virtual time; the wall clock is a function
the test steps (``wall_clock=lambda: time.time() + shift``), which is how a
suspend looks too: the monotonic clock stops, the wall clock does not.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest

from aioscheduler import Manager, TimedScheduler


class SteppedClock:
    """A wall clock the test can step: ``time.time()`` plus a shift."""

    def __init__(self) -> None:
        self.shift = 0.0

    def __call__(self) -> float:
        return time.time() + self.shift


async def record(log: list[tuple[str, float, datetime]], name: str, s: Any) -> None:
    log.append((name, anyio.current_time(), s.now()))


async def test_now_moves_with_virtual_time() -> None:
    async with TimedScheduler() as scheduler:
        start = scheduler.now()
        assert start.tzinfo is UTC
        assert abs(start - datetime.now(UTC)) < timedelta(seconds=5)
        await anyio.sleep(86400)
        elapsed = scheduler.now() - start
        assert timedelta(days=1) <= elapsed < timedelta(days=1, seconds=1)


async def test_forward_step_runs_passed_jobs_within_wall_poll() -> None:
    clock = SteppedClock()
    log: list[tuple[str, float, datetime]] = []
    async with TimedScheduler(wall_clock=clock, wall_poll=30) as scheduler:
        begin = anyio.current_time()
        when = scheduler.now() + timedelta(hours=1)
        task = scheduler.start_at(when, record, log, "hour", scheduler)
        await anyio.sleep(10)
        clock.shift += 7200  # NTP step or a two-hour suspend
        await task.wait()
    (_, at, wall) = log[0]
    assert wall >= when  # never before its wall time
    # Noticed at the next wake-up: at most wall_poll after the step.
    assert 10 <= at - begin <= 10 + 30


async def test_suspend_over_a_job_runs_it_at_once_not_late_by_the_suspend() -> None:
    clock = SteppedClock()
    log: list[tuple[str, float, datetime]] = []
    async with TimedScheduler(wall_clock=clock, wall_poll=5) as scheduler:
        begin = anyio.current_time()
        when = scheduler.now() + timedelta(minutes=10)
        scheduler.start_at(when, record, log, "at", scheduler)
        elapsed = scheduler.start_after(600, record, log, "after", scheduler)
        await anyio.sleep(60)
        clock.shift += 3600  # slept an hour: wall time moved, loop time not
        await elapsed.wait()
    by_name = {name: at - begin for name, at, _ in log}
    assert 60 <= by_name["at"] <= 65  # within wall_poll of the wake
    assert by_name["after"] == pytest.approx(600)  # elapsed time: unchanged


async def test_backward_step_never_runs_early() -> None:
    clock = SteppedClock()
    log: list[tuple[str, float, datetime]] = []
    async with TimedScheduler(wall_clock=clock, wall_poll=30) as scheduler:
        begin = anyio.current_time()
        when = scheduler.now() + timedelta(seconds=60)
        task = scheduler.start_at(when, record, log, "minute", scheduler)
        after = scheduler.start_after(60, record, log, "after", scheduler)
        await anyio.sleep(10)
        clock.shift -= 3600  # the clock is set back an hour
        await task.wait()
        await after.wait()
    by_name = {name: (at - begin, wall) for name, at, wall in log}
    at, wall = by_name["minute"]
    assert wall >= when
    # It waits for the wall clock to reach it again: an hour later.
    assert at == pytest.approx(3660, abs=1)
    assert by_name["after"][0] == pytest.approx(60)  # cadence kept


async def test_sleep_is_capped_at_wall_poll_only_while_wall_jobs_wait() -> None:
    clock = SteppedClock()
    async with TimedScheduler(wall_clock=clock, wall_poll=7) as scheduler:
        far = scheduler.start_at(scheduler.now() + timedelta(days=1), anyio.sleep, 0)
        begin = anyio.current_time()
        await anyio.sleep(20)
        clock.shift += 86400 - 20 + 1  # now a second past the job's time
        await far.wait()
        # Noticed within 7 s of loop time after the step.
        assert anyio.current_time() - begin <= 20 + 7


async def test_a_million_pending_wall_jobs_untouched_by_a_jump() -> None:
    """A jump moves only what is due: the far-future heap is not rebuilt."""
    clock = SteppedClock()
    async with TimedScheduler(wall_clock=clock) as scheduler:
        base = scheduler.now() + timedelta(days=365)
        second = timedelta(seconds=1)
        tasks = [
            scheduler.start_at(base + n * second, anyio.sleep, 0)
            for n in range(1_000_000)
        ]
        soon = scheduler.start_at(scheduler.now() + timedelta(hours=1), anyio.sleep, 0)
        heap = scheduler._pending._wall_entries
        before = list(heap)
        await anyio.sleep(1)
        clock.shift += 7200
        await soon.wait()
        assert soon.done()
        # Only the due job left the heap; the others stayed where they were
        # (no rebuild: the heap's array is the same list, one entry shorter).
        assert heap is scheduler._pending._wall_entries
        assert len(heap) == len(before) - 1
        assert not any(task.done() for task in tasks)
        await scheduler.aclose()


async def test_ties_between_equal_datetimes_stay_in_scheduling_order(
    backend_name: str,
) -> None:
    order: list[int] = []

    async def job(n: int) -> None:
        order.append(n)

    async with TimedScheduler() as scheduler:
        when = scheduler.now() + timedelta(seconds=30)
        tasks = [scheduler.start_at(when, job, n) for n in range(20)]
        assert scheduler.pending_tasks() == tasks  # dispatched in this order
    assert sorted(order) == list(range(20))
    if backend_name == "asyncio":
        # asyncio starts tasks in creation order (Trio in a random one).
        assert order == list(range(20))


async def test_mixed_clocks_start_in_deadline_order() -> None:
    order: list[str] = []

    async def job(name: str) -> None:
        order.append(name)

    async with TimedScheduler() as scheduler:
        now = scheduler.now()
        scheduler.start_at(now + timedelta(seconds=30), job, "at-30")
        scheduler.start_after(10, job, "after-10")
        scheduler.start_at(now + timedelta(seconds=20), job, "at-20")
        scheduler.start_after(40, job, "after-40")
    assert order == ["after-10", "at-20", "at-30", "after-40"]


async def test_manager_now() -> None:
    async with Manager(3) as manager:
        assert abs(manager.now() - manager.schedulers[1].now()) < timedelta(seconds=1)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"wall_poll": 0}, ValueError),
        ({"wall_poll": -1}, ValueError),
        ({"wall_poll": float("inf")}, ValueError),
        ({"wall_poll": "30"}, TypeError),
        ({"wall_poll": True}, TypeError),
        ({"wall_clock": 5}, TypeError),
    ],
)
def test_bad_options(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        TimedScheduler(**kwargs)
