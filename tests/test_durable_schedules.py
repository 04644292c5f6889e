"""Durable recurring schedules: each fire time runs once, across restarts.

Every path, virtual time, a fresh database per test through
:class:`tests._stores.InlineSQLiteStore`. A restart is a second scheduler
on the same file after virtual time slept outside any scheduler (see
:class:`tests._durable_support.VirtualWall`). Each run records its
``current_job()``: the key (``"<id>@<fire time iso>"``), the fire time
(``scheduled``) and when it started.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import anyio
import pytest

from aioscheduler import (
    Cron,
    Every,
    ScheduleConflict,
    SQLiteStore,
    TimedScheduler,
    current_job,
    durable,
)
from aioscheduler._triggers import trigger_from_dict
from tests._durable_support import VirtualWall, micros
from tests._stores import InlineSQLiteStore

# Each run: (key, schedule_id, scheduled, started, attempt, tag).
RUNS: list[tuple[str, str | None, datetime, datetime, int, Any]] = []
US = timedelta(microseconds=1)


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    RUNS.clear()
    yield
    RUNS.clear()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "jobs.db"


@durable
async def tick(tag: Any = None) -> None:
    job = current_job()
    RUNS.append(
        (job.key, job.schedule_id, job.scheduled, job.started, job.attempt, tag)
    )


@durable
async def slow_tick(seconds: float) -> None:
    job = current_job()
    RUNS.append(
        (job.key, job.schedule_id, job.scheduled, job.started, job.attempt, None)
    )
    await anyio.sleep(seconds)


def scheduler(db: Path, wall: VirtualWall, **options: Any) -> TimedScheduler:
    return TimedScheduler(store=InlineSQLiteStore(db), wall_clock=wall, **options)


def store_of(s: TimedScheduler) -> SQLiteStore:
    store = s.store
    assert isinstance(store, SQLiteStore)
    return store


def offsets(anchor: datetime, period: float = 60) -> list[float]:
    """Each run's fire time, in periods after *anchor*."""
    return [round((run[2] - anchor).total_seconds() / period, 6) for run in RUNS]


def check_keys_and_times() -> None:
    """Keys name the fire time; none repeats; no run started before it."""
    keys = [run[0] for run in RUNS]
    assert len(set(keys)) == len(keys), keys
    for key, schedule_id, scheduled, started, _attempt, _tag in RUNS:
        assert key == f"{schedule_id}@{scheduled.isoformat()}"
        assert started >= scheduled


# -- fire times ----------------------------------------------------------------------


async def test_each_fire_time_runs_once_on_time(db: Path) -> None:
    wall = VirtualWall()
    async with scheduler(db, wall) as s:
        anchor = s.now()
        sid = await s.add_durable_schedule(Every(60), tick, "e", id="every")
        assert sid == "every"
        await anyio.sleep(60 * 5 + 1)
        record = await store_of(s).get_schedule("every")
        assert record is not None
        assert record.runs == 5
        assert record.missed == 0
        assert await s.remove_durable_schedule("every")
    assert offsets(anchor) == [1, 2, 3, 4, 5]
    for _key, schedule_id, scheduled, started, attempt, tag in RUNS:
        assert (schedule_id, attempt, tag) == ("every", 1, "e")
        assert timedelta(0) <= started - scheduled <= US
    check_keys_and_times()


async def test_generated_id_and_runs_as_durable_jobs(db: Path) -> None:
    wall = VirtualWall()
    async with scheduler(db, wall) as s:
        sid = await s.add_durable_schedule(Every(10), tick)
        assert isinstance(sid, str)
        assert len(sid) == 32
        await anyio.sleep(25)
        assert await s.remove_durable_schedule(sid)
    assert [run[1] for run in RUNS] == [sid, sid]
    check_keys_and_times()


async def test_max_runs(db: Path) -> None:
    wall = VirtualWall()
    async with scheduler(db, wall) as s:
        await s.add_durable_schedule(Every(10), tick, id="three", max_runs=3)
        await anyio.sleep(100)
        record = await store_of(s).get_schedule("three")
        assert record is not None
        assert (record.runs, record.next_fire) == (3, None)
    assert len(RUNS) == 3
    # And after a restart it stays finished.
    wall.restart()
    async with scheduler(db, wall):
        await anyio.sleep(100)
    assert len(RUNS) == 3
    check_keys_and_times()


