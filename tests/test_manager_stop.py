"""A Manager stops as a whole when one of its schedulers stops (issue 9).

Otherwise the stopped scheduler, with load 0, would get every later job and
refuse it while the others still served. Also the Manager's argument errors.
"""

from __future__ import annotations

import inspect
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from aioscheduler import (
    LifoQueuedScheduler,
    Manager,
    QueuedScheduler,
    SchedulerClosed,
    TimedScheduler,
)


async def boom() -> None:
    raise ValueError("boom")


async def nap() -> int:
    await anyio.sleep(1)
    return 1


class TestOneSchedulerStops:
    async def test_a_closed_scheduler_closes_the_manager(self) -> None:
        async with Manager(3, cls=QueuedScheduler) as manager:
            running = manager.start_soon(nap)  # on scheduler 0
            await manager.schedulers[1].aclose()
            assert not manager.is_started
            with pytest.raises(SchedulerClosed, match=r"scheduler 1 .*was closed"):
                manager.start_soon(nap)
            # The others were closed too: their jobs were cancelled.
            assert running.cancelled() or not running.done()
        assert running.cancelled()
        assert not any(s.is_started for s in manager.schedulers)

    async def test_a_failure_closes_the_manager_and_says_why(self) -> None:
        manager = Manager(3, cls=QueuedScheduler, on_error="raise")
        tasks = []
        try:
            async with anyio.create_task_group() as group:
                await group.start(manager.run)
                tasks.append(manager.start_soon(nap))
                manager.start_soon(boom)
                await anyio.sleep(5)
        except ExceptionGroup:
            pass
        else:  # pragma: no cover
            pytest.fail("the failure did not propagate")
        (other,) = tasks
        assert not manager.is_started
        assert other.cancelled()
        with pytest.raises(SchedulerClosed, match=r"scheduler 1 .*boom") as info:
            manager.start_soon(nap)
        assert isinstance(info.value.__cause__, ValueError)

    async def test_own_close_keeps_the_plain_message(self) -> None:
        async with Manager(2, cls=TimedScheduler) as manager:
            pass
        with pytest.raises(SchedulerClosed, match=r"^Manager is closed; create"):
            manager.start_after(1, nap)

    async def test_facade_failure_stops_the_manager(self, backend_name: str) -> None:
        if backend_name != "asyncio":
            pytest.skip("the 1.x facade is asyncio only")
        manager = Manager(3, cls=QueuedScheduler, on_error="raise")
        manager.start()
        first = manager.start_soon(nap)
        manager.start_soon(boom)  # scheduler 1
        await anyio.sleep(0.1)
        assert not manager.is_started
        for _ in range(5):
            await anyio.lowlevel.checkpoint()
        assert not any(s.is_started for s in manager.schedulers)
        assert first.cancelled()
        # Never routed to the stopped scheduler, whatever the loads are.
        for _ in range(3):
            with pytest.raises(SchedulerClosed, match=r"scheduler 1 .*boom"):
                manager.start_soon(nap)
        # The failed facade tasks hold their ExceptionGroup: retrieve it, so
        # asyncio does not log "Task exception was never retrieved".
        import asyncio

        for task in asyncio.all_tasks():
            if task.done() and not task.cancelled():
                task.exception()


class TestArgumentErrors:
    @pytest.mark.parametrize(
        ("cls", "args"),
        [(TimedScheduler, ()), (TimedScheduler, (1, 2)), (QueuedScheduler, (1,))],
    )
    async def test_schedule_wrong_arity_closes_the_coroutine(
        self, cls: type[Any], args: tuple[Any, ...]
    ) -> None:
        manager: Manager[Any] = Manager(2, cls=cls)
        coro = nap()
        assert inspect.iscoroutine(coro)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(TypeError, match=r"schedule\(\) on a Manager of"):
                manager.schedule(coro, *args)
        assert (
            inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED
        )  # closed: no "never awaited" warning
        await manager.aclose()

    @pytest.mark.parametrize("cls", [QueuedScheduler, LifoQueuedScheduler])
    async def test_timed_calls_on_queued(self, cls: type[QueuedScheduler]) -> None:
        manager: Any = Manager(2, cls=cls)
        when = datetime.now(UTC) + timedelta(seconds=5)
        with pytest.raises(
            TypeError,
            match=rf"start_at needs a Manager of TimedScheduler; this one "
            rf"manages {cls.__name__}",
        ):
            manager.start_at(when, nap)
        with pytest.raises(TypeError, match=r"start_after needs a Manager of Timed"):
            manager.start_after(1, nap)
        await manager.aclose()

    async def test_start_soon_on_timed(self) -> None:
        manager: Any = Manager(2)
        with pytest.raises(
            TypeError,
            match=r"start_soon needs a Manager of QueuedScheduler; this one "
            r"manages TimedScheduler",
        ):
            manager.start_soon(nap)
        await manager.aclose()

    def test_class_as_max_tasks(self) -> None:
        with pytest.raises(TypeError, match=r"cls=QueuedScheduler"):
            Manager(4, QueuedScheduler)  # type: ignore[call-overload]
