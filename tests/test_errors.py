"""Errors raised by jobs: logging, ``on_error``, ``"raise"``, BaseExceptions."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from aioscheduler import (
    LifoQueuedScheduler,
    Manager,
    QueuedScheduler,
    Task,
    TaskCancelled,
    TimedScheduler,
)
from tests._engines import portable, use_engine

Scheduler = TimedScheduler | QueuedScheduler
AsyncFn = Callable[..., Coroutine[Any, Any, Any]]
BackendParam = tuple[str, dict[str, Any]]


class Boom(Exception):
    """What the failing jobs raise."""


def leaves(exc: BaseException) -> list[BaseException]:
    """Return the exceptions in *exc*, looking through (nested) groups."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


def add(scheduler: Any, async_fn: AsyncFn, *args: Any) -> Task[Any]:
    """Schedule a job to run as soon as possible (callable form).

    *scheduler* is a scheduler or a Manager.
    """
    kind = scheduler.schedulers[0] if isinstance(scheduler, Manager) else scheduler
    task: Task[Any]
    if isinstance(kind, TimedScheduler):
        task = scheduler.start_after(0, async_fn, *args)
    else:
        task = scheduler.start_soon(async_fn, *args)
    return task


def aioscheduler_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "aioscheduler"]


async def fail(exc: BaseException) -> None:
    await anyio.lowlevel.checkpoint()
    raise exc


async def succeed(log: list[str], name: str) -> str:
    await anyio.sleep(1)
    log.append(name)
    return name


@pytest.fixture(
    params=[TimedScheduler, QueuedScheduler, LifoQueuedScheduler],
    ids=["timed", "queued", "lifo"],
)
def kind(request: pytest.FixtureRequest) -> type[Scheduler]:
    cls: type[Scheduler] = request.param
    return cls


class TestDefaultLogging:
    async def test_failure_logged_with_traceback_and_task(
        self, kind: type[Scheduler], caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.ERROR, logger="aioscheduler")
        error = Boom("job failed")
        log: list[str] = []
        async with kind() as scheduler:
            before = add(scheduler, succeed, log, "before")
            failing = add(scheduler, fail, error)
            after = add(scheduler, succeed, log, "after")
        records = aioscheduler_records(caplog)
        assert len(records) == 1
        (record,) = records
        assert record.levelno == logging.ERROR
        assert record.exc_info is not None
        assert record.exc_info[1] is error
        assert repr(failing) in record.getMessage()
        assert failing.done()
        assert not failing.cancelled()
        assert failing.exception() is error
        with pytest.raises(Boom) as excinfo:
            failing.result()
        assert excinfo.value is error
        with pytest.raises(Boom):
            await failing.wait()
        assert before.result() == "before"
        assert after.result() == "after"
        assert sorted(log) == ["after", "before"]

    async def test_manager_logs_too(self, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.ERROR, logger="aioscheduler")
        error = Boom("in a manager")
        async with Manager(2, cls=QueuedScheduler) as manager:
            failing = manager.start_soon(fail, error)
        (record,) = aioscheduler_records(caplog)
        assert record.exc_info is not None
        assert record.exc_info[1] is error
        assert repr(failing) in record.getMessage()
        assert failing.exception() is error


class TestOnErrorCallable:
    async def test_called_with_task_and_exception_instead_of_logging(
        self, kind: type[Scheduler], caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG, logger="aioscheduler")
        seen: list[tuple[Task[Any], Exception]] = []
        error = Boom("handled")
        log: list[str] = []

        def on_error(task: Task[Any], exc: Exception) -> None:
            seen.append((task, exc))

        async with kind(on_error=on_error) as scheduler:
            failing = add(scheduler, fail, error)
            ok = add(scheduler, succeed, log, "ok")
        assert seen == [(failing, error)]
        assert aioscheduler_records(caplog) == []
        assert failing.exception() is error
        assert ok.result() == "ok"

    async def test_task_already_done_when_called(self, kind: type[Scheduler]) -> None:
        states: list[tuple[bool, BaseException | None]] = []

        def on_error(task: Task[Any], exc: Exception) -> None:
            states.append((task.done(), task.exception()))

        error = Boom("x")
        async with kind(on_error=on_error) as scheduler:
            add(scheduler, fail, error)
        assert states == [(True, error)]

    async def test_raising_callback_is_logged_and_scheduler_goes_on(
        self, kind: type[Scheduler], caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.ERROR, logger="aioscheduler")
        callback_error = RuntimeError("handler broke")
        calls: list[Exception] = []

        def on_error(task: Task[Any], exc: Exception) -> None:
            calls.append(exc)
            raise callback_error

        errors = [Boom("first"), Boom("second")]
        log: list[str] = []
        async with kind(on_error=on_error) as scheduler:
            failing = [add(scheduler, fail, error) for error in errors]
            ok = add(scheduler, succeed, log, "ok")
            await scheduler.join()
            assert scheduler.is_started
            later = add(scheduler, succeed, log, "later")
        assert sorted(map(str, calls)) == ["first", "second"]
        records = aioscheduler_records(caplog)
        assert len(records) == 2
        for record in records:
            assert record.levelno == logging.ERROR
            assert record.exc_info is not None
            assert record.exc_info[1] is callback_error
        assert [task.exception() for task in failing] == errors
        assert ok.result() == "ok"
        assert later.result() == "later"

    def test_on_error_is_keyword_only(self) -> None:
        def on_error(task: Task[Any], exc: Exception) -> None:
            pass

        with pytest.raises(TypeError):
            TimedScheduler(None, True, on_error)  # type: ignore[call-arg]
        with pytest.raises(TypeError):
            QueuedScheduler(None, on_error)  # type: ignore[call-arg]

    @pytest.mark.parametrize("bad", [42, "log", "ignore"])
    def test_bad_on_error_refused_at_construction(self, bad: Any) -> None:
        with pytest.raises(TypeError):
            TimedScheduler(on_error=bad)
        with pytest.raises(TypeError):
            QueuedScheduler(on_error=bad)


