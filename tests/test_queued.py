"""QueuedScheduler and LifoQueuedScheduler: one job at a time, in order."""

from __future__ import annotations

import inspect
from collections.abc import Coroutine
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from aioscheduler import LifoQueuedScheduler, QueuedScheduler, Task, TaskCancelled


async def record(log: list[int], n: int) -> int:
    """A job that logs its number, yields once, and returns the number."""
    log.append(n)
    await anyio.lowlevel.checkpoint()
    return n


class TestQueuedScheduler:
    async def test_runs_in_scheduling_order(self) -> None:
        log: list[int] = []
        async with QueuedScheduler() as scheduler:
            tasks = [scheduler.start_soon(record, log, n) for n in range(20)]
        assert log == list(range(20))
        assert [task.result() for task in tasks] == list(range(20))

    async def test_schedule_coroutine_and_start_soon_share_one_queue(self) -> None:
        log: list[int] = []
        async with QueuedScheduler() as scheduler:
            for n in range(10):
                if n % 2:
                    scheduler.schedule(record(log, n))
                else:
                    scheduler.start_soon(record, log, n)
        assert log == list(range(10))

    async def test_one_job_ends_before_the_next_starts(self) -> None:
        events: list[tuple[str, int]] = []

        async def job(n: int) -> None:
            events.append(("start", n))
            await anyio.sleep(1)
            await anyio.lowlevel.checkpoint()
            events.append(("end", n))

        begin = anyio.current_time()
        async with QueuedScheduler() as scheduler:
            for n in range(5):
                scheduler.start_soon(job, n)
        assert events == [(kind, n) for n in range(5) for kind in ("start", "end")]
        # One at a time: five one-second jobs take five seconds, not one.
        assert anyio.current_time() - begin == pytest.approx(5)

    async def test_never_more_than_one_running(self) -> None:
        running = 0
        peak = 0

        async def job() -> None:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await anyio.sleep(0.5)
            running -= 1

        async with QueuedScheduler() as scheduler:
            for _ in range(10):
                scheduler.start_soon(job)
            await anyio.sleep(1.2)
            # Jobs added while others run still wait their turn.
            for _ in range(10):
                scheduler.start_soon(job)
        assert peak == 1

    async def test_scheduled_before_start_runs_after_start(self) -> None:
        log: list[int] = []
        scheduler = QueuedScheduler()
        scheduler.start_soon(record, log, 0)
        scheduler.schedule(record(log, 1))
        await anyio.lowlevel.checkpoint()
        assert log == []
        async with scheduler:
            pass
        assert log == [0, 1]

    async def test_job_scheduled_while_one_runs_goes_to_the_back(self) -> None:
        log: list[int] = []
        async with QueuedScheduler() as scheduler:

            async def first() -> None:
                log.append(0)
                scheduler.start_soon(record, log, 99)
                await anyio.lowlevel.checkpoint()

            scheduler.start_soon(first)
            for n in range(1, 4):
                scheduler.start_soon(record, log, n)
        assert log == [0, 1, 2, 3, 99]

    async def test_wait_returns_the_result(self) -> None:
        async def answer() -> int:
            await anyio.lowlevel.checkpoint()
            return 42

        async with QueuedScheduler() as scheduler:
            task = scheduler.start_soon(answer)
            assert await task.wait() == 42
        assert task.done()
        assert not task.cancelled()
        assert task.exception() is None

    async def test_callable_form_creates_the_coroutine_only_when_due(self) -> None:
        created: list[int] = []

        async def job(n: int) -> None:
            created.append(n)
            await anyio.lowlevel.checkpoint()

        gate = anyio.Event()
        async with QueuedScheduler() as scheduler:
            scheduler.start_soon(gate.wait)
            task = scheduler.start_soon(job, 1)
            assert task.callback is job
            await anyio.wait_all_tasks_blocked()
            assert created == []
            gate.set()
        assert created == [1]

    async def test_non_awaiting_jobs_do_not_starve_other_tasks(self) -> None:
        jobs = 2000
        ticks = 0
        seen: list[int] = []
        finished = anyio.Event()

        async def busy(n: int) -> None:
            # Never awaits: only the scheduler can give the loop a turn.
            seen.append(ticks)
            if n == jobs - 1:
                finished.set()

        async def observer() -> None:
            nonlocal ticks
            while not finished.is_set():
                ticks += 1
                await anyio.lowlevel.checkpoint()

        async with anyio.create_task_group() as group, QueuedScheduler() as scheduler:
            for n in range(jobs):
                scheduler.start_soon(busy, n)
            group.start_soon(observer)
        assert len(seen) == jobs
        # The observer ran several times while the queue was being worked off.
        assert len(set(seen)) >= 4, sorted(set(seen))


