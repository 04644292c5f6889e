"""TimedScheduler: each job at its own time, in deadline order, concurrently.

Every test runs on ``asyncio`` (native engine), ``asyncio+anyio`` (portable
engine) and ``trio``, in virtual time: the clock jumps to the next deadline
whenever every task waits, so ``anyio.current_time()`` inside a job shows
exactly when the scheduler started it.

Trio randomizes the order in which tasks that became runnable together take
their first step, so jobs started in the same instant are compared as a set
there and in exact scheduling order on asyncio (as the SPEC says).
"""

from __future__ import annotations

import gc
import heapq
import inspect
import math
import random
import time
from collections.abc import AsyncIterator, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import AsyncMock

import anyio
import pytest

from aioscheduler import (
    SchedulerError,
    TaskCancelled,
    TaskLimitReached,
    TimedScheduler,
)
from aioscheduler._queues import DeadlineHeap
from aioscheduler._task import CANCELLED, TimedTask, new_timed_task

# looptime keeps asyncio's clock in whole microseconds, and the asyncio engines
# set their timers one clock resolution past the deadline so they never fire
# early (backends/_asyncio.py, _timer_slack): a job may start up to a few
# ticks after its deadline; never before it.
TICK = 5e-6
# Float error of converting a ~1.8e9 s POSIX timestamp to a loop deadline.
EPS = 1e-6

Log = list[tuple[str, float]]


async def record(log: Log, name: str) -> str:
    """The job: note its name and the loop time at its very first step."""
    log.append((name, anyio.current_time()))
    return name


async def record_then_sleep(log: Log, name: str, seconds: float) -> str:
    log.append((name, anyio.current_time()))
    await anyio.sleep(seconds)
    log.append((name + " end", anyio.current_time()))
    return name


def assert_at(seen: float, deadline: float) -> None:
    """*seen* is the deadline: never before it, at most one clock tick after."""
    assert deadline <= seen <= deadline + TICK, (seen, deadline)


def wall_in_an_hour() -> datetime:
    return datetime.now(UTC) + timedelta(hours=1)


@dataclass
class Bound:
    """Loop time and wall clock around the moment a scheduler read its offset."""

    t0: float
    wall_before: float
    wall_after: float

    def assert_at_wall(self, seen: float, when: datetime) -> None:
        """*seen* is the loop time that the wall-clock instant *when* maps to."""
        timestamp = when.timestamp()
        earliest = self.t0 + (timestamp - self.wall_after)
        latest = self.t0 + (timestamp - self.wall_before)
        assert earliest - EPS <= seen <= latest + TICK, (seen, earliest, latest)


@asynccontextmanager
async def serving(scheduler: TimedScheduler) -> AsyncIterator[Bound]:
    """``async with scheduler``, noting the clocks around its start.

    A scheduler reads its wall-to-loop offset when it starts (or at its
    first scheduling call, if earlier), so the deadline of a wall-clock time
    is known to within the few microseconds this bracket spans.
    """
    t0 = anyio.current_time()
    wall_before = time.time()
    async with scheduler:
        wall_after = time.time()
        assert anyio.current_time() == t0
        yield Bound(t0, wall_before, wall_after)


def names(log: Log) -> list[str]:
    return [name for name, _ in log]


def assert_start_order(
    log: Log, expected: Sequence[tuple[str, float]], backend_name: str
) -> None:
    """Jobs started at their deadlines in deadline order, ties FIFO.

    *expected* lists (name, deadline) in the order the jobs must start. On
    asyncio the start order must match exactly; on Trio, jobs started in the
    same instant may take their first step in any order, so there they are
    compared as sets per instant.
    """
    assert len(log) == len(expected)
    seen_at = dict(log)
    assert len(seen_at) == len(log), "a job ran twice"
    for name, deadline in expected:
        assert_at(seen_at[name], deadline)
    times = [seen for _, seen in log]
    assert times == sorted(times), "jobs started out of deadline order"
    if backend_name == "asyncio":
        assert names(log) == [name for name, _ in expected]
    else:
        by_instant: dict[float, set[str]] = {}
        for name, deadline in expected:
            by_instant.setdefault(round(deadline, 5), set()).add(name)
        seen_by_instant: dict[float, set[str]] = {}
        for name, seen in log:
            seen_by_instant.setdefault(round(seen, 5), set()).add(name)
        assert seen_by_instant == by_instant


