"""Time at the API boundary: datetimes and delays to loop-clock deadlines.

A naive datetime is UTC with ``prefer_utc=True`` (the default) and local time
with ``prefer_utc=False``; an aware one is that instant in any zone. Each
scheduler converts with one wall-to-loop offset, read at its first
scheduling call or start, so equal times stay ties. "In the past" is judged
against the wall clock.

The local zone is set to a known non-UTC zone (``TZ`` plus ``time.tzset``)
wherever naive datetimes are read, so a UTC/local mix-up is hours off. The
loop clock is virtual (see ``conftest.py``); the wall clock is real and
barely moves during a test, which these tests also rely on to tell the two
apart.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import anyio
import pytest

from aioscheduler import Task, TimedScheduler
from aioscheduler._time import (
    delay_seconds,
    naive_to_utc,
    timestamp_of,
    utc_from_timestamp,
)

TICK = 5e-6  # looptime ticks in whole µs; timers are set 1 ns past deadlines
EPS = 1e-6  # float error of a ~1.8e9 s timestamp turned into a deadline

KOLKATA = ZoneInfo("Asia/Kolkata")  # UTC+05:30, no DST
NEW_YORK = ZoneInfo("America/New_York")  # UTC-05:00 / -04:00
TOKYO = ZoneInfo("Asia/Tokyo")

Log = list[tuple[str, float]]


async def record(log: Log, name: str) -> None:
    log.append((name, anyio.current_time()))


SetZone = Callable[[str], None]


@pytest.fixture
def local_zone() -> Iterator[SetZone]:
    """Set the process's local time zone; restored after the test."""
    saved = os.environ.get("TZ")

    def set_zone(name: str) -> None:
        os.environ["TZ"] = name
        time.tzset()

    try:
        yield set_zone
    finally:
        if saved is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved
        time.tzset()


@dataclass
class Bound:
    """Loop time and wall clock around the moment a scheduler read its offset."""

    t0: float
    wall_before: float
    wall_after: float

    def deadline_range(self, timestamp: float) -> tuple[float, float]:
        return (
            self.t0 + (timestamp - self.wall_after) - EPS,
            self.t0 + (timestamp - self.wall_before) + TICK,
        )

    def assert_at_wall(self, seen: float, instant: datetime) -> None:
        """*seen* is the loop time the aware *instant* maps to."""
        assert instant.tzinfo is not None
        earliest, latest = self.deadline_range(instant.timestamp())
        assert earliest <= seen <= latest, (seen, earliest, latest)


@asynccontextmanager
async def serving(scheduler: TimedScheduler) -> AsyncIterator[Bound]:
    t0 = anyio.current_time()
    wall_before = time.time()
    async with scheduler:
        wall_after = time.time()
        assert anyio.current_time() == t0
        yield Bound(t0, wall_before, wall_after)


def utc_now() -> datetime:
    return datetime.now(UTC)


def assert_aware_utc(value: datetime | None) -> datetime:
    assert isinstance(value, datetime)
    assert value.tzinfo is not None
    assert value.utcoffset() == timedelta(0)
    return value