class TestOnErrorRaise:
    async def test_async_with_raises_group_and_cancels_the_rest(
        self, kind: type[Scheduler], caplog: pytest.LogCaptureFixture
    ) -> None:
        error = Boom("strict")
        log: list[str] = []
        started = anyio.Event()
        tasks: dict[str, Task[Any]] = {}
        scheduler = kind(on_error="raise")

        async def block() -> None:
            started.set()
            try:
                await anyio.sleep_forever()
            finally:
                log.append("block cleanup")

        async def serve() -> None:
            async with scheduler:
                if isinstance(scheduler, TimedScheduler):
                    tasks["running"] = scheduler.start_after(0, block)
                    tasks["failing"] = scheduler.start_after(10, fail, error)
                    tasks["pending"] = scheduler.start_after(3600, succeed, log, "p")
                elif isinstance(scheduler, LifoQueuedScheduler):
                    tasks["pending"] = scheduler.start_soon(succeed, log, "p")
                    tasks["failing"] = scheduler.start_soon(fail, error)
                else:
                    tasks["failing"] = scheduler.start_soon(fail, error)
                    tasks["pending"] = scheduler.start_soon(succeed, log, "p")

        begin = anyio.current_time()
        with pytest.raises(ExceptionGroup) as excinfo:
            await serve()
        assert leaves(excinfo.value) == [error]
        assert tasks["failing"].exception() is error
        assert tasks["pending"].cancelled()
        assert "p" not in log
        if "running" in tasks:
            assert tasks["running"].cancelled()
            assert log == ["block cleanup"]
            assert started.is_set()
        assert anyio.current_time() - begin < 60
        assert not scheduler.is_started
        assert aioscheduler_records(caplog) == []

    async def test_run_raises_exception_group(self, kind: type[Scheduler]) -> None:
        error = Boom("from run")
        scheduler = kind(on_error="raise")
        failing = (
            scheduler.start_after(5, fail, error)
            if isinstance(scheduler, TimedScheduler)
            else scheduler.start_soon(fail, error)
        )
        with pytest.raises(ExceptionGroup) as excinfo:
            await scheduler.run()
        assert leaves(excinfo.value) == [error]
        assert failing.exception() is error
        assert not scheduler.is_started

    async def test_task_group_start_run_propagates(self, kind: type[Scheduler]) -> None:
        error = Boom("via task group")
        scheduler = kind(on_error="raise")
        other_cancelled = False
        tasks: list[Task[Any]] = []

        async def serve() -> None:
            nonlocal other_cancelled
            async with anyio.create_task_group() as group:
                await group.start(scheduler.run)
                tasks.append(add(scheduler, fail, error))
                try:
                    await anyio.sleep_forever()
                finally:
                    other_cancelled = True

        with pytest.raises(ExceptionGroup) as excinfo:
            await serve()
        assert leaves(excinfo.value) == [error]
        assert tasks[0].exception() is error
        assert other_cancelled

    async def test_manager_raise_cancels_every_scheduler(self) -> None:
        error = Boom("manager strict")
        log: list[str] = []
        manager = Manager(3, cls=TimedScheduler, on_error="raise")
        slow: list[Task[Any]] = []

        failing: list[Task[Any]] = []

        async def serve() -> None:
            async with manager:
                slow.extend(
                    manager.start_after(100, succeed, log, "s") for _ in range(5)
                )
                failing.append(manager.start_after(10, fail, error))

        with pytest.raises(ExceptionGroup) as excinfo:
            await serve()
        assert leaves(excinfo.value) == [error]
        assert failing[0].exception() is error
        assert all(task.cancelled() for task in slow)
        assert not manager.is_started
        assert log == []

    async def test_no_failure_exits_normally(self, kind: type[Scheduler]) -> None:
        log: list[str] = []
        async with kind(on_error="raise") as scheduler:
            task = add(scheduler, succeed, log, "fine")
        assert task.result() == "fine"


