"""Seeing what a scheduler holds: statistics(), pending_tasks(), task states, repr."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest

from aioscheduler import (
    LifoQueuedScheduler,
    Manager,
    QueuedScheduler,
    SchedulerStatistics,
    TimedScheduler,
)


async def nap(seconds: float, *rest: object) -> float:
    await anyio.sleep(seconds)
    return seconds


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


async def test_timed_statistics() -> None:
    async with TimedScheduler(max_tasks=10) as scheduler:
        assert scheduler.statistics() == SchedulerStatistics(0, 0, 10)
        running = [scheduler.start_after(0, nap, 5) for _ in range(2)]
        pending = [scheduler.start_after(10, nap, 0) for _ in range(3)]
        pending[1].cancel()
        await anyio.sleep(1)
        stats = scheduler.statistics()
        assert stats == SchedulerStatistics(pending=2, running=2, max_tasks=10)
        assert all(task.running() and not task.pending() for task in running)
        assert pending[0].pending()
        assert not pending[0].running()
        assert not pending[1].pending()
        assert not pending[1].running()
        with pytest.raises(dataclasses.FrozenInstanceError):
            stats.pending = 0  # type: ignore[misc]
        await anyio.sleep(20)
        assert scheduler.statistics() == SchedulerStatistics(0, 0, 10)
        assert not running[0].running()


async def test_queued_statistics_and_manager_total() -> None:
    async with Manager(2, cls=QueuedScheduler) as manager:
        for _ in range(5):
            manager.start_soon(nap, 1)
        await anyio.sleep(0.5)
        assert manager.statistics() == SchedulerStatistics(
            pending=3, running=2, max_tasks=None
        )
        first = manager.schedulers[0].statistics()
        assert (first.pending, first.running) == (2, 1)  # got jobs 1, 3, 5


async def test_timed_pending_tasks_in_due_order() -> None:
    async with TimedScheduler() as scheduler:
        base = datetime.now(UTC) + timedelta(hours=1)
        late = scheduler.start_at(base + timedelta(seconds=2), nap, 0)
        tie_1 = scheduler.start_at(base, nap, 0)
        early = scheduler.start_after(1, nap, 0)
        tie_2 = scheduler.start_at(base, nap, 0)
        gone = scheduler.start_at(base, nap, 0)
        gone.cancel()
        assert scheduler.pending_tasks() == [early, tie_1, tie_2, late]
        for task in scheduler.pending_tasks():
            task.cancel()


@pytest.mark.parametrize("lifo", [False, True])
async def test_queued_pending_tasks_in_run_order(lifo: bool) -> None:
    cls = LifoQueuedScheduler if lifo else QueuedScheduler
    async with cls() as scheduler:
        running = scheduler.start_soon(nap, 1)
        await anyio.sleep(0.5)
        tasks = [scheduler.start_soon(nap, 0) for _ in range(4)]
        tasks[2].cancel()
        expected = [tasks[0], tasks[1], tasks[3]]
        if lifo:
            expected.reverse()
        assert scheduler.pending_tasks() == expected
        assert running not in scheduler.pending_tasks()


async def test_manager_pending_tasks() -> None:
    async with Manager(2) as manager:
        a = manager.start_after(3, nap, 0)  # scheduler 0
        b = manager.start_after(1, nap, 0)  # scheduler 1
        c = manager.start_after(2, nap, 0)  # scheduler 0
        assert manager.pending_tasks() == [b, c, a]
    async with Manager(2, cls=QueuedScheduler) as queued:
        for _ in range(2):
            queued.start_soon(nap, 1)
        await anyio.sleep(0.1)
        later = [queued.start_soon(nap, 0) for _ in range(3)]  # 0, 1, 0
        assert queued.pending_tasks() == [later[0], later[2], later[1]]


async def test_repr_is_short_and_readable() -> None:
    async with TimedScheduler() as scheduler:
        when = datetime(2100, 1, 2, 3, 4, 5, 678900, tzinfo=UTC)
        task = scheduler.start_at(when, nap, 1, "abc")
        assert repr(task) == "<Task nap(1, 'abc') pending due=2100-01-02T03:04:05.678Z>"
        long = scheduler.start_after(
            1, nap, 1, "x" * 1000, list(range(1000)), *"abcdef"
        )
        text = repr(long)
        assert len(text) < 200
        assert text.endswith("...) pending due=" + text.split("due=")[1])
        legacy = scheduler.schedule(nap(1), when)
        assert repr(legacy).startswith("<Task nap(...) pending due=2100-")
        for each in (task, long, legacy):
            each.cancel()
        assert "cancelled" in repr(task)


async def test_repr_never_raises() -> None:
    async with QueuedScheduler() as scheduler:
        task = scheduler.start_soon(nap, 0, BadRepr(), [BadRepr()])
        text = repr(task)
        assert text.startswith("<Task nap(0, <BadRepr instance at")
        assert text.endswith("seq=0>")
        assert str(task)
        await task.wait()
        assert "finished" in repr(task)


async def test_repr_survives_a_broken_task() -> None:
    async with QueuedScheduler() as scheduler:
        task: Any = scheduler.start_soon(nap, 0)
        args, task._args = task._args, 5  # not a tuple: describing it fails
        assert repr(task).startswith("<Task pending at 0x")
        task._args = args
