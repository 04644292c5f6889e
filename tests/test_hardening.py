"""Regression tests for the defects a deep review and a newcomer found.

Each test failed before its fix. Async tests run on every path of
``conftest.py`` in virtual time; the few that need a particular loop set-up
(an eager task factory, two loops in one thread) run it themselves.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import traceback
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from aioscheduler import (
    LifoQueuedScheduler,
    Manager,
    QueuedScheduler,
    Task,
    TimedScheduler,
)
from tests._engines import use_engine
from tests.conftest import HAVE_LOOPTIME

AsyncFn = Callable[..., Coroutine[Any, Any, Any]]


class Boom(Exception):
    """What failing jobs raise."""


def leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


async def fail(exc: BaseException) -> None:
    await anyio.lowlevel.checkpoint()
    raise exc


# -- 1. no queued job starts after a failure under on_error="raise" -----------


@pytest.mark.parametrize("cls", [QueuedScheduler, LifoQueuedScheduler])
async def test_queued_raise_starts_no_later_job(cls: type[QueuedScheduler]) -> None:
    started: list[int] = []

    async def job(n: int) -> None:
        started.append(n)

    async def fail_now() -> None:
        raise Boom("first")  # no checkpoint: the next job would follow at once

    scheduler = cls(on_error="raise")
    others: list[Task[Any]] = []
    failing: list[Task[Any]] = []

    async def serve() -> None:
        async with scheduler:
            if cls is LifoQueuedScheduler:
                others.extend(scheduler.start_soon(job, n) for n in range(3))
                failing.append(scheduler.start_soon(fail_now))
            else:
                failing.append(scheduler.start_soon(fail_now))
                others.extend(scheduler.start_soon(job, n) for n in range(3))

    with pytest.raises(ExceptionGroup) as info:
        await serve()
    assert [type(e) for e in leaves(info.value)] == [Boom]
    assert failing[0].exception() is not None
    assert started == []
    assert all(task.cancelled() for task in others)


async def test_timed_raise_starts_no_later_job() -> None:
    started: list[int] = []

    async def job(n: int) -> None:
        started.append(n)

    async def fail_now() -> None:
        raise Boom("first")

    later: list[Task[Any]] = []

    async def serve() -> None:
        async with TimedScheduler(on_error="raise") as scheduler:
            scheduler.start_after(1, fail_now)
            later.extend(scheduler.start_after(1 + n, job, n) for n in range(1, 4))

    with pytest.raises(ExceptionGroup):
        await serve()
    assert started == []
    assert all(task.cancelled() for task in later)


# -- 3. on_error="raise" keeps every failure -----------------------------------


async def fail_when_cancelled(exc: BaseException) -> None:
    try:
        await anyio.sleep_forever()
    finally:
        raise exc


async def test_every_failure_surfaces_flat_from_async_with() -> None:
    """The first failure cancels the others, whose cleanup fails too: all
    three surface, in one flat group, as from three children of a task group."""
    errors = [Boom(n) for n in range(3)]

    async def serve() -> None:
        async with TimedScheduler(on_error="raise") as scheduler:
            scheduler.start_after(0, fail_when_cancelled, errors[1])
            scheduler.start_after(0, fail_when_cancelled, errors[2])
            scheduler.start_after(1, fail, errors[0])

    with pytest.raises(ExceptionGroup) as info:
        await serve()
    assert info.value.exceptions[0] is errors[0]
    assert set(info.value.exceptions) == set(errors)


async def test_every_failure_surfaces_from_run() -> None:
    errors = [Boom(n) for n in range(3)]
    scheduler = TimedScheduler(on_error="raise")

    async def serve() -> None:
        async with anyio.create_task_group() as group:
            await group.start(scheduler.run)
            scheduler.start_after(0, fail_when_cancelled, errors[1])
            scheduler.start_after(0, fail_when_cancelled, errors[2])
            scheduler.start_after(1, fail, errors[0])

    with pytest.raises(ExceptionGroup) as info:
        await serve()
    assert set(leaves(info.value)) == set(errors)


async def test_manager_failures_all_surface() -> None:
    errors = [Boom(n) for n in range(3)]

    async def serve() -> None:
        async with Manager(3, on_error="raise") as manager:
            manager.start_after(0, fail_when_cancelled, errors[1])
            manager.start_after(0, fail_when_cancelled, errors[2])
            manager.start_after(1, fail, errors[0])

    with pytest.raises(ExceptionGroup) as info:
        await serve()
    assert set(leaves(info.value)) == set(errors)


async def test_failure_surfaces_when_cancelled_from_outside_meanwhile() -> None:
    """A job failed; while another finishes its shielded cleanup, the caller's
    deadline cancels the scheduler: the failure must still be raised."""
    error = Boom("lost?")

    async def slow_cleanup() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(10)

    async def serve() -> None:
        with anyio.move_on_after(5):
            async with TimedScheduler(on_error="raise") as scheduler:
                scheduler.start_after(0, slow_cleanup)
                scheduler.start_after(1, fail, error)

    with pytest.raises(ExceptionGroup) as info:
        await serve()
    assert leaves(info.value) == [error]


async def test_failure_surfaces_when_run_is_cancelled_meanwhile() -> None:
    error = Boom("lost?")
    scheduler = TimedScheduler(on_error="raise")

    async def slow_cleanup() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(10)

    async def serve() -> None:
        with anyio.move_on_after(5):
            async with anyio.create_task_group() as group:
                await group.start(scheduler.run)
                scheduler.start_after(0, slow_cleanup)
                scheduler.start_after(1, fail, error)

    with pytest.raises(ExceptionGroup) as info:
        await serve()
    assert leaves(info.value) == [error]


# -- 4. a job that swallows one cancel is cancelled again ----------------------


async def stubborn(log: list[str]) -> str:
    try:
        await anyio.sleep(100)
    except anyio.get_cancelled_exc_class():
        log.append("swallowed")
    await anyio.sleep(100)
    log.append("finished")
    return "finished"


@pytest.mark.parametrize("kind", ["timed", "queued"])
async def test_swallowed_cancel_is_delivered_again_on_aclose(kind: str) -> None:
    log: list[str] = []
    scheduler: Any = TimedScheduler() if kind == "timed" else QueuedScheduler()
    async with anyio.create_task_group() as group:
        await group.start(scheduler.run)
        if kind == "timed":
            task = scheduler.start_after(0, stubborn, log)
        else:
            task = scheduler.start_soon(stubborn, log)
        await anyio.sleep(1)
        begin = anyio.current_time()
        await scheduler.aclose()
        assert anyio.current_time() == begin  # at once, not after 100 s
    assert task.cancelled()
    assert log == ["swallowed"]


@pytest.mark.parametrize("kind", ["timed", "queued"])
async def test_swallowed_cancel_is_delivered_again_on_task_cancel(kind: str) -> None:
    log: list[str] = []
    async with TimedScheduler() if kind == "timed" else QueuedScheduler() as s:
        scheduler: Any = s
        if kind == "timed":
            task = scheduler.start_after(0, stubborn, log)
        else:
            task = scheduler.start_soon(stubborn, log)
        await anyio.sleep(1)
        begin = anyio.current_time()
        assert task.cancel()
        with pytest.raises(Exception, match="cancelled"):
            await task.wait()
        assert anyio.current_time() == begin
    assert task.cancelled()
    assert log == ["swallowed"]


async def test_shielded_cleanup_after_swallowed_cancel_still_completes() -> None:
    log: list[str] = []

    async def careful() -> None:
        try:
            await anyio.sleep(100)
        except anyio.get_cancelled_exc_class():
            log.append("swallowed")
        with anyio.CancelScope(shield=True):
            await anyio.sleep(2)
            log.append("cleaned up")
        await anyio.sleep(100)
        log.append("ran on")

    async with TimedScheduler() as scheduler:
        task = scheduler.start_after(0, careful)
        await anyio.sleep(1)
        task.cancel()
    assert task.cancelled()
    assert log == ["swallowed", "cleaned up"]


# -- 2. eager task factory (asyncio, Python 3.12+) ----------------------------


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager tasks are 3.12+")
@pytest.mark.skipif(not HAVE_LOOPTIME, reason="needs looptime for virtual time")
@pytest.mark.parametrize("engine", ["native", "anyio"])
@pytest.mark.parametrize("kind", ["timed", "queued", "manager"])
def test_eager_task_factory(
    monkeypatch: pytest.MonkeyPatch, engine: str, kind: str
) -> None:
    import looptime

    use_engine(monkeypatch, engine)

    def eager_loop() -> asyncio.AbstractEventLoop:
        loop: asyncio.AbstractEventLoop = looptime.new_event_loop(start=1000.0)
        loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined]
        return loop

    async def at_once(n: int) -> int:
        return n * 10  # ends inside create_task under an eager factory

    async def later(n: int) -> int:
        await anyio.sleep(1)
        return n * 100

    async def cancel_self(holder: list[Task[Any]]) -> None:
        holder[0].cancel()
        await anyio.sleep(1)

    results: dict[str, Any] = {}

    async def main() -> None:
        with anyio.fail_after(60):
            front: Any = (
                TimedScheduler()
                if kind == "timed"
                else QueuedScheduler()
                if kind == "queued"
                else Manager(2)
            )
            async with front:
                add = (
                    front.start_soon
                    if kind == "queued"
                    else lambda fn, *a: front.start_after(0, fn, *a)
                )
                fast = [add(at_once, n) for n in range(5)]
                slow = [add(later, n) for n in range(5)]
                holder: list[Task[Any]] = []
                holder.append(add(cancel_self, holder))
        results["fast"] = [t.result() for t in fast]
        results["slow"] = [t.result() for t in slow]
        results["self"] = holder[0].cancelled()

    anyio.run(main, backend="asyncio", backend_options={"loop_factory": eager_loop})
    assert results == {
        "fast": [0, 10, 20, 30, 40],
        "slow": [0, 100, 200, 300, 400],
        "self": True,
    }


# -- 6. delays a datetime cannot hold ------------------------------------------


async def test_huge_delay_refused_at_the_call() -> None:
    async def job() -> None:
        pass

    async with TimedScheduler() as scheduler:
        with pytest.raises(ValueError, match="9999-12-31"):
            scheduler.start_after(1e12, job)
        with pytest.raises(ValueError, match="9999-12-31"):
            scheduler.start_after(timedelta(days=3_000_000), job)
        far = scheduler.start_after(timedelta(days=365 * 7000), job)
        assert far.when is not None
        assert far.when.year > 8000
        assert "pending" in repr(far)
        far.cancel()


# -- 8. an async on_error ------------------------------------------------------


def test_async_on_error_refused() -> None:
    async def handler(task: Task[Any], exc: Exception) -> None:
        pass

    class AsyncCallable:
        async def __call__(self, task: Task[Any], exc: Exception) -> None:
            pass

    for bad in (handler, AsyncCallable()):
        with pytest.raises(TypeError, match="plain function"):
            TimedScheduler(on_error=bad)
        with pytest.raises(TypeError, match="plain function"):
            Manager(2, cls=QueuedScheduler, on_error=bad)


# -- 9. two event loops, one thread --------------------------------------------


def test_second_loop_in_the_same_thread_is_refused_at_the_call() -> None:
    scheduler = TimedScheduler()
    ran: list[str] = []

    async def job() -> None:
        ran.append("ran")

    async def first() -> None:
        async with scheduler:
            scheduler.start_after(0, job)

    async def second() -> None:
        scheduler2 = TimedScheduler()
        scheduler2.start_after(0, job).cancel()  # binds fine to this loop
        with pytest.raises(RuntimeError, match="belongs to another event loop"):
            unserved.start_after(0, job)

    unserved = TimedScheduler()

    async def bind_unserved() -> None:
        unserved.start_after(3600, job).cancel()

    asyncio.run(first())
    asyncio.run(bind_unserved())
    asyncio.run(second())
    assert ran == ["ran"]


# -- 10. smaller ones ----------------------------------------------------------


async def test_result_does_not_lengthen_the_traceback() -> None:
    async with TimedScheduler() as scheduler:
        task = scheduler.start_after(0, fail, Boom("x"))
    lengths = []
    for _ in range(4):
        try:
            task.result()
        except Boom as exc:
            lengths.append(len(traceback.extract_tb(exc.__traceback__)))
    assert len(set(lengths)) == 1, lengths


async def test_run_after_aclose_of_never_started_says_closed() -> None:
    scheduler = TimedScheduler()
    await scheduler.aclose()
    with pytest.raises(RuntimeError, match="closed before it started"):
        await scheduler.run()


@pytest.mark.parametrize("kind", ["timed", "queued", "manager"])
async def test_job_awaiting_its_own_join_raises(kind: str) -> None:
    errors: list[BaseException] = []
    front: Any = (
        TimedScheduler()
        if kind == "timed"
        else QueuedScheduler()
        if kind == "queued"
        else Manager(2)
    )

    async def waits_for_itself() -> None:
        try:
            await front.join()
        except RuntimeError as exc:
            errors.append(exc)

    with anyio.fail_after(60):
        async with front:
            if kind == "queued":
                front.start_soon(waits_for_itself)
            else:
                front.start_after(1, waits_for_itself)
    assert len(errors) == 1
    assert "own" in str(errors[0])


async def test_join_from_outside_still_waits() -> None:
    async with TimedScheduler() as scheduler:
        task = scheduler.start_after(5, anyio.sleep, 1)
        await scheduler.join()
        assert task.done()


def test_keyboard_interrupt_leaves_no_unretrieved_exception(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    use_engine(monkeypatch, "native")

    async def interrupt() -> None:
        raise KeyboardInterrupt

    async def main() -> None:
        async with TimedScheduler() as scheduler:
            scheduler.start_after(0, interrupt)

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        with pytest.raises(KeyboardInterrupt):
            asyncio.run(main())
        gc.collect()
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


async def test_cancel_of_a_non_task_is_a_type_error() -> None:
    async with TimedScheduler() as scheduler:
        with pytest.raises(TypeError, match="takes a Task"):
            scheduler.cancel("not a task")  # type: ignore[arg-type]
    async with Manager(2) as manager:
        with pytest.raises(TypeError, match="takes a Task"):
            manager.cancel("not a task")  # type: ignore[arg-type]


def test_prefer_utc_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="prefer_utc"):
        TimedScheduler(prefer_utc="no")  # type: ignore[arg-type]


# -- 11. silent mistakes -------------------------------------------------------


def test_unserved_scheduler_with_jobs_warns_when_destroyed() -> None:
    async def job() -> None:
        pass

    async def main() -> None:
        scheduler = TimedScheduler()
        scheduler.start_after(1, job)

    with pytest.warns(RuntimeWarning, match="1 pending job"):  # noqa: PT031
        asyncio.run(main())
        gc.collect()


def test_served_or_empty_scheduler_does_not_warn() -> None:
    async def main() -> None:
        empty = TimedScheduler()
        async with TimedScheduler() as served:
            served.start_after(0, anyio.sleep, 0)
        del empty, served
        gc.collect()

    asyncio.run(main())  # filterwarnings=error: any warning fails this


@pytest.mark.parametrize(
    ("prefer_utc", "reading"), [(True, "read as UTC"), (False, "local time")]
)
async def test_past_naive_time_says_how_it_was_read(
    prefer_utc: bool, reading: str
) -> None:
    async def job() -> None:
        pass

    async with TimedScheduler(prefer_utc=prefer_utc) as scheduler:
        past = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=5)
        if not prefer_utc:
            past = datetime.now() - timedelta(hours=5)
        with pytest.raises(ValueError, match="May only be in the future") as info:
            scheduler.start_at(past, job)
        message = str(info.value)
        assert reading in message
        assert "naive" in message
        seconds_past = float(message.split(" is ")[1].split(" s ")[0])
        assert 5 * 3600 <= seconds_past < 5 * 3600 + 60
        with pytest.raises(ValueError, match="in the past") as aware_info:
            scheduler.start_at(datetime.now(UTC) - timedelta(seconds=3), job)
        assert "naive" not in str(aware_info.value)


# -- found by review: cancellation after a shield; Trio's wrapped Cancelled -----


@pytest.mark.parametrize("kind", ["timed", "queued"])
async def test_cancel_lands_at_the_first_await_after_a_shield(kind: str) -> None:
    """Cancelled while shielded: the first unshielded await raises, on every
    engine (the native asyncio engine once let several complete)."""
    log: list[int] = []

    async def job() -> None:
        with anyio.CancelScope(shield=True):
            await anyio.sleep(1)
        for i in range(5):
            await anyio.sleep(0.001)
            log.append(i)

    front: Any = TimedScheduler() if kind == "timed" else QueuedScheduler()
    async with front:
        task = front.start_after(0, job) if kind == "timed" else front.start_soon(job)
        await anyio.sleep(0.5)
        begin = anyio.current_time()
        assert task.cancel()
    assert task.cancelled()
    assert log == []
    assert anyio.current_time() - begin == pytest.approx(0.5)


async def test_failure_in_cleanup_when_cancelled_from_outside_is_flat() -> None:
    """The job's cleanup fails while an outer deadline cancels the scheduler:
    one flat group, as a task group gives (Trio wraps its Cancelled in a
    group of its own, which must not nest the failures)."""
    error = Boom("cleanup")

    async def serve() -> None:
        with anyio.move_on_after(5):
            async with TimedScheduler(on_error="raise") as scheduler:
                scheduler.start_after(0, fail_when_cancelled, error)

    with pytest.raises(ExceptionGroup) as info:
        await serve()
    assert info.value.exceptions == (error,)


async def test_a_job_cancelled_alone_whose_child_fails_in_cleanup_fails_alone() -> None:
    # Its task group ends with its cancellation and the child's failure: the
    # failure is the job's outcome (reported), the cancellation goes no
    # further, and the other jobs run on (as on asyncio, so on every engine).
    reported: list[BaseException] = []

    async def child() -> None:
        try:
            await anyio.sleep(100)
        finally:
            raise ValueError("cleanup failed")

    async def job() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(child)
            await anyio.sleep(100)

    async with TimedScheduler(on_error=lambda task, exc: reported.append(exc)) as s:
        task = s.start_after(0, job)
        bystander = s.start_after(0, anyio.sleep, 50)
        await anyio.sleep(1)
        assert task.cancel()
        await s.join()
        assert bystander.done()
        assert not bystander.cancelled()
    failure = task.exception()
    assert isinstance(failure, ExceptionGroup)
    assert failure.split(ValueError)[1] is None
    assert reported == [failure]