class TestNaiveDatetimes:
    async def test_naive_is_utc_by_default(self, local_zone: SetZone) -> None:
        local_zone("Asia/Kolkata")
        log: Log = []
        scheduler = TimedScheduler()
        async with serving(scheduler) as bound:
            instant = utc_now() + timedelta(hours=1)
            naive = instant.replace(tzinfo=None)
            task = scheduler.start_at(naive, record, log, "a")
            assert task.when == instant
        bound.assert_at_wall(log[0][1], instant)

    async def test_naive_is_utc_with_prefer_utc_true(self, local_zone: SetZone) -> None:
        local_zone("America/New_York")
        log: Log = []
        scheduler = TimedScheduler(prefer_utc=True)
        async with serving(scheduler) as bound:
            instant = utc_now() + timedelta(minutes=30)
            scheduler.schedule(record(log, "a"), instant.replace(tzinfo=None))
        bound.assert_at_wall(log[0][1], instant)

    @pytest.mark.parametrize("zone", ["Asia/Kolkata", "America/New_York"])
    async def test_naive_is_local_with_prefer_utc_false(
        self, local_zone: SetZone, zone: str, backend_name: str
    ) -> None:
        local_zone(zone)
        log: Log = []
        scheduler = TimedScheduler(prefer_utc=False)
        async with serving(scheduler) as bound:
            instant = utc_now() + timedelta(hours=1)
            naive_local = instant.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
            task = scheduler.start_at(naive_local, record, log, "a")
            coro_task = scheduler.schedule(record(log, "b"), naive_local)
            assert task.when == instant
            assert coro_task.when == instant
        if backend_name == "asyncio":  # a tie: Trio may start them either way
            assert [name for name, _ in log] == ["a", "b"]
        assert sorted(name for name, _ in log) == ["a", "b"]
        bound.assert_at_wall(log[0][1], instant)
        assert log[1][1] == log[0][1]

    async def test_naive_utc_read_as_local_east_of_utc_is_past(
        self, local_zone: SetZone
    ) -> None:
        # An hour ahead in UTC, read as Kolkata time, was 4.5 hours ago.
        local_zone("Asia/Kolkata")
        async with TimedScheduler(prefer_utc=False) as scheduler:
            naive_utc = (utc_now() + timedelta(hours=1)).replace(tzinfo=None)
            with pytest.raises(ValueError, match=r"May only be in the future\."):
                scheduler.start_at(naive_utc, record, [], "a")

    async def test_naive_utc_read_as_local_west_of_utc_is_later(
        self, local_zone: SetZone
    ) -> None:
        local_zone("America/New_York")
        log: Log = []
        scheduler = TimedScheduler(prefer_utc=False)
        async with serving(scheduler) as bound:
            naive = (utc_now() + timedelta(minutes=1)).replace(tzinfo=None)
            task = scheduler.start_at(naive, record, log, "a")
        instant = naive.replace(tzinfo=NEW_YORK)
        assert instant - utc_now() > timedelta(hours=3)  # 4 or 5 hours later
        assert task.when == instant
        bound.assert_at_wall(log[0][1], instant)

    async def test_naive_local_in_the_past(self, local_zone: SetZone) -> None:
        local_zone("Asia/Kolkata")
        async with TimedScheduler(prefer_utc=False) as scheduler:
            past = datetime.now() - timedelta(seconds=1)  # naive local
            with pytest.raises(ValueError, match=r"May only be in the future\."):
                scheduler.start_at(past, record, [], "a")
            future = datetime.now() + timedelta(seconds=5)
            task = scheduler.start_at(future, record, [], "b")
        assert task.done()


class TestAwareDatetimes:
    """An aware datetime means that instant, whatever its zone and prefer_utc."""

    @pytest.mark.parametrize("prefer_utc", [True, False])
    async def test_same_instant_in_many_zones_is_one_deadline(
        self, local_zone: SetZone, prefer_utc: bool, backend_name: str
    ) -> None:
        local_zone("Asia/Kolkata")
        log: Log = []
        scheduler = TimedScheduler(prefer_utc=prefer_utc)
        async with serving(scheduler) as bound:
            instant = utc_now() + timedelta(hours=2)
            zones: list[tuple[str, datetime]] = [
                ("utc", instant),
                ("kolkata", instant.astimezone(KOLKATA)),
                ("new_york", instant.astimezone(NEW_YORK)),
                ("tokyo", instant.astimezone(TOKYO)),
                ("minus0930", instant.astimezone(timezone(-timedelta(hours=9.5)))),
                ("plus1345", instant.astimezone(timezone(timedelta(hours=13.75)))),
            ]
            tasks = [scheduler.start_at(when, record, log, n) for n, when in zones]
        for task in tasks:
            assert task.when == instant
        assert len({seen for _, seen in log}) == 1
        bound.assert_at_wall(log[0][1], instant)
        if backend_name == "asyncio":
            assert [name for name, _ in log] == [name for name, _ in zones]
        else:
            assert sorted(name for name, _ in log) == sorted(n for n, _ in zones)

    async def test_aware_in_far_zone_runs_at_its_instant(self) -> None:
        log: Log = []
        scheduler = TimedScheduler()
        async with serving(scheduler) as bound:
            instant = utc_now() + timedelta(minutes=90)
            when = instant.astimezone(timezone(timedelta(hours=-11)))
            scheduler.schedule(record(log, "a"), when)
        bound.assert_at_wall(log[0][1], instant)

    async def test_aware_in_the_past_in_another_zone(self) -> None:
        async with TimedScheduler() as scheduler:
            past = (utc_now() - timedelta(seconds=1)).astimezone(TOKYO)
            with pytest.raises(ValueError, match=r"May only be in the future\."):
                scheduler.start_at(past, record, [], "a")
            # Its wall-clock digits are hours ahead of UTC's: the instant counts.
            assert past.replace(tzinfo=None) > utc_now().replace(tzinfo=None)

    async def test_naive_and_aware_utc_tie(self, backend_name: str) -> None:
        log: Log = []
        async with TimedScheduler() as scheduler:
            instant = utc_now() + timedelta(seconds=30)
            scheduler.start_at(instant.astimezone(KOLKATA), record, log, "aware")
            scheduler.start_at(instant.replace(tzinfo=None), record, log, "naive")
        assert log[0][1] == log[1][1]
        if backend_name == "asyncio":
            assert [name for name, _ in log] == ["aware", "naive"]