class TestRunsAtItsTime:
    """Each form runs its job at its time: not before, not later."""

    async def test_start_after_seconds(self) -> None:
        log: Log = []
        async with TimedScheduler() as scheduler:
            t0 = anyio.current_time()
            task = scheduler.start_after(3600, record, log, "a")
        assert names(log) == ["a"]
        assert_at(log[0][1], t0 + 3600)
        assert task.result() == "a"

    async def test_start_after_float(self) -> None:
        log: Log = []
        async with TimedScheduler() as scheduler:
            t0 = anyio.current_time()
            scheduler.start_after(0.25, record, log, "a")
        assert_at(log[0][1], t0 + 0.25)

    async def test_start_after_timedelta(self) -> None:
        log: Log = []
        async with TimedScheduler() as scheduler:
            t0 = anyio.current_time()
            scheduler.start_after(
                timedelta(minutes=5, milliseconds=500), record, log, "a"
            )
        assert_at(log[0][1], t0 + 300.5)

    async def test_start_after_zero_runs_now(self) -> None:
        log: Log = []
        async with TimedScheduler() as scheduler:
            t0 = anyio.current_time()
            task = scheduler.start_after(0, record, log, "a")
            await task.wait()
            assert anyio.current_time() == t0
        assert log == [("a", t0)]

    async def test_start_at_aware(self) -> None:
        log: Log = []
        scheduler = TimedScheduler()
        async with serving(scheduler) as bound:
            when = wall_in_an_hour()
            scheduler.start_at(when, record, log, "a")
        assert names(log) == ["a"]
        bound.assert_at_wall(log[0][1], when)

    async def test_start_at_naive_utc(self) -> None:
        log: Log = []
        scheduler = TimedScheduler()
        async with serving(scheduler) as bound:
            when = wall_in_an_hour()
            scheduler.start_at(when.replace(tzinfo=None), record, log, "a")
        bound.assert_at_wall(log[0][1], when)

    async def test_schedule_coroutine_1x_form(self) -> None:
        log: Log = []
        scheduler = TimedScheduler()
        async with serving(scheduler) as bound:
            when = wall_in_an_hour()
            task = scheduler.schedule(record(log, "a"), when.replace(tzinfo=None))
        bound.assert_at_wall(log[0][1], when)
        assert task.result() == "a"

    async def test_never_before_its_time(self) -> None:
        log: Log = []
        async with TimedScheduler() as scheduler:
            t0 = anyio.current_time()
            task = scheduler.start_after(10, record, log, "a")
            await anyio.sleep(10 - 0.001)
            assert log == []
            assert not task.done()
            await task.wait()
        assert_at(log[0][1], t0 + 10)

    async def test_close_deadlines_each_at_its_own_time(self) -> None:
        # Waking for one job must not start the next one a little early.
        log: Log = []
        offsets = [0.0, 0.00001, 0.0001, 0.0005, 0.001, 0.01]
        async with TimedScheduler() as scheduler:
            t0 = anyio.current_time()
            for i, offset in enumerate(offsets):
                scheduler.start_after(10 + offset, record, log, f"job{i}")
        assert names(log) == [f"job{i}" for i in range(len(offsets))]
        for (_, seen), offset in zip(log, offsets, strict=True):
            assert_at(seen, t0 + (10 + offset))

    async def test_start_at_never_before_its_time(self) -> None:
        log: Log = []
        scheduler = TimedScheduler()
        async with serving(scheduler) as bound:
            when = datetime.now(UTC) + timedelta(seconds=30)
            task = scheduler.start_at(when, record, log, "a")
            await anyio.sleep(29.99)
            assert log == []
            assert not task.done()
            await task.wait()
        bound.assert_at_wall(log[0][1], when)

    async def test_scheduling_call_returns_at_once(self) -> None:
        async with TimedScheduler() as scheduler:
            t0 = anyio.current_time()
            scheduler.start_after(100, record, [], "a")
            scheduler.start_at(wall_in_an_hour(), record, [], "b")
            scheduler.schedule(record([], "c"), wall_in_an_hour())
            assert anyio.current_time() == t0
            await scheduler.aclose()


