"""Manager: N schedulers of one kind behind one front, load-balanced."""

from __future__ import annotations

import inspect
import random
import time
from collections.abc import Iterator
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
    Task,
    TaskCancelled,
    TaskLimitReached,
    TimedScheduler,
)


async def record(log: list[int], n: int) -> int:
    """A job that logs its number, yields once, and returns the number."""
    log.append(n)
    await anyio.lowlevel.checkpoint()
    return n


def owner_index(manager: Manager[Any], task: Task[Any]) -> int:
    """Find which of the manager's schedulers owns a not-yet-done *task*.

    Uses only the public API: the owner's ``cancel`` returns ``True`` (and
    cancels it), every other scheduler's returns ``False``.
    """
    owners = [i for i, s in enumerate(manager.schedulers) if s.cancel(task)]
    assert len(owners) == 1, owners
    return owners[0]


class TestManagerConstructor:
    def test_defaults_need_no_event_loop(self) -> None:
        manager: Manager[TimedScheduler] = Manager()
        assert len(manager.schedulers) == 1
        assert type(manager.schedulers[0]) is TimedScheduler
        assert not manager.is_started

    @pytest.mark.parametrize(
        "cls", [TimedScheduler, QueuedScheduler, LifoQueuedScheduler]
    )
    def test_schedulers_tuple_holds_n_of_the_kind(
        self, cls: type[TimedScheduler]
    ) -> None:
        manager = Manager(3, cls=cls)
        assert isinstance(manager.schedulers, tuple)
        assert len(manager.schedulers) == 3
        assert all(type(s) is cls for s in manager.schedulers)
        assert len({id(s) for s in manager.schedulers}) == 3

    def test_subclass_accepted(self) -> None:
        class MyQueued(QueuedScheduler):
            pass

        manager = Manager(2, cls=MyQueued)
        assert all(type(s) is MyQueued for s in manager.schedulers)

    @pytest.mark.parametrize("schedulers", [0, -1])
    def test_schedulers_below_one(self, schedulers: int) -> None:
        with pytest.raises(ValueError, match="schedulers"):
            Manager(schedulers)

    @pytest.mark.parametrize("max_tasks", [0, -5])
    def test_max_tasks_below_one(self, max_tasks: int) -> None:
        with pytest.raises(ValueError, match="max_tasks"):
            Manager(2, max_tasks)

    @pytest.mark.parametrize("cls", [int, object, Manager, "TimedScheduler", None])
    def test_cls_not_a_scheduler_class(self, cls: object) -> None:
        with pytest.raises(TypeError):
            Manager(2, None, cls)  # type: ignore[call-overload]

    def test_scheduler_instance_is_not_a_class(self) -> None:
        with pytest.raises(TypeError):
            Manager(2, cls=TimedScheduler())  # type: ignore[call-overload]

    def test_args_and_kwargs_reach_each_scheduler_constructor(self) -> None:
        with pytest.raises(TypeError):
            Manager(2, None, QueuedScheduler, prefer_utc=False)