class TestOneOffsetPerScheduler:
    """Equal ``when`` values map to equal deadlines within a scheduler."""

    async def test_equal_when_ties_across_calls(self, backend_name: str) -> None:
        log: Log = []
        async with TimedScheduler() as scheduler:
            when = utc_now() + timedelta(hours=1)
            scheduler.start_at(when, record, log, "first")
            # Loop time moves on; the wall clock barely does. A fresh offset
            # reading per call would put the second job 100 s later.
            await anyio.sleep(100)
            scheduler.start_at(when, record, log, "second")
            await anyio.sleep(100)
            scheduler.schedule(record(log, "third"), when.replace(tzinfo=None))
        assert len({seen for _, seen in log}) == 1
        if backend_name == "asyncio":
            assert [name for name, _ in log] == ["first", "second", "third"]
        else:
            assert sorted(name for name, _ in log) == ["first", "second", "third"]

    async def test_offset_read_at_start(self) -> None:
        log: Log = []
        scheduler = TimedScheduler()
        async with serving(scheduler) as bound:
            await anyio.sleep(100)
            instant = utc_now() + timedelta(hours=1)
            scheduler.start_at(instant, record, log, "a")
        # Converted with the offset read when the scheduler started.
        bound.assert_at_wall(log[0][1], instant)

    async def test_offset_read_at_first_scheduling_call(self) -> None:
        log: Log = []
        scheduler = TimedScheduler()
        t0 = anyio.current_time()
        wall_before = time.time()
        first = utc_now() + timedelta(seconds=600)
        scheduler.start_at(first, record, log, "first")
        wall_after = time.time()
        await anyio.sleep(100)  # before the scheduler starts
        second = utc_now() + timedelta(seconds=300)
        async with scheduler:
            scheduler.start_at(second, record, log, "second")
        bound = Bound(t0, wall_before, wall_after)
        assert [name for name, _ in log] == ["second", "first"]
        bound.assert_at_wall(log[0][1], second)
        bound.assert_at_wall(log[1][1], first)

    async def test_start_after_is_relative_to_the_loop_clock(self) -> None:
        log: Log = []
        async with TimedScheduler() as scheduler:
            await anyio.sleep(100)
            t1 = anyio.current_time()
            scheduler.start_after(60, record, log, "a")
        assert t1 + 60 <= log[0][1] <= t1 + 60 + TICK


class TestInThePast:
    """ "In the past" is judged against the wall clock at the call."""

    async def test_virtual_time_moves_the_schedulers_wall_time(self) -> None:
        """A virtual loop clock drives wall time: after an hour of loop time,
        a datetime a minute after the start is past by scheduler.now()."""
        log: Log = []
        async with TimedScheduler() as scheduler:
            start = scheduler.now()
            when = start + timedelta(seconds=60)
            await anyio.sleep(3600)
            assert scheduler.now() - start >= timedelta(seconds=3600)
            assert scheduler.now() - start < timedelta(seconds=3601)
            with pytest.raises(ValueError, match="May only be in the future"):
                scheduler.start_at(when, record, log, "a")
            task = scheduler.start_at(
                scheduler.now() + timedelta(seconds=60), record, log, "b"
            )
            await task.wait()
        assert [name for name, _ in log] == ["b"]

    async def test_wall_past_is_refused_even_with_loop_time_ahead(self) -> None:
        async with TimedScheduler() as scheduler:
            when = utc_now() - timedelta(milliseconds=1)
            with pytest.raises(ValueError, match=r"May only be in the future\."):
                scheduler.schedule(record([], "a"), when)

    async def test_one_second_ago_naive_utc(self) -> None:
        async with TimedScheduler() as scheduler:
            past = (utc_now() - timedelta(seconds=1)).replace(tzinfo=None)
            with pytest.raises(ValueError, match=r"May only be in the future\."):
                scheduler.start_at(past, record, [], "a")


