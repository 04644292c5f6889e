"""``aclose(drain=True, timeout=...)``: running jobs finish, pending ones end."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from aioscheduler import (
    LifoQueuedScheduler,
    Manager,
    QueuedScheduler,
    SchedulerClosed,
    TimedScheduler,
)


async def job(value: int, seconds: float, ended: dict[int, float]) -> int:
    """Sleep *seconds*, then return *value*; note when it ended, however."""
    try:
        await anyio.sleep(seconds)
    finally:
        ended[value] = anyio.current_time()
    return value


@asynccontextmanager
async def serving(front: Any) -> AsyncIterator[Any]:
    """Serve *front* with run() in a task group, so leaving does not join."""
    async with anyio.create_task_group() as group:
        await group.start(front.run)
        yield front
        group.cancel_scope.cancel()


def at(t: float) -> Any:
    return pytest.approx(t, abs=1e-6)


async def test_running_jobs_finish_pending_ones_are_cancelled() -> None:
    ended: dict[int, float] = {}
    async with serving(TimedScheduler()) as scheduler:
        first = scheduler.start_after(0, job, 1, 2.0, ended)
        second = scheduler.start_after(0, job, 2, 3.0, ended)
        pending = scheduler.start_after(10, job, 3, 0.0, ended)
        await anyio.sleep(1)
        start = anyio.current_time()
        await scheduler.aclose(drain=True)
        assert anyio.current_time() == at(start + 2)  # when the last one ended
        assert not scheduler.is_started
    assert first.result() == 1
    assert second.result() == 2
    assert pending.cancelled()
    assert 3 not in ended


async def test_no_new_jobs_while_draining() -> None:
    refused: list[BaseException] = []
    ended: dict[int, float] = {}

    async def schedules_later(scheduler: TimedScheduler) -> None:
        await anyio.sleep(1)
        try:
            scheduler.start_after(0, job, 9, 0.0, ended)
        except SchedulerClosed as exc:
            refused.append(exc)

    async with serving(TimedScheduler()) as scheduler:
        task = scheduler.start_after(0, schedules_later, scheduler)
        await anyio.sleep(0.5)
        await scheduler.aclose(drain=True)
    assert task.result() is None
    assert len(refused) == 1
    assert ended == {}


async def test_timeout_cancels_stragglers_at_that_time() -> None:
    ended: dict[int, float] = {}
    async with serving(TimedScheduler()) as scheduler:
        quick = scheduler.start_after(0, job, 1, 1.0, ended)
        slow = scheduler.start_after(0, job, 2, 100.0, ended)
        await anyio.sleep(0.5)
        start = anyio.current_time()
        await scheduler.aclose(drain=True, timeout=3)
        assert anyio.current_time() == at(start + 3)
    assert quick.result() == 1
    assert slow.cancelled()
    assert ended[2] == at(start + 3)


async def test_caller_cancelled_mid_drain_cancels_the_jobs() -> None:
    ended: dict[int, float] = {}
    async with serving(TimedScheduler()) as scheduler:
        slow = scheduler.start_after(0, job, 1, 100.0, ended)
        await anyio.sleep(0.5)
        start = anyio.current_time()
        with anyio.move_on_after(2) as scope:
            await scheduler.aclose(drain=True)
        assert scope.cancelled_caught
        await scheduler.aclose()
    assert slow.cancelled()
    assert ended[1] == at(start + 2)


@pytest.mark.parametrize("cls", [QueuedScheduler, LifoQueuedScheduler])
async def test_queued_running_job_finishes_the_queue_is_cancelled(
    cls: type[QueuedScheduler],
) -> None:
    ended: dict[int, float] = {}
    async with serving(cls()) as scheduler:
        running = scheduler.start_soon(job, 1, 2.0, ended)
        await anyio.sleep(0.5)
        queued = [scheduler.start_soon(job, n, 1.0, ended) for n in (2, 3)]
        await scheduler.aclose(drain=True)
    assert running.result() == 1
    assert all(task.cancelled() for task in queued)
    assert list(ended) == [1]


async def test_manager_drains_every_scheduler_under_one_deadline() -> None:
    ended: dict[int, float] = {}
    async with serving(Manager(2)) as manager:
        a = manager.start_after(0, job, 1, 2.0, ended)  # scheduler 0
        b = manager.start_after(0, job, 2, 50.0, ended)  # scheduler 1
        pending = manager.start_after(10, job, 3, 0.0, ended)
        await anyio.sleep(0.5)
        start = anyio.current_time()
        await manager.aclose(drain=True, timeout=5)
        assert anyio.current_time() == at(start + 5)
        assert not manager.is_started
        with pytest.raises(SchedulerClosed, match=r"^Manager is closed; create"):
            manager.start_after(1, job, 4, 0.0, ended)
    assert a.result() == 1
    assert b.cancelled()
    assert ended[2] == at(start + 5)
    assert pending.cancelled()


async def test_never_started_scheduler_drains_at_once() -> None:
    scheduler = QueuedScheduler()
    task = scheduler.start_soon(job, 1, 1.0, {})
    await scheduler.aclose(drain=True)
    assert task.cancelled()
    assert not scheduler.is_started


@pytest.mark.parametrize(
    ("drain", "bad", "error"),
    [
        (True, "3", TypeError),
        (True, True, TypeError),
        (True, -1, ValueError),
        (True, math.nan, ValueError),
        (False, 3, TypeError),
    ],
)
async def test_bad_timeout(drain: bool, bad: Any, error: type[Exception]) -> None:
    async with serving(TimedScheduler()) as scheduler:
        task = scheduler.start_after(0, job, 1, 1.0, {})
        with pytest.raises(error, match="timeout"):
            await scheduler.aclose(drain=drain, timeout=bad)
        assert scheduler.is_started  # nothing happened
        assert not task.done()
        manager = Manager(1)
        with pytest.raises(error, match="timeout"):
            await manager.aclose(drain=drain, timeout=bad)
        await manager.aclose()
