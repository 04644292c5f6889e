"""Lifecycle: ``async with``, ``run()``, ``aclose()``, ``join()``, serving once.

Every test runs against each scheduler kind. A *blocking* job is one that
waits until cancelled; a *pending* job is one that cannot have started yet
(due in an hour for timed schedulers, queued behind a blocking job for
queued ones).
"""

from __future__ import annotations

import gc
import inspect
import warnings
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from aioscheduler import (
    LifoQueuedScheduler,
    QueuedScheduler,
    SchedulerClosed,
    Task,
    TaskCancelled,
    TimedScheduler,
)

Scheduler = TimedScheduler | QueuedScheduler
AsyncFn = Callable[..., Coroutine[Any, Any, Any]]


def leaves(exc: BaseException) -> list[BaseException]:
    """Return the exceptions in *exc*, looking through (nested) groups."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


@pytest.fixture(
    params=[TimedScheduler, QueuedScheduler, LifoQueuedScheduler],
    ids=["timed", "queued", "lifo"],
)
def kind(request: pytest.FixtureRequest) -> type[Scheduler]:
    cls: type[Scheduler] = request.param
    return cls


def add(scheduler: Scheduler, async_fn: AsyncFn, *args: Any) -> Task[Any]:
    """Schedule a job to run as soon as possible (callable form)."""
    if isinstance(scheduler, TimedScheduler):
        return scheduler.start_after(0, async_fn, *args)
    return scheduler.start_soon(async_fn, *args)


def add_later(scheduler: Scheduler, coro: Coroutine[Any, Any, Any]) -> Task[Any]:
    """Schedule a coroutine object (1.x form); timed ones an hour from now."""
    if isinstance(scheduler, TimedScheduler):
        return scheduler.schedule(coro, datetime.now(UTC) + timedelta(hours=1))
    return scheduler.schedule(coro)


class Probe:
    """Jobs that report what happened to them."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.started = anyio.Event()

    async def block(self, name: str = "block") -> None:
        """Run until cancelled; record start and cleanup."""
        self.log.append(f"{name} start")
        self.started.set()
        try:
            await anyio.sleep_forever()
        finally:
            self.log.append(f"{name} cleanup")

    async def note(self, name: str) -> str:
        self.log.append(name)
        await anyio.lowlevel.checkpoint()
        return name


async def setup_running_and_pending(
    scheduler: Scheduler, probe: Probe
) -> tuple[Task[Any], Task[Any], Coroutine[Any, Any, Any]]:
    """Start a blocking job, queue a pending coroutine job, wait till settled."""
    running = add(scheduler, probe.block)
    await probe.started.wait()
    coro = probe.note("pending ran")
    pending = add_later(scheduler, coro)
    await anyio.wait_all_tasks_blocked()
    return running, pending, coro


def assert_cancelled_before_running(
    probe: Probe, pending: Task[Any], coro: Coroutine[Any, Any, Any]
) -> None:
    assert pending.cancelled()
    assert "pending ran" not in probe.log
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED


def assert_closed(scheduler: Scheduler) -> None:
    """Scheduling raises SchedulerClosed, by every method; nothing leaks."""
    probe = Probe()
    assert not scheduler.is_started
    coro = probe.note("late")
    with pytest.raises(SchedulerClosed):
        add_later(scheduler, coro)
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED
    with pytest.raises(SchedulerClosed):
        add(scheduler, probe.note, "late")
    if isinstance(scheduler, TimedScheduler):
        with pytest.raises(SchedulerClosed):
            scheduler.start_at(
                datetime.now(UTC) + timedelta(seconds=5), probe.note, "late"
            )
    assert probe.log == []


async def assert_cannot_reenter(scheduler: Scheduler) -> None:
    with pytest.raises(RuntimeError):
        async with scheduler:
            pytest.fail("entered a scheduler a second time")  # pragma: no cover
    with pytest.raises(RuntimeError):
        await scheduler.run()
    with pytest.raises(RuntimeError):
        scheduler.start()
    assert not scheduler.is_started