class TestOrder:
    """Deadline order; ties in scheduling order."""

    async def test_deadline_order(self, backend_name: str) -> None:
        log: Log = []
        delays = {"e": 5.0, "a": 1.0, "c": 3.0, "b": 2.0, "d": 4.0}
        async with TimedScheduler() as scheduler:
            t0 = anyio.current_time()
            for name, delay in delays.items():
                scheduler.start_after(delay, record, log, name)
        expected = sorted(((n, t0 + d) for n, d in delays.items()), key=lambda e: e[1])
        assert names(log) == ["a", "b", "c", "d", "e"]
        assert_start_order(log, expected, backend_name)

    async def test_ties_in_scheduling_order(self, backend_name: str) -> None:
        log: Log = []
        async with TimedScheduler() as scheduler:
            t0 = anyio.current_time()
            for i in range(20):
                scheduler.start_after(5, record, log, f"job{i}")
        expected = [(f"job{i}", t0 + 5) for i in range(20)]
        assert_start_order(log, expected, backend_name)

    async def test_ties_interleaved_with_other_deadlines(
        self, backend_name: str
    ) -> None:
        log: Log = []
        plan = [("A", 5), ("B", 3), ("C", 5), ("D", 3), ("E", 5), ("F", 4)]
        async with TimedScheduler() as scheduler:
            t0 = anyio.current_time()
            for name, delay in plan:
                scheduler.start_after(delay, record, log, name)
        expected = [
            ("B", t0 + 3),
            ("D", t0 + 3),
            ("F", t0 + 4),
            ("A", t0 + 5),
            ("C", t0 + 5),
            ("E", t0 + 5),
        ]
        assert_start_order(log, expected, backend_name)

    async def test_equal_datetimes_tie_in_scheduling_order(
        self, backend_name: str
    ) -> None:
        log: Log = []
        scheduler = TimedScheduler()
        async with serving(scheduler) as bound:
            when = wall_in_an_hour()
            scheduler.start_at(when, record, log, "first")
            scheduler.schedule(record(log, "second"), when)
            scheduler.start_at(when.replace(tzinfo=None), record, log, "third")
            scheduler.start_at(when, record, log, "fourth")
        for _, seen in log:
            bound.assert_at_wall(seen, when)
        assert len({seen for _, seen in log}) == 1
        if backend_name == "asyncio":
            assert names(log) == ["first", "second", "third", "fourth"]
        else:
            assert sorted(names(log)) == ["first", "fourth", "second", "third"]

    async def test_random_deadlines_with_ties(self, backend_name: str) -> None:
        rng = random.Random(20240601)
        log: Log = []
        plan = [(f"job{i}", float(rng.randrange(50))) for i in range(400)]
        async with TimedScheduler() as scheduler:
            t0 = anyio.current_time()
            for name, delay in plan:
                scheduler.start_after(delay, record, log, name)
        # sorted() is stable: ties stay in scheduling order.
        expected = sorted(((n, t0 + d) for n, d in plan), key=lambda e: e[1])
        assert_start_order(log, expected, backend_name)

    async def test_more_due_jobs_than_one_dispatch_batch(
        self, backend_name: str
    ) -> None:
        log: Log = []
        async with TimedScheduler() as scheduler:
            t0 = anyio.current_time()
            for i in range(1000):
                scheduler.start_after(1 + (i % 2), record, log, f"job{i}")
        expected = [(f"job{i}", t0 + 1) for i in range(0, 1000, 2)]
        expected += [(f"job{i}", t0 + 2) for i in range(1, 1000, 2)]
        assert_start_order(log, expected, backend_name)


class TestWakeUp:
    """A job earlier than the one the scheduler sleeps on wakes it."""

    async def test_earlier_job_wakes_the_scheduler(self) -> None:
        log: Log = []
        async with TimedScheduler() as scheduler:
            t0 = anyio.current_time()
            scheduler.start_after(100, record, log, "late")
            await anyio.sleep(1)  # the scheduler now sleeps until t0 + 100
            scheduler.start_after(10, record, log, "early")
            with anyio.fail_after(1000):  # a missed wake-up fails, not hangs
                await scheduler.join()
        assert names(log) == ["early", "late"]
        assert_at(log[0][1], t0 + 11)
        assert_at(log[1][1], t0 + 100)

    async def test_earlier_start_at_wakes_the_scheduler(self) -> None:
        log: Log = []
        scheduler = TimedScheduler()
        async with serving(scheduler) as bound:
            late = wall_in_an_hour()
            early = datetime.now(UTC) + timedelta(seconds=60)
            scheduler.start_at(late, record, log, "late")
            await anyio.sleep(1)
            scheduler.start_at(early, record, log, "early")
            with anyio.fail_after(7200):
                await scheduler.join()
        assert names(log) == ["early", "late"]
        bound.assert_at_wall(log[0][1], early)
        bound.assert_at_wall(log[1][1], late)

    async def test_job_scheduled_on_idle_scheduler_wakes_it(self) -> None:
        log: Log = []
        async with TimedScheduler() as scheduler:
            await anyio.sleep(50)  # the scheduler sleeps with nothing to do
            t1 = anyio.current_time()
            scheduler.start_after(7, record, log, "a")
            with anyio.fail_after(100):
                await scheduler.join()
        assert names(log) == ["a"]
        assert_at(log[0][1], t1 + 7)

    async def test_later_job_does_not_delay_the_earlier(self) -> None:
        log: Log = []
        async with TimedScheduler() as scheduler:
            t0 = anyio.current_time()
            scheduler.start_after(10, record, log, "early")
            await anyio.sleep(1)
            scheduler.start_after(100, record, log, "late")
        assert names(log) == ["early", "late"]
        assert_at(log[0][1], t0 + 10)
        assert_at(log[1][1], t0 + 101)

    async def test_earlier_job_scheduled_by_a_job_wakes_the_scheduler(self) -> None:
        log: Log = []
        async with TimedScheduler() as scheduler:

            async def parent() -> None:
                log.append(("parent", anyio.current_time()))
                scheduler.start_after(5, record, log, "child")

            t0 = anyio.current_time()
            scheduler.start_after(1000, record, log, "late")
            scheduler.start_after(10, parent)
        assert names(log) == ["parent", "child", "late"]
        assert_at(log[1][1], t0 + 15)
        assert_at(log[2][1], t0 + 1000)


