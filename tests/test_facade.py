"""The 1.x ``start()`` facade on plain asyncio event loops.

These are synchronous tests that run their own event loop, as 1.x users do.
Each runs on both asyncio engines (native, and the portable AnyIO one).

Tests whose outcome hangs on timing run the way ``asyncio.run`` does
(``asyncio.Runner``) on a virtual-time loop (``looptime``, as in
``conftest.py``): a machine busy for a moment cannot change what they see.
The others use plain ``asyncio.run`` in real time and wait only for events,
never for a guessed time. The README examples verbatim, in real time, are
``slow`` tests.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import warnings
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import looptime
import pytest

from aioscheduler import Manager, QueuedScheduler, Task, TimedScheduler
from tests._engines import use_engine

UTCNOW_DEPRECATED = "ignore:datetime.datetime.utcnow:DeprecationWarning"


@pytest.fixture(autouse=True, params=["native", "anyio"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run each test on the native asyncio engine and on the AnyIO one."""
    name: str = request.param
    use_engine(monkeypatch, name)
    return name


def run_in_virtual_time(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """``asyncio.run(main())``, on a loop whose clock is virtual.

    The loop jumps its clock to the next timer whenever nothing is ready to
    run, so ``asyncio.sleep(65)`` takes no real time and everything due
    before it has run when it returns, however slow the machine.
    """
    with asyncio.Runner(loop_factory=looptime.new_event_loop) as runner:
        runner.run(main())


def printed_work(out: str) -> list[int]:
    prefix = "I am doing heavy work: "
    lines = out.splitlines()
    assert all(line.startswith(prefix) for line in lines), lines[:5]
    return [int(line.removeprefix(prefix)) for line in lines]


# -- the 1.x README examples ----------------------------------------------------


@pytest.mark.filterwarnings(UTCNOW_DEPRECATED)
class TestReadmeExamples:
    def test_timed_example_in_virtual_time(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        # README example 1 verbatim, on a virtual clock.
        async def work(n: int) -> None:
            print(f"I am doing heavy work: {n}")

        async def main() -> None:
            starting_time = datetime.utcnow()
            scheduler = TimedScheduler()
            scheduler.start()

            for i in range(60):
                scheduler.schedule(work(i), starting_time + timedelta(seconds=5 + i))

            await asyncio.sleep(65)

        run_in_virtual_time(main)
        assert printed_work(capsys.readouterr().out) == list(range(60))

    def test_manager_example_in_virtual_time(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        # README example 2 verbatim, on a virtual clock: the jobs never wait
        # for time, so all 30,000 run before the first virtual second ends.
        async def work(n: int) -> None:
            print(f"I am doing heavy work: {n}")

        async def main() -> None:
            starting_time = datetime.utcnow()  # noqa: F841
            manager = Manager(5, cls=QueuedScheduler)  # The number of Schedulers to use
            # Leaving out cls defaults to TimedScheduler
            manager.start()

            for i in range(30000):
                manager.schedule(work(i))

            await asyncio.sleep(5)

        run_in_virtual_time(main)
        assert sorted(printed_work(capsys.readouterr().out)) == list(range(30000))

    @pytest.mark.slow
    @pytest.mark.timeout(150)
    def test_timed_example_verbatim(self, capsys: pytest.CaptureFixture[str]) -> None:
        async def work(n: int) -> None:
            print(f"I am doing heavy work: {n}")

        async def main() -> None:
            starting_time = datetime.utcnow()
            scheduler = TimedScheduler()
            scheduler.start()

            for i in range(60):
                scheduler.schedule(work(i), starting_time + timedelta(seconds=5 + i))

            await asyncio.sleep(65)

        asyncio.run(main())
        assert printed_work(capsys.readouterr().out) == list(range(60))

    @pytest.mark.slow
    def test_manager_example_verbatim(self, capsys: pytest.CaptureFixture[str]) -> None:
        async def work(n: int) -> None:
            print(f"I am doing heavy work: {n}")

        async def main() -> None:
            starting_time = datetime.utcnow()  # noqa: F841
            manager = Manager(5, cls=QueuedScheduler)  # The number of Schedulers to use
            # Leaving out cls defaults to TimedScheduler
            manager.start()

            for i in range(30000):
                manager.schedule(work(i))

            await asyncio.sleep(5)

        asyncio.run(main())
        assert sorted(printed_work(capsys.readouterr().out)) == list(range(30000))


# -- start() --------------------------------------------------------------------


async def note(log: list[str], name: str) -> str:
    log.append(name)
    await asyncio.sleep(0)
    return name


class TestStart:
    @pytest.mark.parametrize("cls", [TimedScheduler, QueuedScheduler, Manager])
    def test_without_running_loop_raises(self, cls: type[Any]) -> None:
        scheduler = cls()
        with pytest.raises(RuntimeError, match="loop"):
            scheduler.start()
        assert not scheduler.is_started

    @pytest.mark.parametrize("cls", [TimedScheduler, QueuedScheduler, Manager])
    def test_twice_raises(self, cls: type[Any]) -> None:
        async def main() -> None:
            scheduler = cls()
            scheduler.start()
            assert scheduler.is_started
            with pytest.raises(RuntimeError):
                scheduler.start()
            assert scheduler.is_started
            await scheduler.aclose()
            assert not scheduler.is_started

        asyncio.run(main())

    def test_jobs_scheduled_before_start_run_after_it(self) -> None:
        log: list[str] = []

        async def main() -> None:
            timed = TimedScheduler()
            queued = QueuedScheduler()
            soon = datetime.now(UTC) + timedelta(seconds=10)
            timed.schedule(note(log, "timed coro"), soon)
            timed.start_after(10, note, log, "timed after")
            queued.schedule(note(log, "queued coro"))
            queued.start_soon(note, log, "queued fn")
            # Their time passes before the schedulers start: nothing runs.
            await asyncio.sleep(60)
            assert log == []
            timed.start()
            queued.start()
            await timed.join()
            await queued.join()
            assert sorted(log) == [
                "queued coro",
                "queued fn",
                "timed after",
                "timed coro",
            ]
            await timed.aclose()
            await queued.aclose()

        run_in_virtual_time(main)

    def test_scheduled_after_start_runs(self) -> None:
        log: list[str] = []

        async def main() -> None:
            scheduler = TimedScheduler()
            scheduler.start()
            task = scheduler.start_after(0.01, note, log, "later")
            assert await task.wait() == "later"
            await scheduler.aclose()

        asyncio.run(main())
        assert log == ["later"]


# -- the event loop ending under the facade -----------------------------------------


class TestLoopEnding:
    def test_no_warnings_no_orphans_when_asyncio_run_ends(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        log: list[str] = []
        coros: list[Coroutine[Any, Any, Any]] = []
        tasks: list[Task[Any]] = []
        loop_tasks: set[asyncio.Task[Any]] = set()

        all_started = asyncio.Event()

        async def block(name: str) -> None:
            log.append(f"{name} start")
            if len(log) == 4:
                all_started.set()
            try:
                await asyncio.sleep(3600)
            finally:
                log.append(f"{name} cleanup")

        async def main() -> None:
            timed = TimedScheduler()
            queued = QueuedScheduler()
            manager = Manager(2, cls=QueuedScheduler)
            for scheduler in (timed, queued, manager):
                scheduler.start()
            when = datetime.now(UTC) + timedelta(hours=1)
            tasks.append(timed.start_after(0, block, "timed"))
            tasks.append(queued.start_soon(block, "queued"))
            tasks.append(manager.start_soon(block, "manager0"))
            tasks.append(manager.start_soon(block, "manager1"))
            coros.extend(note(log, "pending ran") for _ in range(3))
            tasks.append(timed.schedule(coros[0], when))
            tasks.append(queued.schedule(coros[1]))
            tasks.append(manager.schedule(coros[2]))
            tasks.append(queued.start_soon(note, log, "pending ran"))
            await all_started.wait()
            loop_tasks.update(asyncio.all_tasks())
            # Return with jobs pending and running: asyncio.run cleans up.

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            asyncio.run(main())
            gc.collect()
        assert [str(w.message) for w in caught] == []
        assert sorted(log) == sorted(
            f"{name} {event}"
            for name in ("timed", "queued", "manager0", "manager1")
            for event in ("start", "cleanup")
        )
        assert all(task.done() for task in tasks)
        assert all(task.cancelled() for task in tasks)
        assert all(inspect.getcoroutinestate(c) == inspect.CORO_CLOSED for c in coros)
        assert loop_tasks
        assert all(t.done() for t in loop_tasks), [
            t for t in loop_tasks if not t.done()
        ]
        messages = [r.getMessage() for r in caplog.records]
        assert not [m for m in messages if "destroyed" in m or "never" in m], messages
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR], messages

    def test_facade_task_survives_gc(self, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.DEBUG, logger="asyncio")
        log: list[str] = []

        async def main() -> None:
            before = asyncio.all_tasks()
            QueuedScheduler().start()  # nobody keeps a reference
            scheduler = QueuedScheduler()
            scheduler.start()
            await asyncio.sleep(0.01)  # both serving tasks now wait for jobs
            ours = asyncio.all_tasks() - before
            assert len(ours) == 2
            del ours
            gc.collect()
            alive = asyncio.all_tasks() - before
            assert len(alive) == 2
            assert not any(task.done() for task in alive)
            task = scheduler.start_soon(note, log, "after gc")
            assert await task.wait() == "after gc"
            await scheduler.aclose()

        asyncio.run(main())
        gc.collect()
        assert log == ["after gc"]
        destroyed = [r for r in caplog.records if "destroyed" in r.getMessage()]
        assert destroyed == []

    def test_timed_facade_task_survives_gc_while_sleeping(self) -> None:
        log: list[str] = []

        async def main() -> None:
            scheduler = TimedScheduler()
            scheduler.start()
            task = scheduler.start_after(0.05, note, log, "late")
            del scheduler
            await asyncio.sleep(0.01)
            gc.collect()
            assert log == []  # the serving task is still asleep
            assert await task.wait() == "late"

        run_in_virtual_time(main)
        assert log == ["late"]