async def test_remove_durable_schedule_deletes_it_and_its_pending_runs(
    db: Path,
) -> None:
    wall = VirtualWall()
    async with scheduler(db, wall) as s:
        await s.add_durable_schedule(Every(10), tick, id="gone")
        await anyio.sleep(25)
        assert len(RUNS) == 2
        assert await s.remove_durable_schedule("gone") is True
        assert await s.remove_durable_schedule("gone") is False
        assert await s.remove_durable_schedule("never") is False
        assert await store_of(s).get_schedule("gone") is None
        await anyio.sleep(100)
    assert len(RUNS) == 2
    wall.restart()
    async with scheduler(db, wall):
        await anyio.sleep(100)
    assert len(RUNS) == 2


# -- overlap ----------------------------------------------------------------------


async def test_overlap_skip_skips_fire_times_while_a_run_is_live(db: Path) -> None:
    wall = VirtualWall()
    async with scheduler(db, wall) as s:
        anchor = s.now()
        # Each run takes 150 s: the runs at 2 and 3 periods find it running.
        await s.add_durable_schedule(Every(60), slow_tick, 150, id="skip")
        await anyio.sleep(60 * 6 + 1)
        record = await store_of(s).get_schedule("skip")
        assert record is not None
        await s.remove_durable_schedule("skip")
    # 1 runs until 3.5; 2 and 3 are skipped; 4 runs until 6.5; 5 and 6 skipped.
    assert offsets(anchor) == [1, 4]
    assert record.skipped == 4
    check_keys_and_times()


async def test_overlap_allow_runs_every_fire_time(db: Path) -> None:
    wall = VirtualWall()
    async with scheduler(db, wall) as s:
        anchor = s.now()
        await s.add_durable_schedule(
            Every(60), slow_tick, 150, id="allow", overlap="allow"
        )
        await anyio.sleep(60 * 6 + 1)
        record = await store_of(s).get_schedule("allow")
        assert record is not None
        await s.remove_durable_schedule("allow")
    assert offsets(anchor) == [1, 2, 3, 4, 5, 6]
    assert record.skipped == 0
    check_keys_and_times()


@pytest.mark.parametrize("overlap", ["buffer", "cancel", "bogus", None])
async def test_bad_overlap_is_a_value_error(db: Path, overlap: Any) -> None:
    wall = VirtualWall()
    async with scheduler(db, wall) as s:
        with pytest.raises(ValueError, match="overlap"):
            await s.add_durable_schedule(Every(60), tick, id="x", overlap=overlap)
        assert await store_of(s).list_schedules() == []


async def test_bad_functions_and_arguments_are_refused(db: Path) -> None:
    wall = VirtualWall()

    async def closure() -> None:
        pass

    async with scheduler(db, wall) as s:
        with pytest.raises(TypeError):
            await s.add_durable_schedule(Every(60), closure)
        with pytest.raises(TypeError, match="argument 0"):
            await s.add_durable_schedule(Every(60), tick, {1, 2})
        with pytest.raises(ValueError, match="on_conflict"):
            await s.add_durable_schedule(Every(60), tick, on_conflict="merge")  # type: ignore[arg-type]
        assert await store_of(s).list_schedules() == []


# -- on_conflict ------------------------------------------------------------------


async def test_on_conflict_error_and_keep(db: Path) -> None:
    wall = VirtualWall()
    async with scheduler(db, wall) as s:
        anchor = s.now()
        await s.add_durable_schedule(Every(60), tick, "v1", id="c")
        with pytest.raises(ScheduleConflict, match="'c'"):
            await s.add_durable_schedule(Every(60), tick, "v2", id="c")
        with pytest.raises(ScheduleConflict):
            await s.add_durable_schedule(
                Every(5), tick, "v2", id="c", on_conflict="error"
            )
        kept = await s.add_durable_schedule(
            Every(30), tick, "v3", id="c", on_conflict="keep"
        )
        assert kept == "c"
        await anyio.sleep(121)
        await s.remove_durable_schedule("c")
    assert offsets(anchor) == [1, 2]
    assert [run[5] for run in RUNS] == ["v1", "v1"]
    check_keys_and_times()


