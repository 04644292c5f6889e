"""The native Trio engine's late cancel scopes, and its fallback to early ones.

A job spawned by the Trio engine runs without a cancel scope of its own and
gets one only when it is cancelled alone (``backends/_trio._late_scope``),
unless the once-per-process check finds that this Trio's cancel-status tree
does not behave as that expects: then every job gets its scope up front.
Each test runs both ways, in virtual time; the rest of the suite covers the
late way (the default) on every other cancellation test.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

trio = pytest.importorskip("trio")
trio_testing = pytest.importorskip("trio.testing")

from aioscheduler import QueuedScheduler, Task, TimedScheduler  # noqa: E402
from aioscheduler.backends import _trio  # noqa: E402


@pytest.fixture(params=["late", "early"])
def scopes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with late scopes (the default) and with scopes up front."""
    monkeypatch.setattr(_trio, "_late_scopes_checked", request.param == "late")
    return str(request.param)


def run(main: Callable[[], Awaitable[None]]) -> None:
    trio.run(main, clock=trio_testing.MockClock(autojump_threshold=0))


def test_the_check_passes_on_this_trio(monkeypatch: pytest.MonkeyPatch) -> None:
    # Otherwise every test below would test the fallback twice.
    monkeypatch.setattr(_trio, "_late_scopes_checked", None)
    results: list[bool] = []

    async def main() -> None:
        results.append(_trio._late_scopes_work())
        # The check leaves the task as it found it: it still sleeps and is
        # still cancellable.
        with trio.move_on_after(1) as scope:
            await trio.sleep(2)
        results.append(scope.cancelled_caught)

    run(main)
    assert results == [True, True]


def test_the_check_passes_when_its_caller_is_cancelled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The first engine may well be opened by a task being cancelled: that
    # must not turn late scopes off for the rest of the process.
    monkeypatch.setattr(_trio, "_late_scopes_checked", None)
    results: list[bool] = []

    async def main() -> None:
        with trio.CancelScope() as scope:
            scope.cancel()
            results.append(_trio._late_scopes_work())
            with pytest.raises(trio.Cancelled):
                await trio.sleep(0)  # still cancelled, as before the check
            results.append(True)

    run(main)
    assert results == [True, True]