class TestManagerRouting:
    async def test_least_loaded_spreads_evenly(self) -> None:
        gate = anyio.Event()
        async with Manager(3, cls=TimedScheduler) as manager:
            tasks = [manager.start_after(0, gate.wait) for _ in range(9)]
            await anyio.wait_all_tasks_blocked()
            owners = [owner_index(manager, task) for task in tasks]
        assert sorted(owners.count(i) for i in range(3)) == [3, 3, 3]
        assert all(task.cancelled() for task in tasks)

    async def test_new_job_goes_to_the_scheduler_that_freed_up(self) -> None:
        gate = anyio.Event()
        async with Manager(3, cls=TimedScheduler) as manager:
            tasks = [manager.start_after(0, gate.wait) for _ in range(6)]
            await anyio.wait_all_tasks_blocked()
            freed = owner_index(manager, tasks[4])  # cancels it
            with pytest.raises(TaskCancelled):
                await tasks[4].wait()
            newcomer = manager.start_after(0, gate.wait)
            assert owner_index(manager, newcomer) == freed
            gate.set()
        assert sum(task.cancelled() for task in tasks) == 1

    @pytest.mark.parametrize("seed", range(5))
    async def test_always_the_first_least_loaded(self, seed: int) -> None:
        # The Manager remembers its last answer between calls: under any mix
        # of routed jobs, jobs added to one scheduler directly, cancels and
        # jobs ending, each call must still go to the first scheduler of
        # the least load.
        rng = random.Random(seed)
        gate = anyio.Event()
        tasks: list[Task[Any]] = []
        async with Manager(5, cls=TimedScheduler) as manager:
            schedulers = manager.schedulers

            def loads() -> list[int]:
                stats = [s.statistics() for s in schedulers]
                return [st.pending + st.running for st in stats]

            for _ in range(400):
                roll = rng.random()
                if roll < 0.5:
                    expected = loads().index(min(loads()))
                    if rng.random() < 0.5:
                        task = manager.start_after(rng.choice([0, 100]), gate.wait)
                    else:
                        when = datetime.now(UTC) + timedelta(seconds=100)
                        task = manager.start_at(when, gate.wait)
                    owners = [s for s in schedulers if task in s.pending_tasks()]
                    if task.pending():
                        assert owners == [schedulers[expected]]
                    tasks.append(task)
                elif roll < 0.65:
                    tasks.append(rng.choice(schedulers).start_after(100, gate.wait))
                elif roll < 0.9 and tasks:
                    tasks.pop(rng.randrange(len(tasks))).cancel()
                else:
                    await anyio.sleep(0.01)  # the due ones start
                    if rng.random() < 0.3:
                        gate.set()  # the running ones end
                        await anyio.sleep(0.01)
                        gate = anyio.Event()
            gate.set()

    async def test_pending_jobs_count_as_load(self) -> None:
        async with Manager(2, cls=TimedScheduler) as manager:
            tasks = [manager.start_after(100, anyio.sleep, 0) for _ in range(4)]
            owners = [owner_index(manager, task) for task in tasks]
        assert sorted(owners) == [0, 0, 1, 1]

    async def test_queued_manager_runs_up_to_n_at_once_not_more(self) -> None:
        running = 0
        peak = 0
        ran = 0

        async def job() -> None:
            nonlocal running, peak, ran
            running += 1
            peak = max(peak, running)
            await anyio.sleep(1)
            running -= 1
            ran += 1

        begin = anyio.current_time()
        async with Manager(3, cls=QueuedScheduler) as manager:
            for _ in range(12):
                manager.start_soon(job)
        assert ran == 12
        assert peak == 3
        # 12 one-second jobs, three at a time.
        assert anyio.current_time() - begin == pytest.approx(4)

    async def test_queued_manager_schedule_coroutine(self) -> None:
        log: list[int] = []
        async with Manager(2, cls=QueuedScheduler) as manager:
            tasks = [manager.schedule(record(log, n)) for n in range(6)]
        assert sorted(log) == list(range(6))
        assert [task.result() for task in tasks] == list(range(6))

    async def test_lifo_manager_runs_newest_first(self) -> None:
        log: list[int] = []
        manager = Manager(1, cls=LifoQueuedScheduler)
        assert type(manager.schedulers[0]) is LifoQueuedScheduler
        for n in range(5):
            manager.start_soon(record, log, n)
        manager.schedule(record(log, 5))
        async with manager:
            pass
        assert log == [5, 4, 3, 2, 1, 0]

    async def test_lifo_manager_one_job_per_scheduler_at_a_time(self) -> None:
        running = 0
        peak = 0

        async def job() -> None:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await anyio.sleep(1)
            running -= 1

        async with Manager(2, cls=LifoQueuedScheduler) as manager:
            for _ in range(6):
                manager.start_soon(job)
        assert peak == 2


