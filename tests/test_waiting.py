"""Back-pressure: ``astart_soon`` & co. wait for room under ``max_tasks``."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest

from aioscheduler import (
    LifoQueuedScheduler,
    Manager,
    QueuedScheduler,
    SchedulerClosed,
    Task,
    TimedScheduler,
)


async def nap(seconds: float) -> float:
    await anyio.sleep(seconds)
    return seconds


def at(t: float) -> Any:
    return pytest.approx(t, abs=1e-6)


async def astart(front: Any, seconds: float) -> Task[float]:
    """The awaitable call that fits *front*: run ``nap(seconds)`` now."""
    if isinstance(front, TimedScheduler) or (
        isinstance(front, Manager) and isinstance(front.schedulers[0], TimedScheduler)
    ):
        task: Task[float] = await front.astart_after(0, nap, seconds)
    else:
        task = await front.astart_soon(nap, seconds)
    return task


def start(front: Any, seconds: float) -> Task[float]:
    if isinstance(front, TimedScheduler) or (
        isinstance(front, Manager) and isinstance(front.schedulers[0], TimedScheduler)
    ):
        task: Task[float] = front.start_after(0, nap, seconds)
    else:
        task = front.start_soon(nap, seconds)
    return task


FRONTS = [
    pytest.param(lambda: TimedScheduler(max_tasks=1), id="timed"),
    pytest.param(lambda: QueuedScheduler(max_tasks=1), id="queued"),
    pytest.param(lambda: LifoQueuedScheduler(max_tasks=1), id="lifo"),
    pytest.param(lambda: Manager(2, 1, cls=QueuedScheduler), id="manager-queued"),
    pytest.param(lambda: Manager(3, 1), id="manager-timed"),
]


@pytest.fixture(params=FRONTS)
def front(request: pytest.FixtureRequest) -> Any:
    return request.param()


async def test_waits_then_proceeds_when_a_job_ends(front: Any) -> None:
    async with front:
        running = start(front, 2)
        begin = anyio.current_time()
        task = await astart(front, 1)
        assert anyio.current_time() == at(begin + 2)
        assert running.result() == 2
        assert await task.wait() == 1


async def test_fifo_among_waiters(front: Any) -> None:
    admitted: list[str] = []

    async def waiter(name: str) -> None:
        await astart(front, 1)
        admitted.append(name)

    async with front, anyio.create_task_group() as group:
        start(front, 1)
        for name in "abc":
            group.start_soon(waiter, name)
            await anyio.sleep(0.01)  # arrive in this order
    assert admitted == ["a", "b", "c"]


async def test_cancelled_waiter_loses_no_wake_up(front: Any) -> None:
    admitted: list[str] = []
    b_admitted = anyio.Event()

    async def waiter(name: str, scope: anyio.CancelScope) -> None:
        with scope:
            await astart(front, 1)
            admitted.append(name)
            b_admitted.set()

    async with front, anyio.create_task_group() as group:
        start(front, 1)
        first, second = anyio.CancelScope(), anyio.CancelScope()
        group.start_soon(waiter, "a", first)
        await anyio.sleep(0.01)
        group.start_soon(waiter, "b", second)
        await anyio.sleep(0.01)
        first.cancel()  # while waiting
        with anyio.fail_after(5):
            await b_admitted.wait()
        assert admitted == ["b"]


@pytest.mark.parametrize(
    ("make", "pending_at"),
    [
        (lambda: TimedScheduler(max_tasks=1), 0),
        (lambda: QueuedScheduler(max_tasks=2), 1),
        (lambda: LifoQueuedScheduler(max_tasks=2), 1),
        (lambda: Manager(3, 1), 0),
    ],
)
async def test_woken_then_cancelled_passes_the_wake_up_on(
    make: Any, pending_at: int
) -> None:
    admitted: dict[str, float] = {}
    b_admitted = anyio.Event()

    async def waiter(name: str, scope: anyio.CancelScope) -> None:
        with scope:
            await astart(front, 0)
            admitted[name] = anyio.current_time()
            b_admitted.set()

    front = make()
    async with front, anyio.create_task_group() as group:
        if isinstance(front, QueuedScheduler):
            holders = [front.start_soon(nap, 100) for _ in range(2)]
        else:
            holders = [front.start_after(100, nap, 0)]
        await anyio.sleep(0.01)
        first, second = anyio.CancelScope(), anyio.CancelScope()
        group.start_soon(waiter, "a", first)
        await anyio.sleep(0.01)
        group.start_soon(waiter, "b", second)
        await anyio.sleep(0.01)
        now = anyio.current_time()
        # In one step: "a" is cancelled, then a pending job's cancel frees a
        # slot and wakes "a", which must hand the wake-up on to "b".
        first.cancel()
        assert holders[pending_at].cancel()
        with anyio.fail_after(1):
            await b_admitted.wait()
        for holder in holders:
            holder.cancel()
    assert admitted == {"b": at(now)}


async def test_closing_wakes_waiters_with_scheduler_closed(front: Any) -> None:
    refused: list[BaseException] = []

    async def waiter() -> None:
        try:
            await astart(front, 1)
        except SchedulerClosed as exc:
            refused.append(exc)

    async with anyio.create_task_group() as group:
        await group.start(front.run)
        start(front, 100)
        group.start_soon(waiter)
        group.start_soon(waiter)
        await anyio.sleep(1)
        await front.aclose()
    assert len(refused) == 2
    with pytest.raises(SchedulerClosed):
        await astart(front, 1)


@pytest.mark.parametrize(
    "make",
    [TimedScheduler, QueuedScheduler, lambda: Manager(2, cls=QueuedScheduler)],
)
async def test_never_waits_without_max_tasks(make: Any) -> None:
    async with make() as front:
        begin = anyio.current_time()
        tasks = [await astart(front, 1) for _ in range(100)]
        assert anyio.current_time() == at(begin)
    assert all(task.result() == 1 for task in tasks)


async def test_manager_waits_against_its_total() -> None:
    async with Manager(3, 2, cls=QueuedScheduler) as manager:
        manager.start_soon(nap, 1)
        manager.start_soon(nap, 3)
        begin = anyio.current_time()
        task = await manager.astart_soon(nap, 0)
        assert anyio.current_time() == at(begin + 1)
        await task.wait()


async def test_cancelled_aschedule_closes_the_coroutine() -> None:
    async with QueuedScheduler(max_tasks=1) as scheduler:
        scheduler.start_soon(nap, 1)
        coro = nap(1)
        with anyio.move_on_after(0.5):
            await scheduler.aschedule(coro)
        assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED


async def test_due_time_is_fixed_at_the_call() -> None:
    ran: list[float] = []

    async def note() -> None:
        ran.append(anyio.current_time())

    async with TimedScheduler(max_tasks=1) as scheduler:
        scheduler.start_after(0, nap, 5)
        begin = anyio.current_time()
        with pytest.raises(ValueError, match="future"):
            await scheduler.astart_at(datetime.now(UTC) - timedelta(1), note)
        await scheduler.astart_after(1, note)  # admitted at +5: runs at once
        await scheduler.aschedule(note(), datetime.now(UTC) + timedelta(days=1))
    assert ran[0] == at(begin + 5)


async def test_wrong_kind_on_manager() -> None:
    manager: Any = Manager(1)
    with pytest.raises(TypeError, match="astart_soon needs a Manager of Queued"):
        await manager.astart_soon(nap, 1)
    coro = nap(1)
    with pytest.raises(TypeError, match=r"takes \(coro, when\)"):
        await manager.aschedule(coro)
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED
    await manager.aclose()