def test_a_failing_check_means_scopes_up_front(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> bool:
        raise AttributeError("_cancel_status")

    monkeypatch.setattr(_trio, "_late_scopes_checked", None)
    monkeypatch.setattr(_trio, "_check_late_scopes", broken)
    seen: list[Any] = []

    async def main() -> None:
        async with TimedScheduler() as scheduler:
            engine = scheduler._engine
            seen.append(engine._late)  # type: ignore[union-attr]
            task = scheduler.start_after(0, trio.sleep, 10)
            await trio.sleep(1)
            task.cancel()
            await scheduler.join()
            seen.append(task.cancelled())

    run(main)
    assert seen == [False, True]


def test_cancel_one_running_job(scopes: str) -> None:
    ended: dict[int, float] = {}

    async def job(i: int) -> None:
        try:
            await trio.sleep(10)
        finally:
            ended[i] = trio.current_time()

    async def main() -> None:
        start = trio.current_time()
        async with TimedScheduler() as scheduler:
            tasks = [scheduler.start_after(0, job, i) for i in range(3)]
            await trio.sleep(1)
            assert tasks[1].cancel()
            assert tasks[1].cancel()  # again: still running, same scope
            await scheduler.join()
        assert [t.cancelled() for t in tasks] == [False, True, False]
        assert {i: t - start for i, t in ended.items()} == {0: 10, 1: 1, 2: 10}

    run(main)


def test_cancel_reaches_inside_the_jobs_own_scopes_and_nursery(scopes: str) -> None:
    ended: dict[str, float] = {}

    async def child() -> None:
        try:
            await trio.sleep(50)
        finally:
            ended["child"] = trio.current_time()

    async def job() -> None:
        try:
            # The job's own scope must not catch a cancellation that is not
            # its own, and its child must be cancelled with it.
            with trio.move_on_after(100):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(child)
                    await trio.sleep(50)
            ended["after move_on"] = trio.current_time()
        finally:
            ended["job"] = trio.current_time()

    async def main() -> None:
        start = trio.current_time()
        async with TimedScheduler() as scheduler:
            task = scheduler.start_after(0, job)
            await trio.sleep(3)
            task.cancel()
            await scheduler.join()
            assert task.cancelled()
        assert {k: v - start for k, v in ended.items()} == {"child": 3, "job": 3}

    run(main)


def test_a_shield_in_the_job_holds_the_cancel_off(scopes: str) -> None:
    times: list[float] = []

    async def job() -> None:
        with trio.CancelScope(shield=True):
            await trio.sleep(5)
        times.append(trio.current_time())
        await trio.sleep(100)

    async def main() -> None:
        start = trio.current_time()
        async with TimedScheduler() as scheduler:
            task = scheduler.start_after(0, job)
            await trio.sleep(1)
            task.cancel()
            await scheduler.join()
            assert task.cancelled()
            times.append(trio.current_time())
        assert [t - start for t in times] == [5, 5]

    run(main)


def test_cancel_while_the_job_waits_in_nursery_start(scopes: str) -> None:
    ended: dict[str, float] = {}

    async def child(name: str, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await trio.sleep(2)
            task_status.started()
            await trio.sleep(50)
        finally:
            ended[name + " child"] = trio.current_time()

    async def job(name: str) -> None:
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(child, name)
                await trio.sleep(50)
        finally:
            ended[name] = trio.current_time()

    async def main() -> None:
        start = trio.current_time()
        async with TimedScheduler() as scheduler:
            before = scheduler.start_after(0, job, "before")
            after = scheduler.start_after(0, job, "after")
            await trio.sleep(1)
            before.cancel()  # its child has not called started() yet
            await trio.sleep(2)
            after.cancel()  # its child has: it moved into the job's nursery
            await scheduler.join()
            assert before.cancelled()
            assert after.cancelled()
        assert {k: v - start for k, v in ended.items()} == {
            "before": 1,
            "before child": 1,
            "after": 3,
            "after child": 3,
        }

    run(main)


def test_a_job_cancels_itself(scopes: str) -> None:
    reached: list[str] = []

    async def job(own: list[Task[Any]]) -> None:
        assert own[0].cancel()
        reached.append("after cancel")
        await trio.sleep(1)
        reached.append("after sleep")

    async def main() -> None:
        async with TimedScheduler() as scheduler:
            own: list[Task[Any]] = []
            own.append(scheduler.start_after(0, job, own))
            await scheduler.join()
            assert own[0].cancelled()
        assert reached == ["after cancel"]

    run(main)


def test_a_job_cancelled_before_its_first_step_never_starts(scopes: str) -> None:
    started: list[int] = []

    async def job(i: int, tasks: list[Task[Any]]) -> None:
        started.append(i)
        # Whichever of the two Trio runs first cancels the other, which
        # has been started in the nursery but has not taken a step.
        tasks[1 - i].cancel()
        await trio.sleep(1)

    async def main() -> None:
        async with TimedScheduler() as scheduler:
            tasks: list[Task[Any]] = []
            tasks += [scheduler.start_after(1, job, i, tasks) for i in range(2)]
            await scheduler.join()
        assert len(started) == 1
        first = started[0]
        assert not tasks[first].cancelled()
        assert tasks[1 - first].cancelled()

    run(main)


def test_a_job_that_swallows_its_cancel_finishes(scopes: str) -> None:
    async def job() -> str:
        try:
            await trio.sleep(10)
        except trio.Cancelled:
            return "swallowed"
        return "slept"

    async def main() -> None:
        async with TimedScheduler() as scheduler:
            task = scheduler.start_after(0, job)
            await trio.sleep(1)
            task.cancel()
            await scheduler.join()
            assert task.result() == "swallowed"
            # The scheduler goes on as before.
            later = scheduler.start_after(1, job)
            await scheduler.join()
            assert later.result() == "slept"

    run(main)


def test_closing_cancels_jobs_with_and_without_late_scopes(scopes: str) -> None:
    async def main() -> None:
        async with TimedScheduler() as scheduler:
            tasks = [scheduler.start_after(0, trio.sleep, 100) for _ in range(3)]
            await trio.sleep(1)
            tasks[0].cancel()
            await trio.sleep(1)
            await scheduler.aclose()
        assert all(t.cancelled() for t in tasks)

    run(main)


def test_queued_jobs_run_inline_are_cancelled_alone(scopes: str) -> None:
    order: list[str] = []

    async def job(name: str, tasks: dict[str, Task[Any]]) -> None:
        order.append(name)
        if name == "a":
            tasks["b"].cancel()  # b is queued: it never runs
            tasks["a"].cancel()  # a runs inline: it is cancelled alone
        await trio.sleep(1)
        order.append(name + " done")

    async def main() -> None:
        async with QueuedScheduler() as scheduler:
            tasks: dict[str, Task[Any]] = {}
            for name in "abc":
                tasks[name] = scheduler.start_soon(job, name, tasks)
            await scheduler.join()
        assert order == ["a", "c", "c done"]

    run(main)


@pytest.fixture(autouse=True)
def _reset_check() -> Iterator[None]:
    yield
    # The next test (or the rest of the suite) checks again from scratch.
    _trio._late_scopes_checked = None