class TestManagerTimed:
    async def test_schedule_coroutine_at_datetime(self) -> None:
        log: list[int] = []
        begin = anyio.current_time()
        async with Manager(2, cls=TimedScheduler) as manager:
            when = datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=30)
            task = manager.schedule(record(log, 1), when)
            assert task.priority == when
            assert task.when == when.replace(tzinfo=UTC)
        assert log == [1]
        assert anyio.current_time() - begin >= 29

    async def test_start_at_and_start_after(self) -> None:
        starts: dict[str, float] = {}

        async def job(name: str) -> str:
            starts[name] = anyio.current_time()
            await anyio.lowlevel.checkpoint()
            return name

        async with Manager(3, cls=TimedScheduler) as manager:
            begin = anyio.current_time()
            at = manager.start_at(datetime.now(UTC) + timedelta(seconds=50), job, "at")
            after = manager.start_after(20, job, "after")
            delta = manager.start_after(timedelta(minutes=1), job, "delta")
        assert (at.result(), after.result(), delta.result()) == ("at", "after", "delta")
        assert starts["after"] - begin >= 20
        assert starts["at"] - begin >= 49
        assert starts["delta"] - begin >= 60
        assert starts["after"] < starts["at"] < starts["delta"]

    async def test_start_at_reaches_a_subclass_override(self) -> None:
        # The Manager inlines TimedScheduler.start_at; a subclass that
        # overrides it must still see every call.
        seen: list[int] = []

        class Counting(TimedScheduler):
            def start_at(  # type: ignore[override]
                self, when: Any, async_fn: Any, /, *args: Any
            ) -> Any:
                seen.append(len(args))
                return super().start_at(when, async_fn, *args)

        async with Manager(2, cls=Counting) as manager:
            when = datetime.now(UTC) + timedelta(seconds=5)
            tasks = [manager.start_at(when, record, [], i) for i in range(4)]
        assert seen == [2, 2, 2, 2]
        assert [task.result() for task in tasks] == [0, 1, 2, 3]

    async def test_start_at_checks_as_a_scheduler_does(self) -> None:
        def not_async() -> None:
            pass

        async with Manager(2, cls=TimedScheduler) as manager:
            when = datetime.now(UTC) + timedelta(seconds=5)
            with pytest.raises(TypeError):
                manager.start_at(when, not_async)  # type: ignore[arg-type]
            with pytest.raises(ValueError, match="May only be in the future"):
                manager.start_at(when - timedelta(seconds=10), record, [], 0)
            with pytest.raises(TypeError):
                manager.start_at("tomorrow", record, [], 0)  # type: ignore[arg-type]
            task = manager.start_at(when, record, [], 7)
            assert task.when == when
            assert manager.statistics().pending == 1
        assert task.result() == 7

    async def test_past_time_refused_and_coroutine_closed(self) -> None:
        async with Manager(2, cls=TimedScheduler) as manager:
            coro = record([], 1)
            with pytest.raises(ValueError, match="May only be in the future"):
                manager.schedule(coro, datetime.now(UTC) - timedelta(seconds=1))
            assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED


class TestManagerLimits:
    async def test_max_tasks_bounds_the_total(self) -> None:
        gate = anyio.Event()
        async with Manager(3, max_tasks=4, cls=TimedScheduler) as manager:
            tasks = [manager.start_after(0, gate.wait) for _ in range(4)]
            with pytest.raises(TaskLimitReached):
                manager.start_after(0, gate.wait)
            coro = record([], 1)
            with pytest.raises(TaskLimitReached):
                manager.schedule(coro, datetime.now(UTC) + timedelta(seconds=1))
            assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED
            with pytest.raises(ValueError, match="max_tasks"):  # 1.x: ValueError
                manager.start_at(datetime.now(UTC) + timedelta(seconds=1), gate.wait)
            # A job ending frees a place.
            assert tasks[0].cancel() is True
            with pytest.raises(TaskCancelled):
                await tasks[0].wait()
            tasks.append(manager.start_after(0, gate.wait))
            with pytest.raises(TaskLimitReached):
                manager.start_after(0, gate.wait)
            gate.set()
        assert sum(not task.cancelled() for task in tasks) == 4

    async def test_max_tasks_on_queued_manager(self) -> None:
        async with Manager(2, 3, QueuedScheduler) as manager:
            for _ in range(3):
                manager.start_soon(anyio.sleep, 1)
            with pytest.raises(TaskLimitReached):
                manager.start_soon(anyio.sleep, 1)
            coro = record([], 1)
            with pytest.raises(TaskLimitReached):
                manager.schedule(coro)
            assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED

    async def test_positional_args_go_to_each_scheduler(self) -> None:
        # Manager(schedulers, max_tasks, cls, *args): here args = (1,), so each
        # scheduler has max_tasks=1 of its own.
        async with Manager(2, None, QueuedScheduler, 1) as manager:
            manager.start_soon(anyio.sleep, 1)
            manager.start_soon(anyio.sleep, 1)
            with pytest.raises(TaskLimitReached):
                manager.start_soon(anyio.sleep, 1)