class TestTaskWhenAndPriority:
    async def test_when_is_aware_utc_instant(self, local_zone: SetZone) -> None:
        local_zone("America/New_York")
        async with TimedScheduler() as scheduler:
            instant = utc_now() + timedelta(hours=3)
            in_tokyo = instant.astimezone(TOKYO)
            naive = instant.replace(tzinfo=None)
            tasks = [
                scheduler.start_at(in_tokyo, record, [], "a"),
                scheduler.schedule(record([], "b"), naive),
                scheduler.start_at(instant, record, [], "c"),
            ]
            for task in tasks:
                when = assert_aware_utc(task.when)
                assert when == instant
            await scheduler.aclose()

    async def test_when_of_local_naive(self, local_zone: SetZone) -> None:
        local_zone("Asia/Kolkata")
        async with TimedScheduler(prefer_utc=False) as scheduler:
            naive = datetime.now() + timedelta(hours=1)
            task = scheduler.start_at(naive, record, [], "a")
            when = assert_aware_utc(task.when)
            assert when == naive.replace(tzinfo=KOLKATA)
            assert when.replace(tzinfo=None) == naive - timedelta(hours=5.5)
            await scheduler.aclose()

    @pytest.mark.parametrize("prefer_utc", [True, False])
    async def test_priority_is_the_datetime_passed(
        self, local_zone: SetZone, prefer_utc: bool
    ) -> None:
        local_zone("Asia/Kolkata")
        async with TimedScheduler(prefer_utc=prefer_utc) as scheduler:
            aware = utc_now().astimezone(NEW_YORK) + timedelta(hours=7)
            naive = datetime.now() + timedelta(hours=7)
            by_start_at = scheduler.start_at(aware, record, [], "a")
            by_schedule = scheduler.schedule(record([], "b"), naive)
            assert by_start_at.priority is aware
            assert by_schedule.priority is naive
            # Keeps its zone (or lack of one), as given.
            assert isinstance(by_start_at.priority, datetime)
            assert by_start_at.priority.tzinfo is NEW_YORK
            assert isinstance(by_schedule.priority, datetime)
            assert by_schedule.priority.tzinfo is None
            await scheduler.aclose()

    @pytest.mark.parametrize(
        "delay", [90, 90.0, timedelta(seconds=90), timedelta(minutes=1.5)]
    )
    async def test_start_after_computes_when(self, delay: float | timedelta) -> None:
        scheduler = TimedScheduler()
        async with serving(scheduler) as bound:
            await anyio.sleep(10)  # offset read at start: "when" is start + 100
            task = scheduler.start_after(delay, record, [], "a")
            when = assert_aware_utc(task.when)
            low = datetime.fromtimestamp(bound.wall_before + 100, UTC)
            high = datetime.fromtimestamp(bound.wall_after + 100, UTC)
            slack = timedelta(microseconds=2)
            assert low - slack <= when <= high + slack
            assert task.priority == when
            assert isinstance(task.priority, datetime)
            assert task.priority.utcoffset() == timedelta(0)
            await scheduler.aclose()

    async def test_start_after_when_is_stable(self) -> None:
        async with TimedScheduler() as scheduler:
            task = scheduler.start_after(3600, record, [], "a")
            when = task.when
            await anyio.sleep(1800)
            assert task.when == when
            assert task.priority == when
            await scheduler.aclose()

    async def test_when_of_tasks_that_tie(self) -> None:
        async with TimedScheduler() as scheduler:
            tasks: list[Task[Any]] = [
                scheduler.start_after(timedelta(seconds=5), record, [], str(i))
                for i in range(3)
            ]
            assert len({task.when for task in tasks}) == 1
            await scheduler.aclose()


class TestDelays:
    @pytest.mark.parametrize(
        ("delay", "seconds"),
        [
            (0, 0.0),
            (7, 7.0),
            (0.125, 0.125),
            (timedelta(0), 0.0),
            (timedelta(hours=1, microseconds=500), 3600.0005),
            (timedelta(days=2), 172800.0),
        ],
    )
    async def test_delay_runs_after_that_long(
        self, delay: float | timedelta, seconds: float
    ) -> None:
        log: Log = []
        async with TimedScheduler() as scheduler:
            t0 = anyio.current_time()
            scheduler.start_after(delay, record, log, "a")
        assert t0 + seconds <= log[0][1] <= t0 + seconds + TICK


