"""Recurring schedules: ``add_schedule``'s options and the ``Schedule`` handle.

Pins SPEC's "Recurring schedules" (the scheduling half) and the schedule
lines of "Wall-clock time". Every test runs on every path in virtual time;
a blocked loop is :func:`block_the_loop`, a clock step or a suspend is an
injected wall clock the test shifts. Expected times come from
``scheduler.now()`` (virtual wall time) and loop times from
``anyio.current_time()``.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest

from aioscheduler import (
    At,
    Calendar,
    Cron,
    Every,
    Manager,
    Schedule,
    ScheduleConflict,
    SchedulerClosed,
    Task,
    TimedScheduler,
)
from tests.conftest import block_the_loop

MS = timedelta(milliseconds=1)


class SteppedClock:
    """A wall clock the test can step: ``time.time()`` plus a shift."""

    def __init__(self) -> None:
        self.shift = 0.0

    def __call__(self) -> float:
        return time.time() + self.shift


class Runs:
    """A job that records each run: loop time, wall time, and its task."""

    def __init__(self, scheduler: TimedScheduler, duration: float = 0.0) -> None:
        self.scheduler = scheduler
        self.duration = duration
        self.schedule: Schedule | None = None
        self.starts: list[float] = []
        self.walls: list[datetime] = []
        self.tasks: list[Task[Any] | None] = []
        self.ends: list[float] = []
        self.running = 0
        self.most_at_once = 0

    async def job(self) -> None:
        self.starts.append(anyio.current_time())
        self.walls.append(self.scheduler.now())
        self.tasks.append(None if self.schedule is None else self.schedule.last_task)
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await anyio.sleep(self.duration)
        finally:
            self.running -= 1
            self.ends.append(anyio.current_time())

    def add(self, trigger: Any, **options: Any) -> Schedule:
        self.schedule = self.scheduler.add_schedule(trigger, self.job, **options)
        return self.schedule

    def whens(self) -> list[datetime]:
        """The fire times of the runs, in the order they started."""
        whens = []
        for task in self.tasks:
            assert task is not None
            assert task.when is not None
            whens.append(task.when)
        return whens

    def since(self, begin: float) -> list[float]:
        return [round(at - begin, 6) for at in self.starts]


async def noop() -> None:
    pass


def wake(scheduler: TimedScheduler) -> None:
    """Make the serving task wake now (and read the wall clock again)."""
    scheduler.start_after(0, noop)


def close_to(a: datetime | None, b: datetime | None, tolerance: timedelta = MS) -> bool:
    assert a is not None
    assert b is not None
    return abs(a.astimezone(UTC) - b.astimezone(UTC)) <= tolerance


def live_entries(scheduler: TimedScheduler, schedule: Schedule) -> int:
    schedules = scheduler._schedules
    assert schedules is not None
    return sum(
        entry[2] is schedule
        for heap in (schedules._mono, schedules._wall)
        for entry in heap
    )


# -- Every ---------------------------------------------------------------------


async def test_every_first_fire_one_period_after_add_then_period_apart() -> None:
    async with TimedScheduler() as scheduler:
        runs = Runs(scheduler)
        begin = anyio.current_time()
        added = scheduler.now()
        schedule = runs.add(Every(10), max_runs=3)
        assert close_to(schedule.next_run_time, added + timedelta(seconds=10))
    assert runs.since(begin) == pytest.approx([10, 20, 30])
    # The runs' tasks are due at their fire times, exactly a period apart.
    whens = runs.whens()
    assert len(whens) == 3
    for k, when in enumerate(whens, 1):
        assert close_to(when, added + timedelta(seconds=10 * k))
    assert whens[1] - whens[0] == whens[2] - whens[1] == timedelta(seconds=10)


async def test_every_start_in_the_future() -> None:
    async with TimedScheduler() as scheduler:
        runs = Runs(scheduler)
        begin = anyio.current_time()
        start = scheduler.now() + timedelta(seconds=100)
        schedule = runs.add(Every(60, start=start), max_runs=2)
        assert close_to(schedule.next_run_time, start)
    assert runs.since(begin) == pytest.approx([100, 160])
    assert close_to(runs.tasks[0].when if runs.tasks[0] else None, start)


async def test_every_start_already_past_first_fire_is_next_step_after_now() -> None:
    async with TimedScheduler() as scheduler:
        runs = Runs(scheduler)
        begin = anyio.current_time()
        start = scheduler.now() - timedelta(seconds=150)
        schedule = runs.add(Every(60, start=start), max_runs=2)
        # start + 3 * 60 is the first after now: 30 s from now.
        assert close_to(schedule.next_run_time, start + timedelta(seconds=180))
    assert runs.since(begin) == pytest.approx([30, 90])
    assert (schedule.runs, schedule.missed, schedule.skipped) == (2, 0, 0)


async def test_end_finishes_the_schedule() -> None:
    async with TimedScheduler() as scheduler:
        runs = Runs(scheduler)
        begin = anyio.current_time()
        end = scheduler.now() + timedelta(seconds=35)
        schedule = runs.add(Every(10, end=end), id="ends")
        assert scheduler.get_schedule("ends") is schedule
        assert dict(scheduler.schedules) == {"ends": schedule}
        assert not schedule.finished
    # Leaving the block waited for it: the last run is at 30.
    assert anyio.current_time() - begin == pytest.approx(30)
    assert runs.since(begin) == pytest.approx([10, 20, 30])
    assert schedule.finished
    assert schedule.next_run_time is None
    assert scheduler.get_schedule("ends") is None
    assert "ends" not in scheduler.schedules


async def test_max_runs_finishes_the_schedule() -> None:
    async with TimedScheduler() as scheduler:
        runs = Runs(scheduler)
        schedule = runs.add(Every(5), id="three", max_runs=3)
        await anyio.sleep(12)
        assert not schedule.finished
        assert schedule.runs == 2
        await anyio.sleep(4)
        assert schedule.finished
        assert schedule.runs == 3
        assert schedule.next_run_time is None
        assert scheduler.get_schedule("three") is None
        assert len(scheduler.schedules) == 0
    assert len(runs.starts) == 3


async def test_join_waits_until_every_schedule_finished() -> None:
    async with TimedScheduler() as scheduler:
        begin = anyio.current_time()
        short = scheduler.add_schedule(Every(5), noop, max_runs=2)
        long = scheduler.add_schedule(Every(7), noop, max_runs=3)
        await scheduler.join()
        assert anyio.current_time() - begin == pytest.approx(21)
        assert short.finished
        assert long.finished
        assert (short.runs, long.runs) == (2, 3)


async def test_endless_schedule_keeps_async_with_open_until_removed() -> None:
    async with TimedScheduler() as scheduler:
        begin = anyio.current_time()
        schedule = scheduler.add_schedule(Every(10), noop)
        scheduler.start_after(95, _remove, schedule)
    assert anyio.current_time() - begin == pytest.approx(95)
    assert schedule.runs == 9


async def _remove(schedule: Schedule) -> None:
    schedule.remove()


# -- wall-clock triggers ---------------------------------------------------------


@pytest.mark.parametrize(
    "trigger",
    [
        Cron("*/5 * * * *"),
        Cron("0 3 * * *", tz="Europe/Berlin"),
        Calendar(days=1, at="03:00"),
        Calendar(weeks=1, at="12:30", tz="America/New_York"),
    ],
    ids=["cron-5min", "cron-berlin", "calendar-daily", "calendar-weekly"],
)
async def test_wall_triggers_fire_at_their_wall_times(trigger: Any) -> None:
    # A long wall_poll: weeks of virtual time pass in a few wake-ups.
    async with TimedScheduler(wall_poll=86400) as scheduler:
        runs = Runs(scheduler)
        added = scheduler.now()
        expected = trigger.preview(3, after=added)
        schedule = runs.add(trigger, max_runs=3)
        assert close_to(schedule.next_run_time, expected[0])
        assert schedule.next_run_time is not None
        assert schedule.next_run_time.tzinfo is UTC
    assert len(runs.walls) == 3
    for wall, task, fire in zip(runs.walls, runs.tasks, expected, strict=True):
        assert close_to(wall, fire)  # started at its wall time
        assert task is not None
        assert task.when == fire.astimezone(UTC)


async def test_at_fires_once_then_finishes() -> None:
    async with TimedScheduler() as scheduler:
        runs = Runs(scheduler)
        when = scheduler.now() + timedelta(hours=1)
        schedule = runs.add(At(when))
    assert len(runs.walls) == 1
    assert close_to(runs.walls[0], when)
    assert schedule.finished
    assert schedule.runs == 1


async def test_at_already_past_finishes_at_once() -> None:
    async with TimedScheduler() as scheduler:
        schedule = scheduler.add_schedule(
            At(scheduler.now() - timedelta(hours=1)), noop, id="gone"
        )
        assert schedule.finished
        assert scheduler.get_schedule("gone") is None
        await scheduler.join()  # nothing pins the scheduler


# -- failing runs ------------------------------------------------------------------


async def failing() -> None:
    raise RuntimeError("boom")


async def test_failing_runs_never_stop_the_schedule_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="aioscheduler"):
        async with TimedScheduler() as scheduler:
            schedule = scheduler.add_schedule(Every(10), failing, max_runs=3)
    assert schedule.runs == 3
    assert schedule.finished
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 3
    assert schedule.last_task is not None
    assert isinstance(schedule.last_task.exception(), RuntimeError)


async def test_failing_runs_never_stop_the_schedule_on_error() -> None:
    seen: list[tuple[Task[Any], BaseException]] = []
    scheduler = TimedScheduler(on_error=lambda task, exc: seen.append((task, exc)))
    async with scheduler:
        schedule = scheduler.add_schedule(Every(10), failing, max_runs=3)
    assert schedule.runs == 3
    assert len(seen) == 3
    assert all(isinstance(exc, RuntimeError) for _, exc in seen)
    assert seen[-1][0] is schedule.last_task


# -- misfire_grace -----------------------------------------------------------------


async def blocker(seconds: float) -> None:
    block_the_loop(seconds)


async def test_misfire_grace_blocked_loop_drops_a_late_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="aioscheduler"):
        async with TimedScheduler() as scheduler:
            runs = Runs(scheduler)
            begin = anyio.current_time()
            scheduler.start_after(5, blocker, 20)  # the loop is stuck 5 .. 25
            schedule = runs.add(Every(10), misfire_grace=2, max_runs=2, id="late")
    # 10 is coalesced away, 20 could only start at 25: 5 s > 2 s late.
    assert runs.since(begin) == pytest.approx([30, 40])
    assert schedule.missed == 2
    warnings = [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name == "aioscheduler"
    ]
    assert len(warnings) == 1
    assert "late" in warnings[0].getMessage()


async def test_misfire_grace_within_grace_runs_late() -> None:
    async with TimedScheduler() as scheduler:
        runs = Runs(scheduler)
        begin = anyio.current_time()
        scheduler.start_after(5, blocker, 20)
        schedule = runs.add(Every(10), misfire_grace=timedelta(seconds=6), max_runs=2)
    assert runs.since(begin) == pytest.approx([25, 30])
    assert schedule.missed == 1  # 10, coalesced into 20
    first = runs.tasks[0]
    assert first is not None
    assert first.when is not None
    assert runs.walls[0] - first.when == pytest.approx(timedelta(seconds=5), abs=MS)


async def test_misfire_grace_forward_jump(caplog: pytest.LogCaptureFixture) -> None:
    clock = SteppedClock()
    trigger = Cron("* * * * *")
    with caplog.at_level(logging.WARNING, logger="aioscheduler"):
        async with TimedScheduler(wall_clock=clock) as scheduler:
            runs = Runs(scheduler)
            schedule = runs.add(trigger, misfire_grace=30, max_runs=1)
            now = scheduler.now()
            # Jump to 45 s past a minute, an hour on: the latest fire time is
            # 45 s old, past the grace.
            target = now.replace(second=45, microsecond=0) + timedelta(hours=1)
            clock.shift += (target - now).total_seconds()
            wake(scheduler)
            await anyio.sleep(1)
            assert schedule.runs == 0
            missed = schedule.missed
            assert missed == len(
                [f for f in trigger.preview(100, after=now) if f <= target]
            )
        # The next minute's run starts on time and ends it.
        assert close_to(runs.walls[0], target + timedelta(seconds=15))
    assert any(
        r.levelno == logging.WARNING and r.name == "aioscheduler"
        for r in caplog.records
    )


# -- coalesce ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("coalesce", "fire", "missed"), [("latest", 50, 4), ("earliest", 10, 4)]
)
async def test_coalesce_one_run_after_a_blocked_loop(
    coalesce: Any, fire: int, missed: int
) -> None:
    async with TimedScheduler() as scheduler:
        runs = Runs(scheduler)
        begin = anyio.current_time()
        added = scheduler.now()
        scheduler.start_after(5, blocker, 50)  # stuck 5 .. 55: 10..50 due
        schedule = runs.add(Every(10), coalesce=coalesce, max_runs=2)
    assert runs.since(begin) == pytest.approx([55, 60])
    task = runs.tasks[0]
    assert task is not None
    assert close_to(task.when, added + timedelta(seconds=fire))
    assert schedule.missed == missed


async def test_coalesce_all_runs_the_latest_max_catchup_one_after_another() -> None:
    async with TimedScheduler() as scheduler:
        runs = Runs(scheduler, duration=2)
        begin = anyio.current_time()
        added = scheduler.now()
        scheduler.start_after(5, blocker, 50)  # stuck 5 .. 55: 10..50 due
        schedule = runs.add(
            Every(10), coalesce="all", max_catchup=3, overlap="allow", max_runs=3
        )
    # 30, 40, 50, oldest first, each once the previous one ended (even
    # with overlap="allow").
    assert runs.since(begin) == pytest.approx([55, 57, 59])
    assert runs.most_at_once == 1
    whens = runs.whens()
    assert len(whens) == 3
    for when, k in zip(whens, (3, 4, 5), strict=True):
        assert close_to(when, added + timedelta(seconds=10 * k))
    assert schedule.missed == 2  # 10 and 20


async def test_coalesce_all_then_the_schedule_goes_on() -> None:
    async with TimedScheduler() as scheduler:
        runs = Runs(scheduler, duration=1)
        begin = anyio.current_time()
        scheduler.start_after(5, blocker, 30)  # stuck 5 .. 35: 10, 20, 30 due
        schedule = runs.add(Every(10), coalesce="all", max_runs=5)
    assert runs.since(begin) == pytest.approx([35, 36, 37, 40, 50])
    assert (schedule.runs, schedule.missed, schedule.skipped) == (5, 0, 0)


async def test_coalesce_all_with_misfire_grace_drops_the_too_late() -> None:
    async with TimedScheduler() as scheduler:
        runs = Runs(scheduler, duration=2)
        begin = anyio.current_time()
        scheduler.start_after(5, blocker, 30)  # stuck 5 .. 35: 10, 20, 30 due
        schedule = runs.add(Every(10), coalesce="all", misfire_grace=16, max_runs=3)
    # 10 is 25 s late: dropped; 20 runs at 35 (15 s late), 30 at 37.
    assert runs.since(begin) == pytest.approx([35, 37, 40])
    assert schedule.missed == 1


async def test_huge_jump_on_per_second_cron_counts_10000_missed() -> None:
    clock = SteppedClock()
    async with TimedScheduler(wall_clock=clock) as scheduler:
        runs = Runs(scheduler)
        schedule = runs.add(Cron("* * * * * *"), max_runs=2)
        clock.shift += 200 * 365.25 * 86400  # 200 years on
        wake(scheduler)
    assert schedule.runs == 2
    assert schedule.missed == 10_000
    assert runs.walls[0].year >= 2200


async def test_huge_jump_coalesce_all_runs_max_catchup() -> None:
    clock = SteppedClock()
    async with TimedScheduler(wall_clock=clock) as scheduler:
        runs = Runs(scheduler)
        schedule = runs.add(
            Cron("* * * * * *"), coalesce="all", max_catchup=5, max_runs=5
        )
        clock.shift += 200 * 365.25 * 86400
        wake(scheduler)
    assert schedule.runs == 5
    assert schedule.missed == 10_000
    whens = runs.whens()
    assert whens == sorted(whens)
    assert len(set(whens)) == 5
    assert all(b - a == timedelta(seconds=1) for a, b in itertools.pairwise(whens))


# -- overlap -------------------------------------------------------------------------


async def test_overlap_skip() -> None:
    async with TimedScheduler() as scheduler:
        runs = Runs(scheduler, duration=25)
        begin = anyio.current_time()
        schedule = runs.add(Every(10), max_runs=2)
    assert runs.since(begin) == pytest.approx([10, 40])
    assert (schedule.runs, schedule.skipped, schedule.missed) == (2, 2, 0)


async def test_overlap_buffer_one() -> None:
    async with TimedScheduler() as scheduler:
        runs = Runs(scheduler, duration=25)
        begin = anyio.current_time()
        added = scheduler.now()
        schedule = runs.add(Every(10), overlap="buffer_one", max_runs=3)
    # 10 runs 10..35; 20 waits; 30 skips (one waits already); 20 runs
    # 35..60; 40 waits, and max_runs is reached; it still runs, at 60.
    assert runs.since(begin) == pytest.approx([10, 35, 60])
    whens = runs.whens()
    assert len(whens) == 3
    for when, k in zip(whens, (1, 2, 4), strict=True):
        assert close_to(when, added + timedelta(seconds=10 * k))
    assert (schedule.runs, schedule.skipped) == (3, 1)
    assert runs.most_at_once == 1


async def test_overlap_buffer_all_buffered_runs_run_after_max_runs() -> None:
    async with TimedScheduler() as scheduler:
        runs = Runs(scheduler, duration=25)
        begin = anyio.current_time()
        schedule = runs.add(Every(10), overlap="buffer_all", max_runs=3)
        await anyio.sleep(31)
        assert schedule.finished  # 10 ran, 20 and 30 wait
        assert runs.since(begin) == pytest.approx([10])
    assert runs.since(begin) == pytest.approx([10, 35, 60])
    assert (schedule.runs, schedule.skipped) == (3, 0)
    assert runs.most_at_once == 1


async def test_overlap_buffer_all_buffered_runs_run_after_end() -> None:
    async with TimedScheduler() as scheduler:
        runs = Runs(scheduler, duration=25)
        begin = anyio.current_time()
        end = scheduler.now() + timedelta(seconds=25)
        schedule = runs.add(Every(10, end=end), overlap="buffer_all")
    assert runs.since(begin) == pytest.approx([10, 35])
    assert schedule.finished
    assert schedule.runs == 2


async def test_overlap_allow_runs_concurrently() -> None:
    async with TimedScheduler() as scheduler:
        runs = Runs(scheduler, duration=25)
        begin = anyio.current_time()
        schedule = runs.add(Every(10), overlap="allow", max_runs=3)
    assert runs.since(begin) == pytest.approx([10, 20, 30])
    assert runs.most_at_once == 3
    assert schedule.skipped == 0


async def test_overlap_cancel_previous() -> None:
    async with TimedScheduler() as scheduler:
        runs = Runs(scheduler, duration=25)
        begin = anyio.current_time()
        schedule = runs.add(Every(10), overlap="cancel_previous", max_runs=3)
    assert runs.since(begin) == pytest.approx([10, 20, 30])
    # Each new one started only once the previous one had ended.
    assert [round(t - begin, 6) for t in runs.ends] == pytest.approx([20, 30, 55])
    assert runs.most_at_once == 1
    tasks = [task for task in runs.tasks if task is not None]
    assert [task.cancelled() for task in tasks] == [True, True, False]
    assert schedule.runs == 3


@pytest.mark.parametrize("how", ["pause", "remove"])
async def test_pause_and_remove_drop_buffered_runs(how: str) -> None:
    async with TimedScheduler() as scheduler:
        runs = Runs(scheduler, duration=25)
        begin = anyio.current_time()
        schedule = runs.add(Every(10), overlap="buffer_all")
        await anyio.sleep(22)
        waiting = schedule.last_task
        assert waiting is not None
        assert not waiting.done()
        if how == "pause":
            schedule.pause()
        else:
            assert schedule.remove()
        assert waiting.cancelled()
        await anyio.sleep(30)
        schedule.remove()
    assert runs.since(begin) == pytest.approx([10])
    assert runs.ends == pytest.approx([begin + 35])  # the running one was not cancelled


# -- jitter -------------------------------------------------------------------------


async def test_jitter_delays_each_run_within_jitter() -> None:
    async with TimedScheduler() as scheduler:
        runs = Runs(scheduler)
        schedule = runs.add(Every(60), jitter=20, max_runs=6)
    delays = []
    for wall, task in zip(runs.walls, runs.tasks, strict=True):
        assert task is not None
        assert task.when is not None
        delays.append((wall - task.when).total_seconds())
    assert all(0 <= d < 20 for d in delays), delays
    assert len(set(delays)) > 1  # pseudo-random, not one constant
    assert schedule.runs == 6


async def test_jitter_is_the_same_for_the_same_id_and_fire_time() -> None:
    trigger = Cron("* * * * *")
    delays: dict[str, list[tuple[datetime, float]]] = {}
    async with TimedScheduler() as one, TimedScheduler() as two:
        first = Runs(one)
        second = Runs(two)
        other = Runs(two)
        first.add(trigger, id="same", jitter=50, max_runs=3)
        second.add(trigger, id="same", jitter=50, max_runs=3)
        other.add(trigger, id="other", jitter=50, max_runs=3)
    for name, runs in (("first", first), ("second", second), ("other", other)):
        delays[name] = []
        for wall, task in zip(runs.walls, runs.tasks, strict=True):
            assert task is not None
            assert task.when is not None
            delay = (wall - task.when).total_seconds()
            assert 0 <= delay < 50
            delays[name].append((task.when, round(delay, 3)))
    assert delays["first"] == delays["second"]
    assert [w for w, _ in delays["other"]] == [w for w, _ in delays["first"]]
    assert delays["other"] != delays["first"]


async def test_jitter_never_reaches_the_next_fire_time() -> None:
    async with TimedScheduler() as scheduler:
        runs = Runs(scheduler)
        begin = anyio.current_time()
        runs.add(Every(10), jitter=1000, max_runs=8)
    for k, at in enumerate(runs.since(begin), 1):
        assert 10 * k <= at < 10 * (k + 1)


# -- pause / resume -----------------------------------------------------------------


async def test_pause_resume_without_catch_up() -> None:
    async with TimedScheduler() as scheduler:
        runs = Runs(scheduler)
        begin = anyio.current_time()
        added = scheduler.now()
        schedule = runs.add(Every(10), max_runs=2)
        await anyio.sleep(15)
        schedule.pause()
        assert schedule.paused
        assert live_entries(scheduler, schedule) == 0  # costs nothing while paused
        await anyio.sleep(40)  # 20, 30, 40, 50 pass
        # As resuming would use it: the next fire time after now.
        assert close_to(schedule.next_run_time, added + timedelta(seconds=60))
        schedule.resume()
        assert close_to(schedule.next_run_time, added + timedelta(seconds=60))
        assert not schedule.paused
        assert live_entries(scheduler, schedule) == 1
    assert runs.since(begin) == pytest.approx([10, 60])
    assert (schedule.missed, schedule.skipped) == (0, 0)


async def test_pause_resume_wall_trigger_without_catch_up() -> None:
    trigger = Cron("*/10 * * * *")
    async with TimedScheduler() as scheduler:
        runs = Runs(scheduler)
        fires = trigger.preview(10, after=scheduler.now())
        schedule = runs.add(trigger, max_runs=2)
        await anyio.sleep((fires[0] - scheduler.now()).total_seconds() + 1)
        schedule.pause()
        assert live_entries(scheduler, schedule) == 0
        await anyio.sleep(3600)
        assert schedule.next_run_time == fires[7]
        schedule.resume()
        assert schedule.next_run_time == fires[7]
    assert runs.whens() == [fires[0], fires[7]]
    assert schedule.missed == 0


@pytest.mark.parametrize(
    ("coalesce", "starts", "missed"),
    [
        ("latest", [10, 55, 60], 3),
        ("earliest", [10, 55, 60], 3),
        ("all", [10, 55, 56, 57], 0),
    ],
)
async def test_resume_with_catch_up(
    coalesce: Any, starts: list[float], missed: int
) -> None:
    async with TimedScheduler() as scheduler:
        runs = Runs(scheduler, duration=1)
        begin = anyio.current_time()
        schedule = runs.add(Every(10), coalesce=coalesce, max_runs=len(starts))
        await anyio.sleep(15)
        schedule.pause()
        await anyio.sleep(40)  # 20, 30, 40, 50 pass
        schedule.resume(catch_up=True)
    assert runs.since(begin) == pytest.approx(starts)
    assert schedule.missed == missed


async def test_added_paused_does_not_run_until_resumed() -> None:
    async with TimedScheduler() as scheduler:
        runs = Runs(scheduler)
        begin = anyio.current_time()
        schedule = runs.add(Every(10), paused=True, max_runs=1)
        assert schedule.paused
        assert live_entries(scheduler, schedule) == 0
        await anyio.sleep(35)
        assert runs.starts == []
        schedule.resume()
    assert runs.since(begin) == pytest.approx([40])


# -- run_now ------------------------------------------------------------------------


async def test_run_now_runs_at_once_and_counts() -> None:
    async with TimedScheduler() as scheduler:
        runs = Runs(scheduler)
        begin = anyio.current_time()
        schedule = runs.add(Every(100), max_runs=2)
        await anyio.sleep(5)
        before = schedule.next_run_time
        task = schedule.run_now()
        assert task is not None
        assert schedule.runs == 1
        assert schedule.next_run_time == before
        assert await task.wait() is None
    assert runs.since(begin) == pytest.approx([5, 100])
    assert schedule.finished


async def test_run_now_runs_now_even_with_jitter() -> None:
    async with TimedScheduler() as scheduler:
        runs = Runs(scheduler)
        begin = anyio.current_time()
        schedule = runs.add(Every(100), jitter=99, id="j", max_runs=1)
        await anyio.sleep(5)
        task = schedule.run_now()
        assert task is not None
        await task.wait()
    assert runs.since(begin) == pytest.approx([5])


async def test_run_now_obeys_overlap() -> None:
    async with TimedScheduler() as scheduler:
        skip = Runs(scheduler, duration=50)
        buffered = Runs(scheduler, duration=50)
        begin = anyio.current_time()
        one = skip.add(Every(10), max_runs=2)
        two = buffered.add(Every(10), overlap="buffer_one", max_runs=2)
        await anyio.sleep(15)
        assert one.run_now() is None
        assert one.skipped == 1
        assert one.runs == 1
        waiting = two.run_now()
        assert waiting is not None
        assert not waiting.done()
        assert two.runs == 2
        assert two.finished
        one.remove()
    assert buffered.since(begin) == pytest.approx([10, 60])
    assert waiting.done()
    assert not waiting.cancelled()


async def test_run_now_on_a_finished_schedule_returns_none() -> None:
    async with TimedScheduler() as scheduler:
        schedule = scheduler.add_schedule(Every(10), noop)
        assert schedule.remove()
        assert schedule.run_now() is None


# -- remove --------------------------------------------------------------------------


async def test_remove() -> None:
    async with TimedScheduler() as scheduler:
        runs = Runs(scheduler, duration=10)
        begin = anyio.current_time()
        schedule = runs.add(Every(10), id="r")
        await anyio.sleep(15)
        running = schedule.last_task
        assert running is not None
        assert not running.done()
        assert schedule.remove() is True
        assert schedule.remove() is False
        assert schedule.finished
        assert schedule.next_run_time is None
        assert scheduler.get_schedule("r") is None
        assert "r" not in scheduler.schedules
    assert anyio.current_time() - begin == pytest.approx(20)  # the run ended
    assert running.done()
    assert not running.cancelled()
    assert runs.since(begin) == pytest.approx([10])


# -- on_conflict ---------------------------------------------------------------------


async def other_job() -> None:
    pass


async def test_on_conflict_error_and_keep() -> None:
    async with TimedScheduler() as scheduler:
        first = scheduler.add_schedule(Every(10), noop, id="x")
        with pytest.raises(ScheduleConflict) as caught:
            scheduler.add_schedule(Every(5), other_job, id="x")
        assert isinstance(caught.value, ValueError)
        kept = scheduler.add_schedule(Every(5), other_job, id="x", on_conflict="keep")
        assert kept is first
        assert first.trigger == Every(10)
        assert scheduler.get_schedule("x") is first
        assert len(scheduler.schedules) == 1
        first.remove()


async def test_on_conflict_replace_equal_trigger_keeps_progress() -> None:
    async with TimedScheduler() as scheduler:
        old_runs = Runs(scheduler)
        new_runs = Runs(scheduler)
        begin = anyio.current_time()
        old = old_runs.add(Every(10), id="p", max_runs=5)
        await anyio.sleep(15)
        new_runs.schedule = new = scheduler.add_schedule(
            Every(10), new_runs.job, id="p", on_conflict="replace", max_runs=3
        )
        assert new is not old
        assert old.finished
        assert scheduler.get_schedule("p") is new
        assert new.runs == 1
    # Same cadence: 20 and 30 (not 25), by the new function; 3 runs in all.
    assert old_runs.since(begin) == pytest.approx([10])
    assert new_runs.since(begin) == pytest.approx([20, 30])


async def test_on_conflict_replace_other_trigger_starts_afresh() -> None:
    async with TimedScheduler() as scheduler:
        runs = Runs(scheduler)
        begin = anyio.current_time()
        runs.add(Every(10), id="p")
        await anyio.sleep(15)
        runs.add(Every(7), id="p", on_conflict="replace", max_runs=1)
    assert runs.since(begin) == pytest.approx([10, 22])


async def test_on_conflict_replace_wall_trigger_never_runs_a_fire_time_twice() -> None:
    clock = SteppedClock()
    trigger = Cron("*/10 * * * *")
    async with TimedScheduler(wall_clock=clock) as scheduler:
        runs = Runs(scheduler)
        fires = trigger.preview(2, after=scheduler.now())
        runs.add(trigger, id="c")
        await anyio.sleep((fires[0] - scheduler.now()).total_seconds() + 1)
        assert len(runs.walls) == 1
        clock.shift -= 3600  # the clock is set back: fires[0] lies ahead again
        runs.add(trigger, id="c", on_conflict="replace", max_runs=2)
    whens = runs.whens()
    assert whens == [fires[0], fires[1]]


# -- max_tasks ----------------------------------------------------------------------


async def test_run_refused_by_max_tasks_is_missed_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="aioscheduler"):
        async with TimedScheduler(max_tasks=1) as scheduler:
            runs = Runs(scheduler)
            begin = anyio.current_time()
            scheduler.start_after(0, anyio.sleep, 95)
            schedule = runs.add(Every(10), max_runs=1)
    assert runs.since(begin) == pytest.approx([100])
    assert schedule.missed == 9
    warnings = [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name == "aioscheduler"
    ]
    assert len(warnings) == 9
    assert "max_tasks" in warnings[0].getMessage()


# -- bad values -----------------------------------------------------------------------


def sync_fn() -> None:
    pass


@pytest.mark.parametrize(
    ("trigger", "fn", "options", "error"),
    [
        (Every(10), noop, {"jitter": -1}, ValueError),
        (Every(10), noop, {"jitter": timedelta(seconds=-1)}, ValueError),
        (Every(10), noop, {"jitter": "1"}, TypeError),
        (Every(10), noop, {"misfire_grace": -0.5}, ValueError),
        (Every(10), noop, {"misfire_grace": float("nan")}, ValueError),
        (Every(10), noop, {"coalesce": "newest"}, ValueError),
        (Every(10), noop, {"overlap": "queue"}, ValueError),
        (Every(10), noop, {"on_conflict": "ignore"}, ValueError),
        (Every(10), noop, {"max_runs": 0}, ValueError),
        (Every(10), noop, {"max_runs": 1.5}, TypeError),
        (Every(10), noop, {"max_catchup": 0}, ValueError),
        (Every(10), noop, {"paused": 1}, TypeError),
        (Every(10), noop, {"id": 5}, TypeError),
        (10, noop, {}, TypeError),
        ("* * * * *", noop, {}, TypeError),
        (Every(10), sync_fn, {}, TypeError),
    ],
)
async def test_bad_values_raise_at_the_call_and_add_nothing(
    trigger: Any, fn: Any, options: dict[str, Any], error: type[Exception]
) -> None:
    async with TimedScheduler() as scheduler:
        with pytest.raises(error):
            scheduler.add_schedule(trigger, fn, **options)
        assert len(scheduler.schedules) == 0
        assert scheduler._pinned == 0
        with anyio.fail_after(1):
            await scheduler.join()  # nothing pins it


def test_bad_trigger_values() -> None:
    with pytest.raises(ValueError, match="period"):
        Every(0)
    with pytest.raises(ValueError, match="period"):
        Every(-1)


# -- clock jumps ---------------------------------------------------------------------


async def test_forward_jump_over_cron_fire_times_coalesces() -> None:
    clock = SteppedClock()
    trigger = Cron("0 * * * *")
    async with TimedScheduler(wall_clock=clock) as scheduler:
        runs = Runs(scheduler)
        added = scheduler.now()
        schedule = runs.add(trigger, max_runs=1)
        clock.shift += 5 * 3600 + 600
        now = scheduler.now()
        wake(scheduler)
    due = [f for f in trigger.preview(20, after=added) if f <= now]
    assert len(due) in (5, 6)
    task = runs.tasks[0]
    assert task is not None
    assert task.when == due[-1].astimezone(UTC)
    assert schedule.missed == len(due) - 1


async def test_backward_step_never_runs_a_fire_time_twice_nor_early() -> None:
    clock = SteppedClock()
    async with TimedScheduler(wall_clock=clock, wall_poll=5) as scheduler:
        runs = Runs(scheduler)
        schedule = runs.add(Cron("*/10 * * * *"))
        await anyio.sleep(35 * 60)
        assert len(runs.walls) in (3, 4)
        clock.shift -= 3600
        await anyio.sleep(2 * 3600)
        schedule.remove()
    whens = runs.whens()
    counts = Counter(whens)
    assert all(n == 1 for n in counts.values()), counts
    assert whens == sorted(whens)
    for wall, when in zip(runs.walls, whens, strict=True):
        assert when is not None
        assert wall >= when - MS
    # Nothing in the replayed hour: after the step, the wall clock had to
    # catch up with the last fire time before the next one ran.
    gaps = [b - a for a, b in itertools.pairwise(whens)]
    assert all(gap == timedelta(minutes=10) for gap in gaps)


async def test_every_keeps_its_cadence_across_clock_steps() -> None:
    clock = SteppedClock()
    async with TimedScheduler(wall_clock=clock, wall_poll=5) as scheduler:
        runs = Runs(scheduler)
        begin = anyio.current_time()
        schedule = runs.add(Every(60), max_runs=4)
        await anyio.sleep(90)
        clock.shift += 3600
        await anyio.sleep(60)
        clock.shift -= 7200
    assert runs.since(begin) == pytest.approx([60, 120, 180, 240])
    assert schedule.missed == 0


async def test_suspend_over_a_cron_fire_time_runs_it_within_wall_poll() -> None:
    clock = SteppedClock()
    trigger = Cron("0 * * * *")
    async with TimedScheduler(wall_clock=clock, wall_poll=5) as scheduler:
        runs = Runs(scheduler)
        begin = anyio.current_time()
        fire = trigger.next_after(scheduler.now())
        schedule = runs.add(trigger, max_runs=1)
        await anyio.sleep(10)
        clock.shift += 3600  # slept an hour: one fire time passed
    assert 10 <= runs.starts[0] - begin <= 15
    task = runs.tasks[0]
    assert task is not None
    assert task.when == fire
    assert schedule.missed == 0


async def test_add_schedule_reads_the_wall_clock_again() -> None:
    clock = SteppedClock()
    trigger = Cron("0 * * * *")
    async with TimedScheduler(wall_clock=clock) as scheduler:
        scheduler.now()
        clock.shift += 86400
        schedule = scheduler.add_schedule(trigger, noop)
        expected = trigger.next_after(datetime.now(UTC) + timedelta(days=1))
        assert close_to(schedule.next_run_time, expected, timedelta(seconds=0))
        schedule.remove()


# -- aclose ----------------------------------------------------------------------------


async def test_aclose_removes_every_schedule_and_cancels_running_runs() -> None:
    async with TimedScheduler() as scheduler:
        runs = Runs(scheduler, duration=100)
        one = runs.add(Every(10))
        two = scheduler.add_schedule(Cron("* * * * *"), noop, id="cron")
        await anyio.sleep(15)
        running = one.last_task
        assert running is not None
        assert not running.done()
        await scheduler.aclose()
        assert running.cancelled()
        assert one.finished
        assert two.finished
        assert len(scheduler.schedules) == 0
        assert scheduler.get_schedule("cron") is None
        with pytest.raises(SchedulerClosed):
            scheduler.add_schedule(Every(10), noop)


# -- Manager ---------------------------------------------------------------------------


async def test_manager_places_on_the_least_loaded_and_runs_there() -> None:
    async with Manager(3) as manager:
        children = manager.schedulers
        manager.start_after(1000, noop)
        manager.start_after(1000, noop)
        loads = [len(child.pending_tasks()) for child in children]
        empty = children[loads.index(0)]
        schedule = manager.add_schedule(Every(10), noop, id="m", max_runs=2)
        assert "m" in empty.schedules
        assert manager.get_schedule("m") is schedule
        assert dict(manager.schedules) == {"m": schedule}
        await anyio.sleep(11)
        assert schedule.last_task is not None
        assert schedule.last_task._owner is empty
        assert close_to(manager.now(), empty.now())
        await manager.aclose()


async def test_manager_ids_are_unique_across_schedulers() -> None:
    async with Manager(2) as manager:
        first = manager.add_schedule(Every(10), noop, id="same")
        holder = next(c for c in manager.schedulers if "same" in c.schedules)
        other = next(c for c in manager.schedulers if c is not holder)
        other.start_after(1000, noop)  # whatever the loads say
        holder.start_after(1000, noop)
        holder.start_after(1000, noop)
        with pytest.raises(ScheduleConflict):
            manager.add_schedule(Every(5), noop, id="same")
        assert manager.add_schedule(Every(5), noop, id="same", on_conflict="keep") is (
            first
        )
        generated = [manager.add_schedule(Every(10), noop) for _ in range(4)]
        ids = {s.id for s in generated} | {"same"}
        assert len(ids) == 5
        assert set(manager.schedules) == ids
        await manager.aclose()


async def test_manager_spreads_schedules_over_its_schedulers() -> None:
    async with Manager(3) as manager:
        for n in range(6):
            manager.add_schedule(Every(10), noop, id=f"s{n}")
        assert [len(child.schedules) for child in manager.schedulers] == [2, 2, 2]
        await manager.aclose()


async def test_manager_max_tasks_refuses_runs_over_the_total(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="aioscheduler"):
        async with Manager(2, max_tasks=1) as manager:
            begin = anyio.current_time()
            manager.start_after(0, anyio.sleep, 25)  # the one slot, 0 .. 25
            schedule = manager.add_schedule(Every(10), noop, max_runs=1)
    assert schedule.missed == 2  # 10 and 20
    assert schedule.last_task is not None
    assert anyio.current_time() - begin == pytest.approx(30)
    assert sum("max_tasks" in r.getMessage() for r in caplog.records) == 2


async def test_manager_join_waits_for_schedules() -> None:
    async with Manager(2) as manager:
        begin = anyio.current_time()
        manager.add_schedule(Every(10), noop, max_runs=3)
        manager.add_schedule(Every(4), noop, max_runs=2)
    assert anyio.current_time() - begin == pytest.approx(30)