async def test_replace_with_an_equal_trigger_keeps_its_progress(db: Path) -> None:
    wall = VirtualWall()
    every_minute = Cron("* * * * *")
    async with scheduler(db, wall) as s:
        await s.add_durable_schedule(every_minute, tick, "v1", id="c")
        await anyio.sleep(61)
        assert len(RUNS) == 1
        before = await store_of(s).get_schedule("c")
        replaced = await s.add_durable_schedule(
            every_minute, tick, "v2", id="c", on_conflict="replace"
        )
        assert replaced == "c"
        after = await store_of(s).get_schedule("c")
        assert before is not None
        assert after is not None
        assert (after.next_fire, after.high_water, after.runs) == (
            before.next_fire,
            before.high_water,
            before.runs,
        )
        await anyio.sleep(60)
        await s.remove_durable_schedule("c")
    assert [run[5] for run in RUNS] == ["v1", "v2"]
    assert RUNS[1][2] - RUNS[0][2] == timedelta(minutes=1)
    check_keys_and_times()


async def test_replace_with_another_trigger_starts_anew(db: Path) -> None:
    wall = VirtualWall()
    async with scheduler(db, wall) as s:
        await s.add_durable_schedule(Every(60), tick, "v1", id="c")
        await anyio.sleep(61)
        replaced_at = s.now()
        await s.add_durable_schedule(
            Every(45), tick, "v2", id="c", on_conflict="replace"
        )
        await anyio.sleep(91)
        await s.remove_durable_schedule("c")
    assert [run[5] for run in RUNS] == ["v1", "v2", "v2"]
    assert [round((run[2] - replaced_at).total_seconds()) for run in RUNS[1:]] == [
        45,
        90,
    ]
    check_keys_and_times()


# -- restarts: from the stored high-water mark ---------------------------------------


async def _first_life(db: Path, wall: VirtualWall, **options: Any) -> datetime:
    """Add Every(60) id 's', run two fire times, stop; 1000 s down."""
    async with scheduler(db, wall) as s:
        anchor = s.now()
        await s.add_durable_schedule(Every(60), tick, "x", id="s", **options)
        await anyio.sleep(130)
    assert offsets(anchor) == [1, 2]
    await anyio.sleep(1000)  # the process is down: fire times 3 .. 18 pass
    wall.restart()
    return anchor


@pytest.mark.parametrize(
    ("coalesce", "catch_up", "missed"),
    [
        ("latest", [18], 15),
        ("earliest", [3], 15),
        ("all", list(range(3, 19)), 0),
    ],
)
async def test_a_restart_after_a_gap_coalesces_from_the_high_water_mark(
    db: Path, coalesce: str, catch_up: list[int], missed: int
) -> None:
    wall = VirtualWall()
    anchor = await _first_life(db, wall, coalesce=coalesce)
    async with scheduler(db, wall) as s:
        reopened = s.now()
        await anyio.sleep(125)  # fire times 19 and 20 come due
        record = await store_of(s).get_schedule("s")
        assert record is not None
        await s.remove_durable_schedule("s")
    # Catch-up runs start together, in the loop's order.
    assert offsets(anchor)[:2] == [1, 2]
    assert sorted(offsets(anchor)[2:-2]) == catch_up
    assert offsets(anchor)[-2:] == [19, 20]
    assert record.missed == missed
    assert record.runs == 2 + len(catch_up) + 2
    for run in RUNS[2 : 2 + len(catch_up)]:
        assert abs(run[3] - reopened) < timedelta(milliseconds=1)  # at once
    check_keys_and_times()


async def test_max_catchup_bounds_coalesce_all(db: Path) -> None:
    wall = VirtualWall()
    anchor = await _first_life(db, wall, coalesce="all", max_catchup=4)
    async with scheduler(db, wall) as s:
        await anyio.sleep(5)
        record = await store_of(s).get_schedule("s")
        assert record is not None
        await s.remove_durable_schedule("s")
    assert sorted(offsets(anchor)) == [1, 2, 15, 16, 17, 18]
    assert record.missed == 12
    check_keys_and_times()


