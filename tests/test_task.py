"""``Task``, the handle every scheduling call returns, and the exception types.

A task goes pending -> running -> exactly one of finished / failed /
cancelled. ``result()`` / ``exception()`` on a task that is not done raise
``RuntimeError``; on a cancelled task, ``TaskCancelled``. Every behaviour is
checked on each scheduler kind and on every event loop path.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest

import aioscheduler
from aioscheduler import (
    LifoQueuedScheduler,
    QueuedScheduler,
    SchedulerClosed,
    SchedulerError,
    Task,
    TaskCancelled,
    TaskLimitReached,
    TimedScheduler,
)

Scheduler = TimedScheduler | QueuedScheduler
AsyncFn = Callable[..., Coroutine[Any, Any, Any]]

KINDS = ["timed", "queued", "lifo"]


def make(kind: str, **options: Any) -> Scheduler:
    if kind == "timed":
        return TimedScheduler(**options)
    if kind == "queued":
        return QueuedScheduler(**options)
    assert kind == "lifo"
    return LifoQueuedScheduler(**options)


def submit(scheduler: Scheduler, async_fn: AsyncFn, *args: Any) -> Task[Any]:
    """Schedule ``async_fn(*args)`` to run as soon as possible."""
    if isinstance(scheduler, TimedScheduler):
        return scheduler.start_after(0, async_fn, *args)
    return scheduler.start_soon(async_fn, *args)


def submit_coro(scheduler: Scheduler, coro: Coroutine[Any, Any, Any]) -> Task[Any]:
    """Schedule the coroutine object *coro* (1.x form) to run soon."""
    if isinstance(scheduler, TimedScheduler):
        return scheduler.schedule(coro, datetime.now(UTC) + timedelta(seconds=1))
    return scheduler.schedule(coro)


async def returns(value: Any) -> Any:
    return value


async def raises(exc: BaseException) -> None:
    raise exc


async def occupy(scheduler: QueuedScheduler) -> anyio.Event:
    """Start a job that keeps the queued scheduler's one runner busy.

    Jobs scheduled after this stay pending until the returned event is set.
    """
    started = anyio.Event()
    release = anyio.Event()

    async def blocker() -> None:
        started.set()
        await release.wait()

    scheduler.start_soon(blocker)
    await started.wait()
    return release


class Collect:
    """An ``on_error`` handler that keeps what it is given (and logs nothing)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Task[Any], Exception]] = []

    def __call__(self, task: Task[Any], exc: Exception) -> None:
        self.calls.append((task, exc))


def assert_not_done(task: Task[Any]) -> None:
    assert task.done() is False
    assert task.cancelled() is False
    with pytest.raises(RuntimeError) as info:
        task.result()
    assert not isinstance(info.value, TaskCancelled)
    with pytest.raises(RuntimeError):
        task.exception()


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


