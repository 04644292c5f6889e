"""Runs that wait for other runs: buffered overlap policies and catch-up
chains with runs longer than the period, and Every's jitter on elapsed time.

Every path, virtual time.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

from aioscheduler import Every, TimedScheduler


@pytest.mark.parametrize(
    ("overlap", "expected_starts"),
    [
        # 15 s runs every 10 s: the run due at 20 waits until 25, then the
        # one due at 40 (30 is skipped: one waits already) starts at 40.
        ("buffer_one", [10, 25, 40]),
        ("buffer_all", [10, 25, 40]),
        # cancel_previous: each fire cancels the running one and starts
        # right after it has ended.
        ("cancel_previous", [10, 20, 30]),
    ],
)
async def test_buffered_runs_start_when_the_running_one_ends(
    overlap: str, expected_starts: list[float]
) -> None:
    starts: list[float] = []

    async with TimedScheduler() as scheduler:
        begin = anyio.current_time()

        async def long_run() -> None:
            starts.append(anyio.current_time() - begin)
            await anyio.sleep(15)

        schedule = scheduler.add_schedule(
            Every(10),
            long_run,
            overlap=overlap,  # type: ignore[arg-type]
            max_runs=3,
        )
        with anyio.fail_after(3600):
            await scheduler.join()  # hung before: the buffered run never started
    assert starts == pytest.approx(expected_starts)
    assert schedule.finished
    stats = scheduler.statistics()
    assert (stats.pending, stats.running) == (0, 0)


async def test_catch_up_chain_runs_one_after_another() -> None:
    starts: list[float] = []
    shift = [0.0]

    async with TimedScheduler(
        wall_clock=lambda: time.time() + shift[0], wall_poll=1
    ) as scheduler:
        begin = anyio.current_time()

        async def long_run() -> None:
            starts.append(anyio.current_time() - begin)
            await anyio.sleep(5)

        from aioscheduler import Cron

        schedule = scheduler.add_schedule(
            Cron("* * * * *"), long_run, coalesce="all", max_catchup=3, max_runs=3
        )
        await anyio.sleep(1)
        shift[0] += 600  # ten fire times pass at once
        with anyio.fail_after(3600):
            await scheduler.join()
    # Three catch-up runs, each starting when the previous one ended.
    assert len(starts) == 3
    assert starts[1] - starts[0] == pytest.approx(5)
    assert starts[2] - starts[1] == pytest.approx(5)
    assert schedule.missed == 7


async def test_every_with_jitter_waits_on_elapsed_time() -> None:
    """A jittered Every run must not wait for the wall clock: set back an
    hour during its jitter, it still starts at its elapsed-time moment."""
    shift = [0.0]
    starts: list[float] = []
    async with TimedScheduler(wall_clock=lambda: time.time() + shift[0]) as scheduler:
        begin = anyio.current_time()

        async def job() -> None:
            starts.append(anyio.current_time() - begin)

        schedule = scheduler.add_schedule(
            Every(60), job, id="jittered", jitter=30, max_runs=1
        )
        await anyio.sleep(60.0001)  # the fire time has come; the jitter runs
        shift[0] -= 3600
        with anyio.fail_after(120):
            await scheduler.join()
    task: Any = schedule.last_task
    assert len(starts) == 1
    assert 60 <= starts[0] < 90
    assert task.when is not None
    assert type(task.when).__name__ == "datetime"  # a plain datetime