class TestTimestampOf:
    """Unit tests of ``aioscheduler._time.timestamp_of``."""

    def test_naive_prefer_utc(self, local_zone: SetZone) -> None:
        local_zone("Asia/Kolkata")
        naive = datetime(2030, 1, 2, 3, 4, 5, 678901)
        expected = naive.replace(tzinfo=UTC).timestamp()
        assert timestamp_of(naive, True) == expected

    @pytest.mark.parametrize("zone", ["Asia/Kolkata", "America/New_York"])
    def test_naive_local(self, local_zone: SetZone, zone: str) -> None:
        local_zone(zone)
        for naive in (datetime(2030, 1, 2, 3, 4, 5), datetime(2030, 7, 2, 3, 4, 5)):
            expected = naive.replace(tzinfo=ZoneInfo(zone)).timestamp()
            assert timestamp_of(naive, False) == expected

    @pytest.mark.parametrize("prefer_utc", [True, False])
    def test_aware(self, local_zone: SetZone, prefer_utc: bool) -> None:
        local_zone("America/New_York")
        instant = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
        expected = instant.timestamp()
        for zone in (UTC, KOLKATA, NEW_YORK, TOKYO, timezone(timedelta(hours=-3))):
            assert timestamp_of(instant.astimezone(zone), prefer_utc) == expected

    def test_epoch(self) -> None:
        assert timestamp_of(datetime(1970, 1, 1), True) == 0.0
        assert timestamp_of(datetime(1970, 1, 1, tzinfo=UTC), False) == 0.0

    @pytest.mark.parametrize(
        "when", [date(2030, 1, 1), "2030-01-01T00:00:00", 1.9e9, 0, None]
    )
    def test_not_a_datetime(self, when: object) -> None:
        with pytest.raises(TypeError):
            timestamp_of(when, True)


class TestDelaySeconds:
    """Unit tests of ``aioscheduler._time.delay_seconds``."""

    class MyInt(int):
        pass

    class MyFloat(float):
        pass

    @pytest.mark.parametrize(
        ("delay", "seconds"),
        [
            (0, 0.0),
            (5, 5.0),
            (2.5, 2.5),
            (-0.0, 0.0),
            (timedelta(minutes=2, microseconds=1), 120.000001),
            (MyInt(3), 3.0),
            (MyFloat(1.5), 1.5),
        ],
    )
    def test_accepted(self, delay: object, seconds: float) -> None:
        result = delay_seconds(delay)
        assert type(result) is float
        assert result == seconds

    @pytest.mark.parametrize(
        "delay", [-1, -0.001, timedelta(seconds=-1), math.nan, math.inf, -math.inf]
    )
    def test_value_error(self, delay: object) -> None:
        with pytest.raises(ValueError, match="delay"):
            delay_seconds(delay)

    @pytest.mark.parametrize("delay", [True, False, "5", None, [5], 1j, date.today()])
    def test_type_error(self, delay: object) -> None:
        with pytest.raises(TypeError):
            delay_seconds(delay)


class TestConversionHelpers:
    def test_naive_to_utc_prefer_utc(self, local_zone: SetZone) -> None:
        local_zone("Asia/Kolkata")
        naive = datetime(2030, 1, 1, 12, 0)
        result = naive_to_utc(naive, True)
        assert result == datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
        assert result.utcoffset() == timedelta(0)

    def test_naive_to_utc_local(self, local_zone: SetZone) -> None:
        local_zone("Asia/Kolkata")
        naive = datetime(2030, 1, 1, 12, 0)
        result = naive_to_utc(naive, False)
        assert result == datetime(2030, 1, 1, 6, 30, tzinfo=UTC)
        assert result.utcoffset() == timedelta(0)

    def test_naive_to_utc_local_dst(self, local_zone: SetZone) -> None:
        local_zone("America/New_York")
        assert naive_to_utc(datetime(2030, 1, 1, 12), False) == datetime(
            2030, 1, 1, 17, tzinfo=UTC
        )
        assert naive_to_utc(datetime(2030, 7, 1, 12), False) == datetime(
            2030, 7, 1, 16, tzinfo=UTC
        )

    @pytest.mark.parametrize(
        "timestamp", [0.0, 1.5, 1_900_000_000.25, 1_900_000_000.000001]
    )
    def test_utc_from_timestamp(self, timestamp: float) -> None:
        result = utc_from_timestamp(timestamp)
        assert result.utcoffset() == timedelta(0)
        assert result == datetime.fromtimestamp(timestamp, UTC)

    def test_round_trip(self) -> None:
        instant = datetime(2031, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
        assert utc_from_timestamp(timestamp_of(instant, True)) == instant
        naive = instant.replace(tzinfo=None)
        assert utc_from_timestamp(timestamp_of(naive, True)) == instant