@pytest.fixture
def timed_scheduler() -> TimedScheduler:
    """A scheduler constructed in a sync fixture: outside any event loop."""
    return TimedScheduler()


class TestScheduledBeforeStart:
    """Jobs scheduled before the scheduler starts run once it starts."""

    async def test_jobs_scheduled_before_start_run_at_their_time(
        self, timed_scheduler: TimedScheduler, backend_name: str
    ) -> None:
        log: Log = []
        scheduler = timed_scheduler
        t0 = anyio.current_time()
        wall_before = time.time()
        scheduler.start_after(50, record, log, "after50")
        wall_after = time.time()
        # Seconds apart in virtual time, which costs nothing: the wall clock
        # read here may be late by any pause of the machine short of that.
        when = datetime.now(UTC) + timedelta(seconds=30)
        scheduler.start_at(when, record, log, "at30")
        scheduler.schedule(record(log, "coro40"), when + timedelta(seconds=10))
        await anyio.sleep(10)
        assert log == []
        assert not scheduler.is_started
        async with scheduler:
            pass  # leaving waits for every job
        bound = Bound(t0, wall_before, wall_after)
        assert names(log) == ["at30", "coro40", "after50"]
        bound.assert_at_wall(log[0][1], when)
        bound.assert_at_wall(log[1][1], when + timedelta(seconds=10))
        assert_at(log[2][1], t0 + 50)

    async def test_past_due_job_runs_as_soon_as_it_starts(
        self, timed_scheduler: TimedScheduler
    ) -> None:
        log: Log = []
        scheduler = timed_scheduler
        task = scheduler.start_after(5, record, log, "a")
        await anyio.sleep(60)
        assert log == []
        assert not task.done()
        t1 = anyio.current_time()
        async with scheduler:
            await task.wait()
            assert anyio.current_time() == t1
        assert log == [("a", t1)]

    async def test_past_due_wall_clock_job_runs_as_soon_as_it_starts(
        self, timed_scheduler: TimedScheduler, backend_name: str
    ) -> None:
        log: Log = []
        scheduler = timed_scheduler
        when = datetime.now(UTC) + timedelta(seconds=2)
        task = scheduler.start_at(when, record, log, "a")
        scheduler.schedule(record(log, "b"), when + timedelta(seconds=1))
        await anyio.sleep(60)  # loop time passes; the wall clock barely moves
        t1 = anyio.current_time()
        async with scheduler:
            await task.wait()
        assert sorted(names(log)) == ["a", "b"]
        if backend_name == "asyncio":  # started together: Trio may swap them
            assert names(log) == ["a", "b"]
        assert log[0][1] == t1
        assert log[1][1] == t1

    async def test_past_due_jobs_start_in_deadline_order(
        self, timed_scheduler: TimedScheduler, backend_name: str
    ) -> None:
        log: Log = []
        scheduler = timed_scheduler
        for name, delay in [("c", 3), ("a", 1), ("d", 3), ("b", 2), ("late", 100)]:
            scheduler.start_after(delay, record, log, name)
        await anyio.sleep(10)
        t1 = anyio.current_time()
        t0 = t1 - 10
        async with scheduler:
            pass
        expected = [("a", t1), ("b", t1), ("c", t1), ("d", t1), ("late", t0 + 100)]
        assert_start_order(log, expected, backend_name)

    async def test_jobs_scheduled_before_run_in_task_group(
        self, timed_scheduler: TimedScheduler
    ) -> None:
        log: Log = []
        scheduler = timed_scheduler
        t0 = anyio.current_time()
        task = scheduler.start_after(5, record, log, "a")
        async with anyio.create_task_group() as tg:
            await tg.start(scheduler.run)
            await task.wait()
            tg.cancel_scope.cancel()
        assert log == [("a", log[0][1])]
        assert_at(log[0][1], t0 + 5)


class TestCoroutineCreatedWhenDue:
    """The callable forms create the coroutine only when the job is due."""

    async def test_async_fn_called_only_when_due(self) -> None:
        fn = AsyncMock(return_value="done")
        async with TimedScheduler() as scheduler:
            task = scheduler.start_after(10, fn, 1, "x")
            at = scheduler.start_at(wall_in_an_hour(), fn, 2)
            assert task.callback is fn
            assert at.callback is fn
            await anyio.sleep(9.9)
            assert fn.call_count == 0
            assert await task.wait() == "done"
            fn.assert_called_once_with(1, "x")
            fn.assert_awaited_once()
            await at.wait()
        assert fn.call_count == 2
        assert fn.await_count == 2

    async def test_pending_job_has_no_coroutine_frame(self) -> None:
        async def lazy_job(i: int) -> int:
            return i

        def live_coroutines() -> list[Coroutine[Any, Any, Any]]:
            gc.collect()
            return [
                obj
                for obj in gc.get_objects()
                if inspect.iscoroutine(obj) and obj.cr_code is lazy_job.__code__
            ]

        async with TimedScheduler() as scheduler:
            tasks = [scheduler.start_after(10 + i, lazy_job, i) for i in range(50)]
            tasks += [
                scheduler.start_at(wall_in_an_hour(), lazy_job, i) for i in range(50)
            ]
            await anyio.sleep(1)
            assert live_coroutines() == []
            assert all(task.callback is lazy_job for task in tasks)
        assert [task.result() for task in tasks] == list(range(50)) * 2