@pytest.fixture
def utc_plus_five(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run with the local time zone at UTC+5 (no DST), so local != UTC."""
    monkeypatch.setenv("TZ", "Etc/GMT-5")
    time.tzset()
    try:
        yield
    finally:
        monkeypatch.undo()
        time.tzset()


class TestManagerForwarding:
    @pytest.mark.usefixtures("utc_plus_five")
    async def test_prefer_utc_false_reads_naive_as_local(self) -> None:
        ran: list[float] = []

        async def job() -> None:
            ran.append(anyio.current_time())
            await anyio.lowlevel.checkpoint()

        begin = anyio.current_time()
        async with Manager(2, cls=TimedScheduler, prefer_utc=False) as manager:
            local_when = datetime.now() + timedelta(seconds=60)
            task = manager.start_at(local_when, job)
            assert task.when == local_when.astimezone(UTC)
            # Read as UTC, this local time would be 5 hours ahead; read as
            # local time (correct here), it is a minute ahead.
            assert task.when != local_when.replace(tzinfo=UTC)
        assert len(ran) == 1
        assert 59 <= ran[0] - begin < 3600

    @pytest.mark.usefixtures("utc_plus_five")
    async def test_prefer_utc_default_reads_naive_as_utc(self) -> None:
        async with Manager(2, cls=TimedScheduler) as manager:
            local_when = datetime.now() + timedelta(seconds=60)
            # Local time is UTC+5: as UTC this is hours in the future.
            task = manager.start_at(local_when, anyio.sleep, 0)
            assert task.when == local_when.replace(tzinfo=UTC)
            assert manager.cancel(task) is True

    @pytest.mark.parametrize("cls", [TimedScheduler, QueuedScheduler])
    async def test_on_error_forwarded(self, cls: type[Any]) -> None:
        seen: list[tuple[Task[Any], Exception]] = []
        error = ValueError("boom")

        async def fail() -> None:
            await anyio.lowlevel.checkpoint()
            raise error

        def on_error(task: Task[Any], exc: Exception) -> None:
            seen.append((task, exc))

        async with Manager(2, cls=cls, on_error=on_error) as manager:
            if cls is TimedScheduler:
                tasks = [manager.start_after(1, fail) for _ in range(2)]
            else:
                tasks = [manager.start_soon(fail) for _ in range(2)]
        assert seen == [(tasks[0], error), (tasks[1], error)] or seen == [
            (tasks[1], error),
            (tasks[0], error),
        ]
        assert all(task.exception() is error for task in tasks)


class TestManagerCancel:
    async def test_cancel_pending_via_manager(self) -> None:
        log: list[int] = []
        async with Manager(2, cls=TimedScheduler) as manager:
            coro = record(log, 1)
            task = manager.schedule(coro, datetime.now(UTC) + timedelta(seconds=10))
            assert manager.cancel(task) is True
            assert task.cancelled()
            assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED
            assert manager.cancel(task) is False
        assert log == []

    async def test_cancel_running_via_manager(self) -> None:
        started = anyio.Event()

        async def forever() -> None:
            started.set()
            await anyio.sleep_forever()

        async with Manager(2, cls=QueuedScheduler) as manager:
            task = manager.start_soon(forever)
            await started.wait()
            assert manager.cancel(task) is True
        assert task.cancelled()

    async def test_cancel_finished_returns_false(self) -> None:
        async with Manager(2, cls=TimedScheduler) as manager:
            task = manager.start_after(1, record, [], 1)
            await task.wait()
            assert manager.cancel(task) is False

    async def test_cancel_foreign_task_returns_false(self) -> None:
        log: list[int] = []
        async with (
            Manager(2, cls=TimedScheduler) as manager,
            Manager(2, cls=TimedScheduler) as other_manager,
            TimedScheduler() as lone,
        ):
            mine = manager.start_after(5, record, log, 1)
            theirs = other_manager.start_after(5, record, log, 2)
            standalone = lone.start_after(5, record, log, 3)
            assert manager.cancel(theirs) is False
            assert manager.cancel(standalone) is False
            assert other_manager.cancel(mine) is False
            assert lone.cancel(mine) is False
        assert sorted(log) == [1, 2, 3]


class TestManagerLifecycle:
    async def test_async_with_waits_for_all_jobs(self) -> None:
        log: list[int] = []
        begin = anyio.current_time()
        async with Manager(3, cls=TimedScheduler) as manager:
            assert manager.is_started
            for n in range(9):
                manager.start_after(n * 10, record, log, n)
        assert sorted(log) == list(range(9))
        assert anyio.current_time() - begin >= 80
        assert not manager.is_started

    async def test_join_waits_until_idle(self) -> None:
        log: list[int] = []
        async with Manager(2, cls=QueuedScheduler) as manager:
            begin = anyio.current_time()
            await manager.join()  # idle: returns at once
            assert anyio.current_time() == begin

            async def job(n: int) -> None:
                await anyio.sleep(10)
                log.append(n)

            for n in range(4):
                manager.start_soon(job, n)
            await manager.join()
            assert sorted(log) == list(range(4))
            assert anyio.current_time() - begin == pytest.approx(20)
            assert manager.is_started

    async def test_aclose_cancels_pending_and_running(self) -> None:
        started = anyio.Event()

        async def forever() -> None:
            started.set()
            await anyio.sleep_forever()

        async with Manager(2, cls=TimedScheduler) as manager:
            running = manager.start_after(0, forever)
            coro = record([], 1)
            pending = manager.schedule(coro, datetime.now(UTC) + timedelta(hours=1))
            await started.wait()
            await manager.aclose()
            assert running.cancelled()
            assert pending.cancelled()
            assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED
            assert not manager.is_started
            await manager.aclose()  # idempotent
            with pytest.raises(SchedulerClosed):
                manager.start_after(1, anyio.sleep, 0)

    async def test_task_group_start_run(self) -> None:
        log: list[int] = []
        manager = Manager(2, cls=QueuedScheduler)
        async with anyio.create_task_group() as group:
            await group.start(manager.run)
            assert manager.is_started
            assert all(s.is_started for s in manager.schedulers)
            tasks = [manager.start_soon(record, log, n) for n in range(4)]
            await manager.join()
            assert sorted(log) == list(range(4))
            pending = manager.start_soon(anyio.sleep_forever)
            await anyio.wait_all_tasks_blocked()
            group.cancel_scope.cancel()
        assert pending.cancelled()
        assert all(task.done() for task in tasks)
        assert not manager.is_started
        with pytest.raises(RuntimeError):
            await manager.run()

    async def test_run_ends_on_aclose(self) -> None:
        manager = Manager(2, cls=TimedScheduler)
        async with anyio.create_task_group() as group:
            await group.start(manager.run)
            task = manager.start_after(100, anyio.sleep, 0)
            await manager.aclose()
        assert task.cancelled()
        assert not manager.is_started

    async def test_serves_once(self) -> None:
        async with Manager(2, cls=TimedScheduler) as manager:
            pass
        with pytest.raises(SchedulerClosed):
            manager.start_after(1, anyio.sleep, 0)
        with pytest.raises(RuntimeError):
            async with manager:
                pass
        with pytest.raises(RuntimeError):
            await manager.run()

    async def test_start_facade(self, backend_name: str) -> None:
        log: list[int] = []
        manager = Manager(2, cls=QueuedScheduler)
        before = manager.start_soon(record, log, 0)
        if backend_name == "trio":
            with pytest.raises(RuntimeError, match=r"async with|nursery\.start"):
                manager.start()
            assert not manager.is_started
            await manager.aclose()
            assert before.cancelled()
            return
        manager.start()
        assert manager.is_started
        with pytest.raises(RuntimeError):
            manager.start()
        after = manager.start_soon(record, log, 1)
        await manager.join()
        assert sorted(log) == [0, 1]
        assert before.result() == 0
        assert after.result() == 1
        await manager.aclose()
        assert not manager.is_started