class TestAsyncWith:
    async def test_normal_exit_waits_for_future_jobs(self) -> None:
        probe = Probe()
        begin = anyio.current_time()
        async with TimedScheduler() as scheduler:
            soon = scheduler.start_after(1, probe.note, "soon")
            late = scheduler.start_after(timedelta(hours=2), probe.note, "late")
        assert anyio.current_time() - begin >= 7200
        assert probe.log == ["soon", "late"]
        assert soon.result() == "soon"
        assert late.result() == "late"

    async def test_normal_exit_waits_for_jobs_scheduled_by_jobs(
        self, kind: type[Scheduler]
    ) -> None:
        probe = Probe()
        tasks: list[Task[Any]] = []
        begin = anyio.current_time()
        async with kind() as scheduler:

            async def parent(depth: int) -> None:
                probe.log.append(f"parent {depth}")
                await anyio.sleep(100)
                if depth < 3:
                    if isinstance(scheduler, TimedScheduler):
                        tasks.append(scheduler.start_after(100, parent, depth + 1))
                    else:
                        tasks.append(scheduler.start_soon(parent, depth + 1))

            tasks.append(add(scheduler, parent, 0))
        assert probe.log == [f"parent {depth}" for depth in range(4)]
        assert len(tasks) == 4
        assert all(task.done() and not task.cancelled() for task in tasks)
        assert anyio.current_time() - begin >= 400
        assert not scheduler.is_started

    async def test_body_exception_cancels_pending_and_running_then_propagates(
        self, kind: type[Scheduler]
    ) -> None:
        probe = Probe()
        error = ValueError("from the body")
        scheduler = kind()
        started: list[Any] = []

        async def body() -> None:
            async with scheduler:
                started.extend(await setup_running_and_pending(scheduler, probe))
                raise error

        begin = anyio.current_time()
        with pytest.raises(ValueError, match="from the body") as excinfo:
            await body()
        # The exception itself, as raised: not wrapped in a group.
        assert excinfo.value is error
        running, pending, coro = started
        assert running.cancelled()
        assert probe.log == ["block start", "block cleanup"]
        assert_cancelled_before_running(probe, pending, coro)
        # Nothing waited for the pending job's time.
        assert anyio.current_time() - begin < 1
        assert_closed(scheduler)

    async def test_cancel_scope_cancelled_from_the_body(
        self, kind: type[Scheduler]
    ) -> None:
        probe = Probe()
        with anyio.CancelScope() as scope:
            async with kind() as scheduler:
                running, pending, coro = await setup_running_and_pending(
                    scheduler, probe
                )
                scope.cancel()
                await anyio.lowlevel.checkpoint()
                pytest.fail("not cancelled")  # pragma: no cover
        assert scope.cancelled_caught
        assert running.cancelled()
        assert probe.log == ["block start", "block cleanup"]
        assert_cancelled_before_running(probe, pending, coro)
        assert_closed(scheduler)

    async def test_cancel_scope_cancelled_while_exiting(
        self, kind: type[Scheduler]
    ) -> None:
        probe = Probe()
        async with anyio.create_task_group() as outer:
            with anyio.CancelScope() as scope:
                async with kind() as scheduler:
                    running, pending, coro = await setup_running_and_pending(
                        scheduler, probe
                    )
                    begin = anyio.current_time()

                    async def stop_later() -> None:
                        await anyio.sleep(50)
                        scope.cancel()

                    outer.start_soon(stop_later)
                # Left the body normally: __aexit__ waits for the jobs until
                # the scope is cancelled from outside.
        assert scope.cancelled_caught
        assert anyio.current_time() - begin == pytest.approx(50)
        assert running.cancelled()
        assert probe.log == ["block start", "block cleanup"]
        assert_cancelled_before_running(probe, pending, coro)
        assert_closed(scheduler)

    async def test_move_on_after_while_waiting_for_jobs(
        self, kind: type[Scheduler]
    ) -> None:
        probe = Probe()
        begin = anyio.current_time()
        with anyio.move_on_after(30) as scope:
            async with kind() as scheduler:
                running, pending, coro = await setup_running_and_pending(
                    scheduler, probe
                )
        assert scope.cancelled_caught
        assert anyio.current_time() - begin == pytest.approx(30)
        assert running.cancelled()
        assert probe.log == ["block start", "block cleanup"]
        assert_cancelled_before_running(probe, pending, coro)
        assert_closed(scheduler)

    async def test_jobs_running_when_block_ends_are_awaited(
        self, kind: type[Scheduler]
    ) -> None:
        probe = Probe()

        async def slow() -> str:
            await anyio.sleep(60)
            probe.log.append("slow done")
            return "slow"

        async with kind() as scheduler:
            task = add(scheduler, slow)
            await anyio.wait_all_tasks_blocked()
        assert task.result() == "slow"
        assert probe.log == ["slow done"]

    async def test_is_started_transitions(self, kind: type[Scheduler]) -> None:
        scheduler = kind()
        assert not scheduler.is_started
        add(scheduler, Probe().note, "early")
        assert not scheduler.is_started
        async with scheduler:
            assert scheduler.is_started
        assert not scheduler.is_started