class TestConcurrency:
    """Jobs run concurrently: one job's run time delays no other."""

    async def test_jobs_run_concurrently(self) -> None:
        log: Log = []
        async with TimedScheduler() as scheduler:
            t0 = anyio.current_time()
            for name in ("a", "b", "c"):
                scheduler.start_after(5, record_then_sleep, log, name, 10)
        ends = [seen for name, seen in log if name.endswith(" end")]
        assert len(ends) == 3
        for seen in ends:
            assert_at(seen, t0 + 15)
        assert anyio.current_time() < t0 + 15 + 1

    async def test_long_job_does_not_delay_the_next(self) -> None:
        log: Log = []
        async with TimedScheduler() as scheduler:
            t0 = anyio.current_time()
            scheduler.start_after(5, record_then_sleep, log, "long", 1000)
            scheduler.start_after(10, record, log, "short")
        assert names(log) == ["long", "short", "long end"]
        assert_at(log[1][1], t0 + 10)
        assert_at(log[2][1], t0 + 1005)

    async def test_async_with_waits_for_running_jobs(self) -> None:
        log: Log = []
        async with TimedScheduler() as scheduler:
            t0 = anyio.current_time()
            task = scheduler.start_after(1, record_then_sleep, log, "a", 30)
        assert task.done()
        assert task.result() == "a"
        assert_at(anyio.current_time(), t0 + 31)


class TestJobsScheduleJobs:
    async def test_chain_of_jobs(self) -> None:
        log: Log = []
        async with TimedScheduler() as scheduler:

            async def generation(n: int) -> None:
                log.append((f"gen{n}", anyio.current_time()))
                if n < 5:
                    scheduler.start_after(10, generation, n + 1)

            t0 = anyio.current_time()
            scheduler.start_after(10, generation, 1)
        # Leaving the block waited for jobs scheduled by jobs, too.
        assert names(log) == [f"gen{n}" for n in range(1, 6)]
        for n, (_, seen) in enumerate(log, start=1):
            assert_at(seen, t0 + 10 * n)

    async def test_job_fans_out(self, backend_name: str) -> None:
        log: Log = []
        async with TimedScheduler() as scheduler:

            async def parent() -> None:
                log.append(("parent", anyio.current_time()))
                for i in range(5):
                    scheduler.start_after(5 - i, record, log, f"child{i}")
                scheduler.start_at(wall_in_an_hour(), record, log, "child_at")
                scheduler.schedule(record(log, "child_coro"), wall_in_an_hour())

            scheduler.start_after(1, parent)
        assert log[0][0] == "parent"
        t1 = log[0][1]
        expected = [(f"child{i}", t1 + (5 - i)) for i in reversed(range(5))]
        assert_start_order(log[1:6], expected, backend_name)
        assert sorted(names(log[6:])) == ["child_at", "child_coro"]

    async def test_join_waits_for_jobs_scheduled_by_jobs(self) -> None:
        async with TimedScheduler() as scheduler:
            inner: list[float] = []

            async def parent() -> None:
                scheduler.start_after(100, child)

            async def child() -> None:
                inner.append(anyio.current_time())

            t0 = anyio.current_time()
            scheduler.start_after(1, parent)
            await scheduler.join()
            assert len(inner) == 1
            assert_at(inner[0], t0 + 101)
            assert_at(anyio.current_time(), t0 + 101)