class TestLifoQueuedScheduler:
    async def test_scheduled_before_start_runs_newest_first(self) -> None:
        log: list[int] = []
        scheduler = LifoQueuedScheduler()
        for n in range(5):
            scheduler.start_soon(record, log, n)
        async with scheduler:
            pass
        assert log == [4, 3, 2, 1, 0]

    async def test_scheduled_while_one_runs_runs_newest_first(self) -> None:
        log: list[int] = []
        started = anyio.Event()
        gate = anyio.Event()

        async def blocker() -> None:
            log.append(0)
            started.set()
            await gate.wait()

        async with LifoQueuedScheduler() as scheduler:
            scheduler.start_soon(blocker)
            await started.wait()
            for n in range(1, 4):
                scheduler.start_soon(record, log, n)
            scheduler.schedule(record(log, 4))
            gate.set()
        assert log == [0, 4, 3, 2, 1]

    async def test_one_at_a_time(self) -> None:
        events: list[tuple[str, int]] = []

        async def job(n: int) -> None:
            events.append(("start", n))
            await anyio.sleep(1)
            events.append(("end", n))

        scheduler = LifoQueuedScheduler()
        for n in range(4):
            scheduler.start_soon(job, n)
        async with scheduler:
            pass
        assert events == [
            (kind, n) for n in reversed(range(4)) for kind in ("start", "end")
        ]

    async def test_jobs_scheduling_jobs_run_newest_first(self) -> None:
        log: list[int] = []
        async with LifoQueuedScheduler() as scheduler:

            async def parent() -> None:
                log.append(0)
                scheduler.start_soon(record, log, 10)
                scheduler.start_soon(record, log, 11)
                await anyio.lowlevel.checkpoint()

            scheduler.start_soon(record, log, 1)
            scheduler.start_soon(parent)
        # parent is newest, so it runs first; then its children (newest first),
        # then the oldest job.
        assert log == [0, 11, 10, 1]


@pytest.fixture(params=[QueuedScheduler, LifoQueuedScheduler])
def queued_cls(request: pytest.FixtureRequest) -> type[QueuedScheduler]:
    cls: type[QueuedScheduler] = request.param
    return cls


class TestQueuedCancel:
    async def test_cancel_pending_never_runs_and_closes_coroutine(
        self, queued_cls: type[QueuedScheduler]
    ) -> None:
        log: list[int] = []
        started = anyio.Event()
        gate = anyio.Event()

        async def blocker() -> None:
            started.set()
            await gate.wait()

        async with queued_cls() as scheduler:
            scheduler.start_soon(blocker)
            await started.wait()
            coro = record(log, 1)
            by_scheduler = scheduler.schedule(coro)
            by_task = scheduler.start_soon(record, log, 2)
            kept = scheduler.start_soon(record, log, 3)
            assert scheduler.cancel(by_scheduler) is True
            assert by_task.cancel() is True
            assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED
            for task in (by_scheduler, by_task):
                assert task.done()
                assert task.cancelled()
            gate.set()
        assert log == [3]
        assert kept.result() == 3
        for task in (by_scheduler, by_task):
            with pytest.raises(TaskCancelled):
                task.result()
            with pytest.raises(TaskCancelled):
                task.exception()
            with pytest.raises(TaskCancelled):
                await task.wait()

    @pytest.mark.parametrize("via", ["scheduler", "task"])
    async def test_cancel_running_ends_it_and_the_queue_goes_on(
        self, queued_cls: type[QueuedScheduler], via: str
    ) -> None:
        log: list[str] = []
        started = anyio.Event()

        async def forever() -> None:
            started.set()
            try:
                await anyio.sleep_forever()
            finally:
                log.append("cleanup")

        async def after() -> str:
            log.append("after")
            await anyio.sleep(1)
            return "after"

        async with queued_cls() as scheduler:
            running = scheduler.start_soon(forever)
            await started.wait()
            next_job = scheduler.start_soon(after)
            await anyio.wait_all_tasks_blocked()
            assert not running.done()
            if via == "scheduler":
                assert scheduler.cancel(running) is True
            else:
                assert running.cancel() is True
            assert scheduler.is_started
        # The scheduler itself was not cancelled: the next job ran in full.
        assert running.cancelled()
        with pytest.raises(TaskCancelled):
            await running.wait()
        assert next_job.result() == "after"
        assert log == ["cleanup", "after"]

    async def test_job_suppressing_cancellation_ends_finished(
        self, queued_cls: type[QueuedScheduler]
    ) -> None:
        started = anyio.Event()

        async def stubborn() -> str:
            started.set()
            try:
                await anyio.sleep_forever()
            except anyio.get_cancelled_exc_class():
                return "kept"
            return "unreachable"  # pragma: no cover

        async def after() -> str:
            await anyio.sleep(1)
            return "after"

        async with queued_cls() as scheduler:
            task = scheduler.start_soon(stubborn)
            await started.wait()
            follower = scheduler.start_soon(after)
            await anyio.wait_all_tasks_blocked()
            assert task.cancel() is True
        assert not task.cancelled()
        assert task.result() == "kept"
        # The cancellation did not leak into the scheduler or the next job.
        assert follower.result() == "after"

    async def test_cancel_after_the_last_await_leaves_the_next_jobs_alone(
        self, queued_cls: type[QueuedScheduler]
    ) -> None:
        """A job cancelled after its last await ends finished; the jobs run
        after it (which may share its cancel scope on Trio) do not see it."""
        tasks: list[Task[Any]] = []

        async def cancels_itself() -> str:
            assert tasks[0].cancel() is True
            return "done anyway"

        async def awaits(n: int) -> int:
            await anyio.sleep(0.1)
            return n

        lifo = queued_cls is LifoQueuedScheduler
        async with queued_cls() as scheduler:
            if not lifo:
                tasks.append(scheduler.start_soon(cancels_itself))
            followers = [scheduler.start_soon(awaits, n) for n in range(100)]
            if lifo:  # runs first there
                tasks.append(scheduler.start_soon(cancels_itself))
        assert tasks[0].result() == "done anyway"
        assert [task.result() for task in followers] == list(range(100))

    async def test_cancel_one_of_many_quick_jobs(
        self, queued_cls: type[QueuedScheduler]
    ) -> None:
        """Cancelling a running job in the middle of a run of jobs that
        share a checkpoint interval ends that job only."""
        tasks: list[Task[Any]] = []
        log: list[int] = []

        async def job(n: int) -> int:
            log.append(n)
            if n == 30:
                assert tasks[30].cancel() is True
                await anyio.lowlevel.checkpoint()  # takes the cancellation
                log.append(-1)  # never reached
            return n

        async with queued_cls() as scheduler:
            tasks.extend(scheduler.start_soon(job, n) for n in range(200))
        states = ["cancelled" if t.cancelled() else t.result() for t in tasks]
        assert states == [*range(30), "cancelled", *range(31, 200)]
        assert -1 not in log
        assert sorted(log) == list(range(200))

    async def test_cancel_done_task_returns_false(
        self, queued_cls: type[QueuedScheduler]
    ) -> None:
        async def fail() -> None:
            await anyio.lowlevel.checkpoint()
            raise ValueError("boom")

        def ignore(task: Task[Any], exc: Exception) -> None:
            pass

        async with queued_cls(on_error=ignore) as scheduler:
            finished = scheduler.start_soon(record, [], 1)
            failed = scheduler.start_soon(fail)
            cancelled = scheduler.start_soon(record, [], 2)
            assert cancelled.cancel() is True
            await scheduler.join()
            assert scheduler.cancel(finished) is False
            assert finished.cancel() is False
            assert scheduler.cancel(failed) is False
            assert scheduler.cancel(cancelled) is False
            assert cancelled.cancel() is False
        assert finished.result() == 1
        assert isinstance(failed.exception(), ValueError)
        assert cancelled.cancelled()

    async def test_cancel_foreign_task_returns_false(
        self, queued_cls: type[QueuedScheduler]
    ) -> None:
        log: list[int] = []
        other = queued_cls()
        async with queued_cls() as scheduler:
            task = scheduler.start_soon(record, log, 1)
            assert other.cancel(task) is False
            assert not task.done()
        assert task.result() == 1
        assert log == [1]
        await other.aclose()