class TestRun:
    async def test_task_group_start_reports_started_and_serves(
        self, kind: type[Scheduler]
    ) -> None:
        probe = Probe()
        scheduler = kind()
        async with anyio.create_task_group() as group:
            await group.start(scheduler.run)
            assert scheduler.is_started
            first = add(scheduler, probe.note, "first")
            assert await first.wait() == "first"
            running, pending, coro = await setup_running_and_pending(scheduler, probe)
            group.cancel_scope.cancel()
        assert running.cancelled()
        assert probe.log == ["first", "block start", "block cleanup"]
        assert_cancelled_before_running(probe, pending, coro)
        assert_closed(scheduler)
        await assert_cannot_reenter(scheduler)

    async def test_run_ends_on_aclose(self, kind: type[Scheduler]) -> None:
        probe = Probe()
        scheduler = kind()
        async with anyio.create_task_group() as group:
            await group.start(scheduler.run)
            running, pending, coro = await setup_running_and_pending(scheduler, probe)
            await scheduler.aclose()
            assert not scheduler.is_started
        # run() returned by itself: the group exited without being cancelled.
        assert not group.cancel_scope.cancel_called
        assert running.cancelled()
        assert_cancelled_before_running(probe, pending, coro)
        assert_closed(scheduler)

    async def test_run_awaited_directly(self, kind: type[Scheduler]) -> None:
        probe = Probe()
        scheduler = kind()
        task = add(scheduler, probe.note, "scheduled before run")
        with anyio.move_on_after(10) as scope:
            await scheduler.run()
        assert scope.cancelled_caught
        assert task.result() == "scheduled before run"
        assert_closed(scheduler)

    async def test_run_while_serving_raises(self, kind: type[Scheduler]) -> None:
        async with kind() as scheduler:
            with pytest.raises(RuntimeError):
                await scheduler.run()
            with pytest.raises(RuntimeError):
                async with scheduler:
                    pytest.fail("entered twice")  # pragma: no cover
            with pytest.raises(RuntimeError):
                scheduler.start()
            assert scheduler.is_started
            task = add(scheduler, Probe().note, "still serving")
        assert task.result() == "still serving"


class TestServesOnce:
    async def test_after_async_with(self, kind: type[Scheduler]) -> None:
        async with kind() as scheduler:
            pass
        assert_closed(scheduler)
        await assert_cannot_reenter(scheduler)

    async def test_after_aclose_before_start(self, kind: type[Scheduler]) -> None:
        scheduler = kind()
        await scheduler.aclose()
        assert_closed(scheduler)
        await assert_cannot_reenter(scheduler)

    async def test_after_aclose_while_serving(self, kind: type[Scheduler]) -> None:
        async with kind() as scheduler:
            await scheduler.aclose()
            assert_closed(scheduler)
        assert_closed(scheduler)
        await assert_cannot_reenter(scheduler)

    async def test_after_body_exception(self, kind: type[Scheduler]) -> None:
        with pytest.raises(KeyError):
            async with kind() as scheduler:
                raise KeyError("x")
        assert_closed(scheduler)
        await assert_cannot_reenter(scheduler)


class TestAclose:
    async def test_idempotent(self, kind: type[Scheduler]) -> None:
        async with kind() as scheduler:
            await scheduler.aclose()
            await scheduler.aclose()
        await scheduler.aclose()
        assert not scheduler.is_started

    async def test_concurrent_calls_all_return(self, kind: type[Scheduler]) -> None:
        probe = Probe()
        async with kind() as scheduler:
            running, _, _ = await setup_running_and_pending(scheduler, probe)
            async with anyio.create_task_group() as group:
                for _ in range(3):
                    group.start_soon(scheduler.aclose)
            assert running.cancelled()

    async def test_before_start_cancels_pending_and_closes_coroutines(
        self, kind: type[Scheduler]
    ) -> None:
        probe = Probe()
        scheduler = kind()
        coro = probe.note("never")
        pending = add_later(scheduler, coro)
        callable_job = add(scheduler, probe.note, "never either")
        await scheduler.aclose()
        assert pending.cancelled()
        assert callable_job.cancelled()
        assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED
        assert probe.log == []
        assert not scheduler.is_started
        await assert_cannot_reenter(scheduler)

    async def test_cancels_pending_and_running_and_waits_for_them(
        self, kind: type[Scheduler]
    ) -> None:
        log: list[str] = []
        started = anyio.Event()

        async def slow_cleanup() -> None:
            started.set()
            try:
                await anyio.sleep_forever()
            finally:
                with anyio.CancelScope(shield=True):
                    await anyio.sleep(5)
                log.append("cleaned up")

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            async with kind() as scheduler:
                running = add(scheduler, slow_cleanup)
                await started.wait()
                coros = [Probe().note(f"pending {n}") for n in range(5)]
                pending = [add_later(scheduler, coro) for coro in coros]
                begin = anyio.current_time()
                await scheduler.aclose()
                # aclose returned only after the running job's cleanup.
                assert log == ["cleaned up"]
                assert anyio.current_time() - begin == pytest.approx(5)
                assert running.cancelled()
                assert all(task.cancelled() for task in pending)
                assert all(
                    inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED
                    for coro in coros
                )
                del coros, pending
                gc.collect()
        assert [str(w.message) for w in caught] == []

    async def test_from_inside_a_job(self, kind: type[Scheduler]) -> None:
        probe = Probe()
        after_aclose: list[str] = []
        coro = probe.note("pending ran")
        pending: list[Task[Any]] = []
        async with kind() as scheduler:

            async def closer() -> None:
                pending.append(add_later(scheduler, coro))
                await scheduler.aclose()
                after_aclose.append("returned")  # pragma: no cover

            blocker = None
            if isinstance(scheduler, TimedScheduler):
                # Timed jobs run concurrently: one more is running meanwhile.
                blocker = add(scheduler, probe.block)
                await probe.started.wait()
            closing = add(scheduler, closer)
        # The closer was itself a running job, so it ended cancelled.
        assert closing.cancelled()
        assert after_aclose == []
        if blocker is not None:
            assert blocker.cancelled()
            assert probe.log == ["block start", "block cleanup"]
        assert_cancelled_before_running(probe, pending[0], coro)
        assert_closed(scheduler)

    async def test_from_inside_a_job_under_run(self, kind: type[Scheduler]) -> None:
        scheduler = kind()

        async def closer() -> None:
            await anyio.sleep(10)
            await scheduler.aclose()

        begin = anyio.current_time()
        async with anyio.create_task_group() as group:
            await group.start(scheduler.run)
            closing = add(scheduler, closer)
        # run() returned once the job closed its scheduler.
        assert anyio.current_time() - begin == pytest.approx(10)
        assert closing.cancelled()
        assert_closed(scheduler)