class TestMaxTasks:
    async def test_limit_counts_pending_and_running(self) -> None:
        log: Log = []
        async with TimedScheduler(max_tasks=2) as scheduler:
            t0 = anyio.current_time()
            scheduler.start_after(10, record_then_sleep, log, "a", 5)
            scheduler.start_after(20, record, log, "b")
            with pytest.raises(TaskLimitReached):
                scheduler.start_after(1, record, log, "c")
            await anyio.sleep(12)  # a is running now, b pending
            assert names(log) == ["a"]
            with pytest.raises(TaskLimitReached):
                scheduler.start_at(wall_in_an_hour(), record, log, "c")
            await anyio.sleep(4)  # a has ended at t0 + 15
            scheduler.start_after(1, record, log, "c")
            with pytest.raises(TaskLimitReached):
                scheduler.start_after(1, record, log, "d")
        assert names(log) == ["a", "a end", "c", "b"]
        assert_at(log[2][1], t0 + 17)

    async def test_cancelled_pending_job_frees_its_slot(self) -> None:
        async with TimedScheduler(max_tasks=1) as scheduler:
            task = scheduler.start_after(10, record, [], "a")
            with pytest.raises(TaskLimitReached):
                scheduler.start_after(10, record, [], "b")
            assert task.cancel()
            other = scheduler.start_after(10, record, [], "b")
        assert other.result() == "b"

    async def test_limit_error_types(self) -> None:
        async with TimedScheduler(max_tasks=1) as scheduler:
            scheduler.start_after(1, record, [], "a")
            with pytest.raises(TaskLimitReached) as info:
                scheduler.start_after(1, record, [], "b")
        assert isinstance(info.value, ValueError)
        assert isinstance(info.value, SchedulerError)