class TestTaskStates:
    async def test_pending(self, kind: str) -> None:
        async with make(kind) as scheduler:
            if isinstance(scheduler, TimedScheduler):
                task = scheduler.start_after(100, returns, 1)
            else:
                await occupy(scheduler)
                task = scheduler.start_soon(returns, 1)
            assert_not_done(task)
            await scheduler.aclose()

    async def test_pending_before_start(self, kind: str) -> None:
        scheduler = make(kind)
        task = submit(scheduler, returns, 1)
        await anyio.sleep(10)
        assert_not_done(task)
        async with scheduler:
            pass
        assert task.result() == 1

    async def test_running(self, kind: str) -> None:
        seen_inside: list[bool] = []
        handle: list[Task[Any]] = []
        release = anyio.Event()

        async def job() -> str:
            own = handle[0]
            seen_inside.append(own.done())
            with pytest.raises(RuntimeError):
                own.result()
            with pytest.raises(RuntimeError):
                own.exception()
            await release.wait()
            return "ok"

        async with make(kind) as scheduler:
            handle.append(submit(scheduler, job))
            await anyio.sleep(1)
            assert_not_done(handle[0])
            release.set()
        assert seen_inside == [False]
        assert handle[0].result() == "ok"

    @pytest.mark.parametrize("value", [42, None, "text", (1, 2)])
    async def test_finished(self, kind: str, value: Any) -> None:
        async with make(kind) as scheduler:
            task = submit(scheduler, returns, value)
        assert task.done() is True
        assert task.cancelled() is False
        assert task.result() == value
        assert task.exception() is None
        assert await task.wait() == value

    async def test_finished_result_is_the_same_object(self, kind: str) -> None:
        value = object()
        async with make(kind) as scheduler:
            task = submit(scheduler, returns, value)
            coro_task = submit_coro(scheduler, returns(value))
        assert task.result() is value
        assert coro_task.result() is value

    async def test_failed(self, kind: str) -> None:
        on_error = Collect()
        error = KeyError("boom")
        async with make(kind, on_error=on_error) as scheduler:
            task = submit(scheduler, raises, error)
        assert task.done() is True
        assert task.cancelled() is False
        assert task.exception() is error
        with pytest.raises(KeyError) as info:
            task.result()
        assert info.value is error
        with pytest.raises(KeyError) as info:
            await task.wait()
        assert info.value is error
        assert on_error.calls == [(task, error)]

    async def test_failed_with_default_logging(
        self, kind: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        error = ZeroDivisionError("nope")
        async with make(kind) as scheduler:
            task = submit(scheduler, raises, error)
        assert task.exception() is error
        assert any(record.exc_info for record in caplog.records)

    async def test_cancelled_while_pending(self, kind: str) -> None:
        async with make(kind) as scheduler:
            if isinstance(scheduler, TimedScheduler):
                task = scheduler.start_after(100, returns, 1)
            else:
                release = await occupy(scheduler)
                task = scheduler.start_soon(returns, 1)
                release.set()
            assert task.cancel() is True
            assert_cancelled(task)
        assert_cancelled(task)

    async def test_cancelled_while_running(self, kind: str) -> None:
        started = anyio.Event()

        async def job() -> None:
            started.set()
            await anyio.sleep_forever()

        async with make(kind) as scheduler:
            task = submit(scheduler, job)
            await started.wait()
            assert task.cancel() is True
            with pytest.raises(TaskCancelled):
                await task.wait()
        assert_cancelled(task)

    async def test_cancelled_by_aclose(self, kind: str) -> None:
        started = anyio.Event()

        async def job() -> None:
            started.set()
            await anyio.sleep_forever()

        scheduler = make(kind)
        async with scheduler:
            running = submit(scheduler, job)
            await started.wait()
            if isinstance(scheduler, TimedScheduler):
                pending = scheduler.start_after(100, returns, 1)
            else:
                pending = scheduler.start_soon(returns, 1)
            await scheduler.aclose()
        assert_cancelled(running)
        assert_cancelled(pending)

    async def test_terminal_state_does_not_change(self, kind: str) -> None:
        on_error = Collect()
        async with make(kind, on_error=on_error) as scheduler:
            finished = submit(scheduler, returns, 1)
            failed = submit(scheduler, raises, ValueError("x"))
            await finished.wait()
            with pytest.raises(ValueError, match=r"^x$"):
                await failed.wait()
            assert finished.cancel() is False
            assert failed.cancel() is False
        assert finished.result() == 1
        assert not finished.cancelled()
        assert isinstance(failed.exception(), ValueError)
        assert not failed.cancelled()


def assert_cancelled(task: Task[Any]) -> None:
    assert task.done() is True
    assert task.cancelled() is True
    with pytest.raises(TaskCancelled):
        task.result()
    with pytest.raises(TaskCancelled):
        task.exception()
    assert task.cancel() is False


class TestWait:
    async def test_wait_returns_the_result(self, kind: str) -> None:
        async with make(kind) as scheduler:
            t0 = anyio.current_time()
            if isinstance(scheduler, TimedScheduler):
                task = scheduler.start_after(30, returns, "r")
            else:
                task = scheduler.start_soon(returns, "r")
            assert await task.wait() == "r"
            if isinstance(scheduler, TimedScheduler):
                assert anyio.current_time() >= t0 + 30

    async def test_wait_raises_the_job_exception(self, kind: str) -> None:
        error = OSError("disk")
        async with make(kind, on_error=Collect()) as scheduler:
            task = submit(scheduler, raises, error)
            with pytest.raises(OSError, match="disk") as info:
                await task.wait()
        assert info.value is error

    async def test_wait_on_cancelled_raises_task_cancelled(self, kind: str) -> None:
        async with make(kind) as scheduler:
            release = anyio.Event()
            if isinstance(scheduler, TimedScheduler):
                task = scheduler.start_after(100, returns, 1)
            else:
                release = await occupy(scheduler)
                task = scheduler.start_soon(returns, 1)
            waiters_saw: list[BaseException] = []

            async def waiter() -> None:
                try:
                    await task.wait()
                except TaskCancelled as exc:
                    waiters_saw.append(exc)

            async with anyio.create_task_group() as tg:
                tg.start_soon(waiter)
                await anyio.lowlevel.checkpoint()
                assert task.cancel() is True
            release.set()
        assert len(waiters_saw) == 1
        assert isinstance(waiters_saw[0], SchedulerError)
        assert not isinstance(waiters_saw[0], anyio.get_cancelled_exc_class())

    async def test_many_waiters(self, kind: str) -> None:
        results: list[Any] = []
        release = anyio.Event()

        async def job() -> str:
            await release.wait()
            return "shared"

        async def waiter(task: Task[Any]) -> None:
            results.append(await task.wait())

        async with make(kind) as scheduler:
            task = submit(scheduler, job)
            async with anyio.create_task_group() as tg:
                for _ in range(5):
                    tg.start_soon(waiter, task)
                await anyio.sleep(1)
                assert results == []
                release.set()
        assert results == ["shared"] * 5

    async def test_wait_when_done_returns_at_once(self, kind: str) -> None:
        async with make(kind) as scheduler:
            task = submit(scheduler, returns, 5)
        t0 = anyio.current_time()
        assert await task.wait() == 5
        assert await task.wait() == 5
        assert anyio.current_time() == t0

    async def test_cancelling_the_waiter_leaves_the_task_alone(self, kind: str) -> None:
        release = anyio.Event()

        async def job() -> str:
            await release.wait()
            return "done"

        async with make(kind) as scheduler:
            task = submit(scheduler, job)
            with anyio.move_on_after(5) as scope:
                await task.wait()
            assert scope.cancelled_caught
            assert not task.done()
            release.set()
            assert await task.wait() == "done"
        assert not task.cancelled()

    async def test_wait_for_job_scheduled_before_start(self, kind: str) -> None:
        scheduler = make(kind)
        task = submit(scheduler, returns, "early")
        async with scheduler:
            assert await task.wait() == "early"


class TestUuid:
    async def test_is_uuid_and_stable(self, kind: str) -> None:
        async with make(kind) as scheduler:
            task = submit(scheduler, returns, 1)
            first = task.uuid
            assert isinstance(first, uuid.UUID)
            assert task.uuid == first
            await task.wait()
            assert task.uuid == first
        assert task.uuid == first
        assert str(task.uuid) == str(first)

    async def test_distinct_per_task(self, kind: str) -> None:
        other = make("timed")
        async with make(kind) as scheduler, other:
            tasks = [submit(scheduler, returns, i) for i in range(200)]
            tasks += [submit_coro(scheduler, returns(i)) for i in range(50)]
            tasks += [submit(other, returns, i) for i in range(50)]
        ids = [task.uuid for task in tasks]
        assert len(set(ids)) == len(ids)
        assert all(isinstance(value, uuid.UUID) for value in ids)


class TestCallback:
    async def test_callable_forms_keep_the_function(self, kind: str) -> None:
        async with make(kind) as scheduler:
            if isinstance(scheduler, TimedScheduler):
                tasks = [
                    scheduler.start_after(1, returns, 1),
                    scheduler.start_after(timedelta(seconds=1), returns, 2),
                    scheduler.start_at(
                        datetime.now(UTC) + timedelta(seconds=1), returns, 3
                    ),
                ]
            else:
                tasks = [scheduler.start_soon(returns, 1)]
            for task in tasks:
                assert task.callback is returns
            await scheduler.join()
            for task in tasks:
                assert task.callback is returns

    async def test_coroutine_form_keeps_the_coroutine(self, kind: str) -> None:
        async with make(kind) as scheduler:
            coro = returns("c")
            task = submit_coro(scheduler, coro)
            assert task.callback is coro
        assert task.callback is coro
        assert task.result() == "c"

    async def test_bound_method_callback(self, kind: str) -> None:
        class Worker:
            async def work(self, n: int) -> int:
                return n * 2

        worker = Worker()
        async with make(kind) as scheduler:
            task = submit(scheduler, worker.work, 21)
            assert task.callback == worker.work
        assert task.result() == 42


class TestPriority:
    @pytest.mark.parametrize("cls", [QueuedScheduler, LifoQueuedScheduler])
    async def test_queued_priority_increases_in_scheduling_order(
        self, cls: type[QueuedScheduler]
    ) -> None:
        async with cls() as scheduler:
            tasks = []
            for i in range(20):
                if i % 2:
                    tasks.append(scheduler.start_soon(returns, i))
                else:
                    tasks.append(scheduler.schedule(returns(i)))
            priorities = [task.priority for task in tasks]
        for priority in priorities:
            assert type(priority) is int
        assert priorities == sorted(priorities)
        assert len(set(priorities)) == len(priorities)
        assert [task.priority for task in tasks] == priorities  # stable

    @pytest.mark.parametrize("cls", [QueuedScheduler, LifoQueuedScheduler])
    async def test_queued_priority_is_per_scheduler(
        self, cls: type[QueuedScheduler]
    ) -> None:
        async with cls() as one, cls() as two:
            a = [one.start_soon(returns, i) for i in range(3)]
            b = [two.start_soon(returns, i) for i in range(3)]
            a += [one.start_soon(returns, i) for i in range(3)]
            b += [two.start_soon(returns, i) for i in range(3)]
        # Each scheduler numbers its own jobs: the same sequence for both.
        pa = [t.priority for t in a if type(t.priority) is int]
        pb = [t.priority for t in b if type(t.priority) is int]
        assert len(pa) == len(pb) == 6
        assert pa == pb
        assert len(set(pa)) == len(pa)
        assert pa == sorted(p for p in pa if isinstance(p, int))

    async def test_timed_priority_is_a_datetime(self) -> None:
        async with TimedScheduler() as scheduler:
            when = datetime.now(UTC) + timedelta(minutes=1)
            task = scheduler.start_at(when, returns, 1)
            later = scheduler.start_after(120, returns, 2)
            assert task.priority is when
            assert isinstance(later.priority, datetime)
            assert later.priority > when
            await scheduler.aclose()

    async def test_when_is_none_for_queued_jobs(self, kind: str) -> None:
        async with make(kind) as scheduler:
            task = submit(scheduler, returns, 1)
            if kind == "timed":
                assert isinstance(task.when, datetime)
            else:
                assert task.when is None


class TestRepr:
    async def test_repr_follows_the_state(self, kind: str) -> None:
        release = anyio.Event()

        async def slow_job() -> None:
            await release.wait()

        async with make(kind) as scheduler:
            task = submit(scheduler, slow_job)
            text = repr(task)
            assert text.startswith("<Task")
            assert "slow_job" in text
            assert "pending" in text
            await anyio.sleep(1)
            assert "running" in repr(task)
            release.set()
            await task.wait()
            assert "finished" in repr(task)
            assert "slow_job" in repr(task)

    async def test_repr_failed_and_cancelled(self, kind: str) -> None:
        async with make(kind, on_error=Collect()) as scheduler:
            failed = submit(scheduler, raises, RuntimeError("x"))
            with pytest.raises(RuntimeError):
                await failed.wait()
            if isinstance(scheduler, TimedScheduler):
                cancelled = scheduler.start_after(10, returns, 1)
            else:
                release = await occupy(scheduler)
                cancelled = scheduler.start_soon(returns, 1)
                release.set()
            cancelled.cancel()
        assert "failed" in repr(failed)
        assert "raises" in repr(failed)
        assert "cancelled" in repr(cancelled)

    async def test_repr_of_coroutine_form(self, kind: str) -> None:
        async with make(kind) as scheduler:
            task = submit_coro(scheduler, returns(1))
            assert "returns" in repr(task)
            assert "pending" in repr(task)

    async def test_repr_shows_sequence_or_due_time(self) -> None:
        async with QueuedScheduler() as scheduler:
            task = scheduler.start_soon(returns, 1)
            assert f"seq={task.priority!r}>" in repr(task)
        async with TimedScheduler() as timed:
            when = datetime(2100, 12, 4, 18, 16, 22, 537000, tzinfo=UTC)
            timed_task = timed.start_at(when, returns, 1)
            assert repr(timed_task) == (
                "<Task returns(1) pending due=2100-12-04T18:16:22.537Z>"
            )
            timed_task.cancel()


class TestExceptionTypes:
    def test_hierarchy(self) -> None:
        assert issubclass(SchedulerError, Exception)
        assert issubclass(TaskLimitReached, SchedulerError)
        assert issubclass(TaskLimitReached, ValueError)
        assert issubclass(SchedulerClosed, SchedulerError)
        assert issubclass(SchedulerClosed, RuntimeError)
        assert issubclass(TaskCancelled, SchedulerError)

    async def test_task_cancelled_is_not_the_loop_cancellation(self) -> None:
        cancelled_exc = anyio.get_cancelled_exc_class()
        assert not issubclass(TaskCancelled, cancelled_exc)
        assert not issubclass(cancelled_exc, TaskCancelled)

    def test_exported(self) -> None:
        for name in (
            "Task",
            "SchedulerError",
            "TaskLimitReached",
            "SchedulerClosed",
            "TaskCancelled",
        ):
            assert getattr(aioscheduler, name) is not None
        assert aioscheduler.Task is Task
        assert isinstance(aioscheduler.__version__, str)