class TestJoin:
    async def test_returns_at_once_when_idle(self, kind: type[Scheduler]) -> None:
        scheduler = kind()
        begin = anyio.current_time()
        await scheduler.join()  # not started, nothing scheduled
        async with scheduler:
            await scheduler.join()
            assert anyio.current_time() == begin
            task = add(scheduler, Probe().note, "x")
            await task.wait()
            begin = anyio.current_time()
            await scheduler.join()
            assert anyio.current_time() == begin

    async def test_waits_until_idle_including_jobs_scheduled_by_jobs(
        self, kind: type[Scheduler]
    ) -> None:
        log: list[str] = []
        async with kind() as scheduler:

            async def parent() -> None:
                await anyio.sleep(100)
                log.append("parent")
                if isinstance(scheduler, TimedScheduler):
                    scheduler.start_after(50, child)
                else:
                    scheduler.start_soon(child)

            async def child() -> None:
                await anyio.sleep(25)
                log.append("child")

            begin = anyio.current_time()
            add(scheduler, parent)
            await scheduler.join()
            assert log == ["parent", "child"]
            elapsed = anyio.current_time() - begin
            assert elapsed >= 125
            # Still serving after join().
            assert scheduler.is_started
            task = add(scheduler, Probe().note, "again")
            await scheduler.join()
            assert task.result() == "again"

    async def test_waits_for_a_future_timed_job(self) -> None:
        async with TimedScheduler() as scheduler:
            begin = anyio.current_time()
            task = scheduler.start_after(timedelta(days=1), Probe().note, "late")
            await scheduler.join()
            assert task.done()
            assert anyio.current_time() - begin >= 86400

    async def test_returns_after_cancelled_jobs(self, kind: type[Scheduler]) -> None:
        probe = Probe()
        async with kind() as scheduler:
            running, pending, _ = await setup_running_and_pending(scheduler, probe)
            async with anyio.create_task_group() as group:
                group.start_soon(scheduler.join)
                await anyio.wait_all_tasks_blocked()
                assert running.cancel() is True
                assert pending.cancel() is True
            with pytest.raises(TaskCancelled):
                await running.wait()


class TestStartFacade:
    async def test_start_on_each_loop(
        self, kind: type[Scheduler], backend_name: str
    ) -> None:
        probe = Probe()
        scheduler = kind()
        early = add(scheduler, probe.note, "early")
        if backend_name == "trio":
            with pytest.raises(RuntimeError, match=r"async with|nursery\.start"):
                scheduler.start()
            assert not scheduler.is_started
            # The refused start() left the scheduler usable the structured way.
            async with scheduler:
                pass
            assert early.result() == "early"
            return
        scheduler.start()
        assert scheduler.is_started
        with pytest.raises(RuntimeError):
            scheduler.start()
        assert await early.wait() == "early"
        running, pending, coro = await setup_running_and_pending(scheduler, probe)
        await scheduler.aclose()
        assert running.cancelled()
        assert_cancelled_before_running(probe, pending, coro)
        assert_closed(scheduler)
        await assert_cannot_reenter(scheduler)