class TestCancel:
    async def test_cancel_pending_job_never_runs(self) -> None:
        log: Log = []
        async with TimedScheduler() as scheduler:
            t0 = anyio.current_time()
            task = scheduler.start_after(10, record, log, "a")
            other = scheduler.start_after(20, record, log, "b")
            assert scheduler.cancel(task) is True
            assert task.cancelled()
            assert task.done()
            with pytest.raises(TaskCancelled):
                task.result()
            with pytest.raises(TaskCancelled):
                await task.wait()
            await scheduler.join()
            assert_at(anyio.current_time(), t0 + 20)
        assert names(log) == ["b"]
        assert other.result() == "b"

    async def test_task_cancel_pending(self) -> None:
        log: Log = []
        async with TimedScheduler() as scheduler:
            task = scheduler.start_at(wall_in_an_hour(), record, log, "a")
            assert task.cancel() is True
            assert task.cancelled()
        assert log == []

    async def test_cancel_pending_coroutine_closes_it(self) -> None:
        log: Log = []
        async with TimedScheduler() as scheduler:
            coro = record(log, "a")
            task = scheduler.schedule(coro, wall_in_an_hour())
            assert scheduler.cancel(task) is True
            # Closed: it can never warn "coroutine ... was never awaited".
            assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED
        del coro
        gc.collect()
        assert log == []

    async def test_cancel_the_job_the_scheduler_sleeps_on(self) -> None:
        log: Log = []
        async with TimedScheduler() as scheduler:
            t0 = anyio.current_time()
            first = scheduler.start_after(10, record, log, "first")
            scheduler.start_after(20, record, log, "second")
            await anyio.sleep(1)  # asleep until t0 + 10
            assert first.cancel()
        assert names(log) == ["second"]
        assert_at(log[0][1], t0 + 20)

    async def test_cancel_running_job(self) -> None:
        started = anyio.Event()
        cleaned_up: list[float] = []

        async def victim() -> None:
            started.set()
            try:
                await anyio.sleep_forever()
            finally:
                cleaned_up.append(anyio.current_time())

        async with TimedScheduler() as scheduler:
            t0 = anyio.current_time()
            task = scheduler.start_after(5, victim)
            await started.wait()
            assert not task.done()
            assert scheduler.cancel(task) is True
            with pytest.raises(TaskCancelled):
                await task.wait()
            assert task.cancelled()
            assert task.done()
            with pytest.raises(TaskCancelled):
                task.exception()
        assert len(cleaned_up) == 1
        assert_at(cleaned_up[0], t0 + 5)

    async def test_task_cancel_running_job(self) -> None:
        started = anyio.Event()

        async def victim() -> None:
            started.set()
            await anyio.sleep(1000)

        async with TimedScheduler() as scheduler:
            t0 = anyio.current_time()
            task = scheduler.start_after(5, victim)
            await started.wait()
            assert task.cancel() is True
            await scheduler.join()
            assert task.cancelled()
            assert_at(anyio.current_time(), t0 + 5)

    async def test_running_job_that_suppresses_cancel_ends_as_it_returns(
        self,
    ) -> None:
        started = anyio.Event()

        async def stubborn() -> str:
            started.set()
            try:
                await anyio.sleep_forever()
            except anyio.get_cancelled_exc_class():
                return "kept going"
            return "unreachable"

        async with TimedScheduler() as scheduler:
            task = scheduler.start_after(5, stubborn)
            await started.wait()
            assert task.cancel() is True
            assert await task.wait() == "kept going"
        assert not task.cancelled()
        assert task.result() == "kept going"

    async def test_cancel_job_started_in_the_same_instant(
        self, backend_name: str
    ) -> None:
        log: Log = []
        handles: list[Any] = []

        async def canceller() -> None:
            log.append(("canceller", anyio.current_time()))
            assert handles[0].cancel() is True

        async def victim() -> None:
            log.append(("victim", anyio.current_time()))
            await anyio.sleep(1)
            log.append(("victim end", anyio.current_time()))

        async with TimedScheduler() as scheduler:
            scheduler.start_after(5, canceller)
            handles.append(scheduler.start_after(5, victim))
        assert handles[0].cancelled()
        assert "victim end" not in names(log)
        if backend_name == "asyncio":
            # Cancelled before its first step: it never ran.
            assert names(log) == ["canceller"]

    async def test_cancel_done_task_returns_false(self) -> None:
        async with TimedScheduler() as scheduler:
            task = scheduler.start_after(1, record, [], "a")
            await task.wait()
            assert scheduler.cancel(task) is False
            assert task.cancel() is False
        assert not task.cancelled()
        assert task.result() == "a"

    async def test_cancel_failed_task_returns_false(self) -> None:
        errors: list[BaseException] = []

        async def fails() -> None:
            raise LookupError("boom")

        async with TimedScheduler(
            on_error=lambda task, exc: errors.append(exc)
        ) as scheduler:
            task = scheduler.start_after(1, fails)
            with pytest.raises(LookupError):
                await task.wait()
            assert scheduler.cancel(task) is False
        assert isinstance(task.exception(), LookupError)
        assert not task.cancelled()

    async def test_cancel_foreign_task_returns_false(self) -> None:
        log: Log = []
        async with TimedScheduler() as one, TimedScheduler() as other:
            t0 = anyio.current_time()
            task = one.start_after(10, record, log, "a")
            assert other.cancel(task) is False
            assert not task.cancelled()
            await anyio.sleep(10)
            running = one.start_after(0, record_then_sleep, log, "b", 5)
            await anyio.lowlevel.checkpoint()
            assert other.cancel(running) is False
        assert task.result() == "a"
        assert running.result() == "b"
        assert_at(log[0][1], t0 + 10)

    async def test_cancel_pending_twice(self) -> None:
        async with TimedScheduler() as scheduler:
            coro = record([], "a")
            task = scheduler.schedule(coro, wall_in_an_hour())
            assert scheduler.cancel(task) is True
            assert scheduler.cancel(task) is False
            assert task.cancel() is False
            assert task.cancelled()
            # The load was released once only: join returns, and a new
            # job keeps it busy until that job is done.
            t0 = anyio.current_time()
            await scheduler.join()
            assert anyio.current_time() == t0
            scheduler.start_after(3, record, [], "b")
            await scheduler.join()
            assert_at(anyio.current_time(), t0 + 3)

    async def test_cancel_running_twice(self) -> None:
        started = anyio.Event()

        async def victim() -> None:
            started.set()
            await anyio.sleep_forever()

        async with TimedScheduler(max_tasks=2) as scheduler:
            task = scheduler.start_after(1, victim)
            await started.wait()
            assert scheduler.cancel(task) is True
            task.cancel()  # delivered again or not: must not settle it twice
            with pytest.raises(TaskCancelled):
                await task.wait()
            assert task.cancel() is False
            with anyio.fail_after(10):
                await scheduler.join()
            # Exactly one slot was released: two fit, a third does not.
            t0 = anyio.current_time()
            scheduler.start_after(5, record, [], "a")
            scheduler.start_after(5, record, [], "b")
            with pytest.raises(TaskLimitReached):
                scheduler.start_after(5, record, [], "c")
            with anyio.fail_after(10):
                await scheduler.join()
            assert_at(anyio.current_time(), t0 + 5)

    async def test_many_cancelled_keep_the_rest_in_order(self) -> None:
        rng = random.Random(7)
        log: Log = []
        count = 5000
        delays = [1 + i * 0.01 for i in range(count)]
        rng.shuffle(delays)
        async with TimedScheduler() as scheduler:
            t0 = anyio.current_time()
            delay_of = {f"job{i}": d for i, d in enumerate(delays)}
            tasks = {
                name: scheduler.start_after(d, record, log, name)
                for name, d in delay_of.items()
            }
            doomed = rng.sample(sorted(tasks), 3500)  # > 1024: compacts the heap
            for name in doomed:
                assert scheduler.cancel(tasks[name]) is True
            # More jobs after the compaction still go in their place.
            for i in range(50):
                d = 1.005 + i * 0.1
                tasks[f"late{i}"] = scheduler.start_after(d, record, log, f"late{i}")
            with anyio.fail_after(1000):  # a lost job would hang join()
                await scheduler.join()
        doomed_set = set(doomed)
        for name, task in tasks.items():
            assert task.cancelled() is (name in doomed_set)
        times = [seen for _, seen in log]
        assert times == sorted(times)
        assert len(log) == count - len(doomed) + 50
        assert doomed_set.isdisjoint(names(log))
        for name, seen in log:
            if name.startswith("job"):
                assert_at(seen, t0 + delay_of[name])

    async def test_cancel_thousands_at_the_front_while_sleeping(self) -> None:
        log: Log = []
        async with TimedScheduler() as scheduler:
            t0 = anyio.current_time()
            tasks = [
                scheduler.start_after(10 + i * 0.01, record, log, f"job{i}")
                for i in range(3000)
            ]
            await anyio.sleep(1)  # the scheduler sleeps on job0
            for task in tasks[:2500]:
                assert task.cancel() is True
            assert all(task.cancel() is False for task in tasks[:2500])
            with anyio.fail_after(1000):
                await scheduler.join()
        assert names(log) == [f"job{i}" for i in range(2500, 3000)]
        for i, (_, seen) in enumerate(log, start=2500):
            assert_at(seen, t0 + (10 + i * 0.01))