async def test_misfire_grace_after_a_restart(db: Path) -> None:
    wall = VirtualWall()
    # The latest fire time (18) passed 50 s before the restart: past a
    # 30 s grace, so it is missed too; 19 runs on time.
    anchor = await _first_life(db, wall, misfire_grace=30)
    async with scheduler(db, wall) as s:
        await anyio.sleep(65)
        record = await store_of(s).get_schedule("s")
        assert record is not None
        await s.remove_durable_schedule("s")
    assert offsets(anchor) == [1, 2, 19]
    assert record.missed == 16
    check_keys_and_times()


async def test_restarts_never_repeat_a_fire_time(db: Path) -> None:
    wall = VirtualWall()
    async with scheduler(db, wall) as s:
        anchor = s.now()
        await s.add_durable_schedule(Every(10), tick, id="r", coalesce="all")
    for downtime in [0, 5, 10, 35, 0, 100]:
        await anyio.sleep(downtime)
        wall.restart()
        async with scheduler(db, wall):
            await anyio.sleep(25)
    check_keys_and_times()
    # Every fire time from 1 up to the last one ran exactly once (coalesce
    # "all" catches up each gap).
    assert sorted(offsets(anchor, 10)) == list(range(1, len(RUNS) + 1))
    assert len(RUNS) >= (6 * 25 + 150) // 10 - 1


async def test_a_run_interrupted_by_a_restart_runs_again_with_its_key(
    db: Path,
) -> None:
    wall = VirtualWall()
    async with scheduler(db, wall) as s:
        anchor = s.now()
        await s.add_durable_schedule(Every(60), slow_tick, 100, id="i")
        await anyio.sleep(70)
        await s.aclose()
    assert len(RUNS) == 1
    wall.restart()
    async with scheduler(db, wall) as s:
        await anyio.sleep(1)
        await s.remove_durable_schedule("i")
    # The same fire time again, attempt 2, and not a new key.
    assert [(run[0], run[4]) for run in RUNS] == [(RUNS[0][0], 1), (RUNS[0][0], 2)]
    assert offsets(anchor) == [1, 1]


# -- the trigger in the store -------------------------------------------------------


async def test_a_cron_trigger_with_a_zone_round_trips_through_json(db: Path) -> None:
    wall = VirtualWall()
    berlin = ZoneInfo("Europe/Berlin")
    trigger = Cron("0 9 * * *", tz="Europe/Berlin")
    async with scheduler(db, wall) as s:
        await s.add_durable_schedule(trigger, tick, id="cron")
        record = await store_of(s).get_schedule("cron")
        assert record is not None
        stored = json.loads(record.trigger)
        back = trigger_from_dict(stored)
        assert back.to_dict() == stored
        assert stored["tz"] == "Europe/Berlin"
        assert back == trigger._anchored(s.now())
        first = s.now()
    # Restart between runs: the trigger is rebuilt from its JSON.
    for _ in range(3):
        await anyio.sleep(86400)
        wall.restart()
        async with scheduler(db, wall):
            await anyio.sleep(1)
    assert len(RUNS) == 3
    for run in RUNS:
        local = run[2].astimezone(berlin)
        assert (local.hour, local.minute, local.second) == (9, 0, 0)
        assert run[2] > first
    check_keys_and_times()


async def test_a_schedule_survives_a_restart_before_its_first_fire(db: Path) -> None:
    wall = VirtualWall()
    async with scheduler(db, wall) as s:
        anchor = s.now()
        await s.add_durable_schedule(Every(3600), tick, id="h")
        record = await store_of(s).get_schedule("h")
        assert record is not None
        assert record.next_fire == micros(anchor + timedelta(hours=1))
    await anyio.sleep(1800)
    wall.restart()
    async with scheduler(db, wall) as s:
        await anyio.sleep(3600)
        await s.remove_durable_schedule("h")
    assert offsets(anchor, 3600) == [1]
    assert RUNS[0][2] == datetime.fromtimestamp(0, UTC) + timedelta(
        microseconds=micros(anchor + timedelta(hours=1))
    )