class TestOneFailureStopsNothing:
    async def test_many_failures_among_many_jobs(
        self, kind: type[Scheduler], caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.ERROR, logger="aioscheduler")
        log: list[str] = []
        tasks: list[tuple[bool, Task[Any]]] = []
        async with kind() as scheduler:
            for n in range(30):
                if n % 3 == 0:
                    tasks.append((False, add(scheduler, fail, Boom(str(n)))))
                else:
                    tasks.append((True, add(scheduler, succeed, log, str(n))))
        assert len(log) == 20
        for ok, task in tasks:
            if ok:
                assert task.exception() is None
            else:
                assert isinstance(task.exception(), Boom)
        assert len(aioscheduler_records(caplog)) == 10

    async def test_failure_does_not_cancel_a_concurrent_timed_job(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.ERROR, logger="aioscheduler")
        log: list[str] = []

        async def long() -> str:
            await anyio.sleep(100)
            log.append("long")
            return "long"

        async with TimedScheduler() as scheduler:
            long_task = scheduler.start_after(0, long)
            failing = scheduler.start_after(10, fail, Boom("meanwhile"))
            later = scheduler.start_after(50, succeed, log, "later")
        assert long_task.result() == "long"
        assert later.result() == "later"
        assert isinstance(failing.exception(), Boom)

    async def test_manager_of_queued_keeps_going(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.ERROR, logger="aioscheduler")
        log: list[str] = []
        async with Manager(2, cls=QueuedScheduler) as manager:
            for n in range(4):
                manager.start_soon(fail, Boom(str(n)))
                manager.start_soon(succeed, log, str(n))
        assert sorted(log) == ["0", "1", "2", "3"]


# -- KeyboardInterrupt and SystemExit -----------------------------------------


def run_until_base_exception(
    anyio_backend: BackendParam, kind: type[Scheduler], exc: BaseException
) -> tuple[BaseException, Task[Any], Task[Any]]:
    """Run a scheduler whose job raises *exc*; return what escaped and tasks."""
    name, options = anyio_backend
    tasks: list[Task[Any]] = []

    async def main() -> None:
        async with kind() as scheduler:
            if isinstance(scheduler, TimedScheduler):
                tasks.append(scheduler.start_after(0, fail, exc))
                tasks.append(scheduler.start_after(3600, anyio.sleep, 0))
            elif isinstance(scheduler, LifoQueuedScheduler):
                other = scheduler.start_soon(anyio.sleep, 0)
                tasks.extend([scheduler.start_soon(fail, exc), other])
            else:
                tasks.append(scheduler.start_soon(fail, exc))
                tasks.append(scheduler.start_soon(anyio.sleep, 0))

    with pytest.raises(BaseException) as excinfo:  # noqa: PT011
        anyio.run(main, backend=name, backend_options=options)
    return excinfo.value, tasks[0], tasks[1]


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
class TestBaseExceptions:
    def test_propagates_out_of_the_loop_and_task_records_it(
        self,
        anyio_backend: BackendParam,
        kind: type[Scheduler],
        exc_type: type[BaseException],
    ) -> None:
        exc = exc_type()
        escaped, failing, other = run_until_base_exception(anyio_backend, kind, exc)
        native = anyio_backend[0] == "asyncio" and not portable()
        if native:
            # Native asyncio engine: out of the event loop as itself.
            assert escaped is exc
        else:
            assert leaves(escaped) == [exc]
        assert failing.done()
        assert not failing.cancelled()
        assert failing.exception() is exc
        with pytest.raises(exc_type):
            failing.result()
        # The job that never got to run did not run.
        assert not other.done() or other.cancelled()

    @pytest.mark.parametrize("engine", ["native", "anyio"])
    def test_facade_propagates_out_of_asyncio_run(
        self,
        monkeypatch: pytest.MonkeyPatch,
        kind: type[Scheduler],
        exc_type: type[BaseException],
        engine: str,
    ) -> None:
        use_engine(monkeypatch, engine)
        exc = exc_type()
        tasks: list[Task[Any]] = []

        async def main() -> None:
            scheduler = kind()
            scheduler.start()
            tasks.append(add(scheduler, fail, exc))
            # The job is due at once and the exception ends the loop there;
            # the sleep only bounds a failure (it never decides a pass).
            await asyncio.sleep(30)

        with pytest.raises(BaseException) as excinfo:  # noqa: PT011
            asyncio.run(main())
        # Finalize the task asyncio left holding the exception ("exception
        # was never retrieved") now, not at some later test's collection.
        gc.collect()
        if engine == "native":
            assert excinfo.value is exc
        else:
            assert leaves(excinfo.value) == [exc]
        assert tasks[0].exception() is exc


class TestCancelledIsNotAnError:
    async def test_cancelled_job_is_neither_logged_nor_reported(
        self, kind: type[Scheduler], caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG, logger="aioscheduler")
        seen: list[Exception] = []
        started = anyio.Event()

        async def block() -> None:
            started.set()
            await anyio.sleep_forever()

        async with kind(on_error=lambda task, exc: seen.append(exc)) as scheduler:
            task = add(scheduler, block)
            await started.wait()
            assert task.cancel() is True
            with pytest.raises(TaskCancelled):
                await task.wait()
        assert seen == []
        assert aioscheduler_records(caplog) == []