class TestDeadlineHeap:
    """The pending container alone: due jobs by deadline, ties by sequence.

    Both of its ways to collect due jobs: popping them one by one, and, when
    a sample says a burst is due, sorting the whole heap.
    """

    @staticmethod
    def fill(deadlines: list[float]) -> tuple[DeadlineHeap, list[TimedTask]]:
        heap = DeadlineHeap()
        tasks = [
            new_timed_task(deadline, None, record, (), None, next(heap._sequence))  # type: ignore[arg-type]
            for deadline in deadlines
        ]
        for task in tasks:
            heapq.heappush(heap._entries, task)
        return heap, tasks

    @staticmethod
    def drain_due(heap: DeadlineHeap, now: float) -> list[TimedTask]:
        out = []
        while (task := heap.pop_due(now, 0.0)) is not None:
            out.append(task)
        return out

    @pytest.mark.parametrize("due_share", [0.001, 0.05, 0.5, 1.0])
    def test_order_and_the_rest_stays_a_heap(self, due_share: float) -> None:
        rng = random.Random(7)
        n = 20_000
        # Few distinct deadlines: many ties, in scrambled heap positions.
        deadlines = [float(rng.randrange(1000)) for _ in range(n)]
        heap, tasks = self.fill(deadlines)
        cancelled = set(rng.sample(range(n), 500))
        for i in cancelled:
            tasks[i]._state = CANCELLED
            heap.discard(tasks[i])
        now = 1000 * due_share - 0.5
        live = [(d, i) for i, d in enumerate(deadlines) if i not in cancelled]
        expected_due = sorted(e for e in live if e[0] <= now)
        got = self.drain_due(heap, now)
        assert [(float(t), t._seq) for t in got] == expected_due
        assert len(heap) == len(live) - len(expected_due)
        rest = self.drain_due(heap, math.inf)
        assert [(float(t), t._seq) for t in rest] == sorted(
            e for e in live if e[0] > now
        )

    def test_after_a_burst_later_due_jobs_come_off_the_sorted_rest(self) -> None:
        rng = random.Random(11)
        n = 20_000
        deadlines = [float(rng.randrange(1000)) for _ in range(n)]
        heap, tasks = self.fill(deadlines)
        cancelled = set(rng.sample(range(n), 300))
        for i in cancelled:
            tasks[i]._state = CANCELLED
            heap.discard(tasks[i])
        live = sorted((d, i) for i, d in enumerate(deadlines) if i not in cancelled)
        got: list[tuple[float, int]] = []
        # A burst (half due) sorts the heap; then it is left sorted, and
        # each later round slices its due jobs off the front.
        for now in (499.5, 520.5, 521.5, 800.5):
            got += [(float(t), t._seq) for t in self.drain_due(heap, now)]
            assert heap._sorted[0] == len(heap._entries)
            assert got == [e for e in live if e[0] <= now]
        # A push makes it a heap again (a few due: popped one by one), still
        # in order, ties in scheduling order, the new one after older ties.
        late = new_timed_task(805.0, None, record, (), None, next(heap._sequence))  # type: ignore[arg-type]
        heapq.heappush(heap._entries, late)
        rest = self.drain_due(heap, 806.5)
        assert heap._sorted[0] == -1
        expected = [e for e in live if 800.5 < e[0] <= 806.5]
        assert 0 < len(expected) < 256
        expected.insert(sum(1 for e in expected if e[0] <= 805.0), (805.0, late._seq))
        assert [(float(t), t._seq) for t in rest] == expected
        assert len(heap) == sum(1 for e in live if e[0] > 806.5)

    def test_cancelled_ones_are_dropped_once_they_outnumber_the_live(self) -> None:
        n = 10_000
        heap, tasks = self.fill([float(i % 100) for i in range(n)])
        for i, task in enumerate(tasks):
            if i % 5:  # cancel 80%
                task._state = CANCELLED
                heap.discard(task)
                # Garbage never outnumbers the live tasks (beyond the
                # minimum worth compacting).
                assert heap._garbage <= max(len(heap), 1024)
        assert len(heap) == n // 5
        assert heap._size() < n // 5 * 3  # it was compacted
        rest = self.drain_due(heap, math.inf)
        assert [(float(t), t._seq) for t in rest] == sorted(
            (float(i % 100), i) for i in range(0, n, 5)
        )