class TestQueuedJobsScheduleJobs:
    async def test_chain_of_jobs_all_run_before_exit(
        self, queued_cls: type[QueuedScheduler]
    ) -> None:
        log: list[int] = []
        tasks: list[Task[Any]] = []
        async with queued_cls() as scheduler:

            async def link(n: int) -> None:
                log.append(n)
                await anyio.lowlevel.checkpoint()
                if n < 50:
                    tasks.append(scheduler.start_soon(link, n + 1))

            tasks.append(scheduler.start_soon(link, 0))
        assert log == list(range(51))
        assert all(task.done() and not task.cancelled() for task in tasks)

    async def test_schedule_coroutine_from_a_job(
        self, queued_cls: type[QueuedScheduler]
    ) -> None:
        log: list[int] = []
        async with queued_cls() as scheduler:

            async def parent() -> Task[Any]:
                await anyio.lowlevel.checkpoint()
                return scheduler.schedule(record(log, 5))

            parent_task = scheduler.start_soon(parent)
        child = parent_task.result()
        assert isinstance(child, Task)
        assert child.result() == 5


class TestQueuedPriority:
    async def test_priorities_are_ints_increasing_per_scheduler(
        self, queued_cls: type[QueuedScheduler]
    ) -> None:
        first = queued_cls()
        second = queued_cls()
        coros: list[Coroutine[Any, Any, Any]] = []
        tasks_a: list[Task[Any]] = []
        tasks_b: list[Task[Any]] = []
        for n in range(6):
            tasks_a.append(first.start_soon(record, [], n))
            coro = record([], n)
            coros.append(coro)
            tasks_a.append(first.schedule(coro))
            tasks_b.append(second.start_soon(record, [], n))
        for tasks in (tasks_a, tasks_b):
            priorities = [task.priority for task in tasks]
            assert all(type(p) is int for p in priorities)
            assert priorities == sorted(set(priorities))
            assert all(task.when is None for task in tasks)
        async with first, second:
            later = first.start_soon(record, [], 99)
            assert isinstance(later.priority, int)
            assert isinstance(tasks_a[-1].priority, int)
            assert later.priority > tasks_a[-1].priority
