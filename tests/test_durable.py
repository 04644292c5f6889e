"""Durable jobs: the behaviour of issue #11, on every path, in virtual time.

Each test uses a fresh database (``tmp_path``) through
:class:`tests._stores.InlineSQLiteStore`: the same SQL and transactions as
``SQLiteStore`` without the thread hop, so virtual time stays exact. A
restart is a second scheduler on the same file; the time the "process" is
down is virtual time slept between them (see :class:`VirtualWall`). A crash
is simulated by writing rows directly (state ``running``), which is what a
process killed mid-job leaves. Real crashes (``kill -9``) are tested
elsewhere.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import os
import stat
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from aioscheduler import (
    JobConflict,
    Manager,
    QueuedScheduler,
    SchedulerClosed,
    StoreError,
    StoreLocked,
    TimedScheduler,
    current_job,
    durable,
)
from aioscheduler._registry import _by_function, _by_name
from tests._durable_support import (
    VirtualWall,
    from_micros,
    insert_job,
    micros,
    sql,
    states,
)
from tests._stores import InlineSQLiteStore

# What the jobs below did, in order: (tag, attempt, scheduled, started, now).
LOG: list[tuple[Any, ...]] = []
# How many durable jobs of this module run now, and the most at once.
RUNNING = [0, 0]
SCHEDULERS: dict[str, TimedScheduler] = {}


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    LOG.clear()
    RUNNING[:] = [0, 0]
    SCHEDULERS.clear()
    yield
    LOG.clear()
    SCHEDULERS.clear()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "jobs.db"


def _entry(tag: Any) -> tuple[Any, ...]:
    job = current_job()
    s = SCHEDULERS.get("s")
    return (
        tag,
        job.attempt,
        job.scheduled,
        job.started,
        None if s is None else s.now(),
    )


@durable
async def record(tag: Any) -> str:
    LOG.append(_entry(tag))
    return f"done {tag}"


@durable
async def record_kw(*args: Any, **kwargs: Any) -> None:
    LOG.append((list(args), kwargs))


@durable
async def busy(tag: Any, seconds: float) -> None:
    """Runs *seconds*, counting how many run at once."""
    LOG.append(_entry(tag))
    RUNNING[0] += 1
    RUNNING[1] = max(RUNNING[1], RUNNING[0])
    try:
        await anyio.sleep(seconds)
    finally:
        RUNNING[0] -= 1


@durable
async def hang_first(tag: Any) -> None:
    """Hangs on its first attempt (to be interrupted), returns on later ones."""
    LOG.append(_entry(tag))
    if current_job().attempt == 1:
        await anyio.sleep_forever()


@durable("tests.test_durable.hang_once", delivery="at_most_once")
async def hang_once(tag: Any) -> None:
    """At most once: hangs on its first run, which must stay the only one."""
    LOG.append(_entry(tag))
    await anyio.sleep_forever()


@durable("tests.test_durable.once", delivery="at_most_once")
async def once(tag: Any) -> None:
    LOG.append(_entry(tag))


@durable
async def fail(tag: Any) -> None:
    LOG.append(_entry(tag))
    raise ValueError(f"boom {tag}")


@durable
async def context() -> None:
    job = current_job()
    LOG.append(
        (
            job.key,
            job.attempt,
            job.scheduled,
            job.function,
            job.schedule_id,
            job.lateness,
        )
    )


def scheduler(db: Path, wall: VirtualWall, **options: Any) -> TimedScheduler:
    s = TimedScheduler(store=InlineSQLiteStore(db), wall_clock=wall, **options)
    SCHEDULERS["s"] = s
    return s


# Wall times are float seconds (about 1.8e9) on the loop side and integer
# microseconds in the store: a conversion may round by one microsecond.
US = timedelta(microseconds=1)


def on_time(scheduled: Any, started: Any) -> bool:
    """Never early; late by no more than the rounding of one conversion."""
    return bool(timedelta(0) <= started - scheduled <= US)


def tags() -> list[Any]:
    return [entry[0] for entry in LOG]


# -- adding: committed on return, group commit ----------------------------------------


async def test_add_returns_the_key_once_the_row_is_committed(db: Path) -> None:
    wall = VirtualWall()
    async with scheduler(db, wall) as s:
        key = await s.durable_start_after(60, record, "a", key="k-1")
        assert key == "k-1"
        # Committed: another connection to the file sees it at once.
        assert sql(
            db, "SELECT key, state, function, arguments FROM aioscheduler_jobs"
        ) == [("k-1", "pending", "tests.test_durable:record", '[["a"]]')]
        generated = await s.durable_start_after(60, record, "b")
        assert len(generated) == 32
        assert states(db) == {"k-1": "pending", generated: "pending"}
        assert s.store is not None
        record_ = await s.store.get_job(generated)
        assert record_ is not None
        assert record_.state == "pending"
        assert record_.due == micros(s.now() + timedelta(seconds=60))
        await anyio.sleep(61)
    assert sorted(tags()) == ["a", "b"]
    assert states(db) == {}  # done rows are deleted (keep_results=None)


class CountingStore(InlineSQLiteStore):
    """Counts the store's add calls (each is one transaction)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.adds: list[int] = []

    async def add(self, jobs: Any) -> Any:
        self.adds.append(len(jobs))
        return await super().add(jobs)


async def test_concurrent_adds_share_commits(db: Path) -> None:
    wall = VirtualWall()
    store = CountingStore(db)
    keys: list[str] = []

    async def add(i: int) -> None:
        keys.append(await s.durable_start_after(10 + i, record, i, key=f"g-{i}"))

    async with TimedScheduler(store=store, wall_clock=wall) as s:
        async with anyio.create_task_group() as group:
            for i in range(50):
                group.start_soon(add, i)
        assert sum(store.adds) == 50
        assert len(store.adds) < 50  # group commit
        assert sorted(keys) == sorted(f"g-{i}" for i in range(50))
        assert len(states(db)) == 50
        await anyio.sleep(100)
    assert sorted(tags()) == list(range(50))


async def test_a_conflict_in_a_shared_commit_fails_only_its_own_add(db: Path) -> None:
    wall = VirtualWall()
    store = CountingStore(db)
    outcome: dict[int, Any] = {}

    async def add(i: int, key: str) -> None:
        try:
            outcome[i] = await s.durable_start_after(10, record, i, key=key)
        except JobConflict as exc:
            outcome[i] = exc

    async with TimedScheduler(store=store, wall_clock=wall) as s:
        await s.durable_start_after(10, record, "first", key="taken")
        store.adds.clear()
        async with anyio.create_task_group() as group:
            group.start_soon(add, 0, "free-0")
            group.start_soon(add, 1, "taken")
            group.start_soon(add, 2, "free-2")
        assert len(store.adds) < 3
        assert outcome[0] == "free-0"
        assert isinstance(outcome[1], JobConflict)
        assert "taken" in str(outcome[1])
        assert outcome[2] == "free-2"
        await anyio.sleep(11)
    assert sorted(map(str, tags())) == ["0", "2", "first"]


# -- time: never early, exact in virtual time ------------------------------------------


async def test_no_job_runs_before_its_time(db: Path) -> None:
    wall = VirtualWall()
    async with scheduler(db, wall) as s:
        start = s.now()
        delays = [0.5, 1, 7.25, 60, 3600, 86400 * 3]
        for i, delay in enumerate(delays):
            await s.durable_start_after(delay, record, f"after-{i}")
            await s.durable_start_at(
                start + timedelta(seconds=delay), record, f"at-{i}"
            )
        await s.durable_start_after(timedelta(0), record, "now")
        await anyio.sleep(86400 * 3 + 1)
    assert len(LOG) == 2 * len(delays) + 1
    for _tag, attempt, scheduled, started, now in LOG:
        assert attempt == 1
        assert on_time(scheduled, started)
        # scheduler.now() is float seconds: the same instant, within a few µs.
        assert abs(now - scheduled) < 5 * US
    by_tag = {entry[0]: entry[2] for entry in LOG}
    for i, delay in enumerate(delays):
        expected = start + timedelta(seconds=delay)
        assert abs(by_tag[f"at-{i}"] - expected) <= US
        assert by_tag[f"after-{i}"] >= start + timedelta(seconds=delay)
    assert [entry[2] for entry in LOG] == sorted(entry[2] for entry in LOG)


async def test_a_job_added_while_the_feeder_sleeps_wakes_it(db: Path) -> None:
    wall = VirtualWall()
    async with scheduler(db, wall) as s:
        await s.durable_start_after(3600, record, "late")
        await anyio.sleep(5)
        begin = anyio.current_time()
        await s.durable_start_after(2, record, "early")
        await anyio.sleep(3)
        assert tags() == ["early"]
        assert on_time(LOG[0][2], LOG[0][3])
        assert anyio.current_time() - begin == pytest.approx(3)
        await anyio.sleep(3600)
    assert tags() == ["early", "late"]
    assert all(on_time(entry[2], entry[3]) for entry in LOG)


async def test_current_job_outside_a_durable_job_raises_lookup_error(db: Path) -> None:
    with pytest.raises(LookupError, match="outside a durable job"):
        current_job()
    wall = VirtualWall()
    async with scheduler(db, wall) as s:
        with pytest.raises(LookupError):
            current_job()
        task = s.start_after(1, _volatile_current_job)
        await task.wait()
        assert task.result() == "LookupError"


async def _volatile_current_job() -> str:
    try:
        current_job()
    except LookupError:
        return "LookupError"
    return "found"


async def test_current_job_inside_a_job(db: Path) -> None:
    wall = VirtualWall()
    async with scheduler(db, wall) as s:
        when = s.now() + timedelta(minutes=5)
        await s.durable_start_at(when, context, key="ctx")
        await anyio.sleep(301)
    [(key, attempt, scheduled, function, schedule_id, lateness)] = LOG
    assert key == "ctx"
    assert attempt == 1
    assert abs(scheduled - when) <= US
    assert scheduled.tzinfo is not None
    assert function == "tests.test_durable:context"
    assert schedule_id is None
    assert timedelta(0) <= lateness <= US


# -- outcomes ----------------------------------------------------------------------


async def test_done_rows_are_deleted_failed_ones_kept_with_the_error(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wall = VirtualWall()
    async with scheduler(db, wall) as s:
        await s.durable_start_after(1, record, "ok", key="ok")
        await s.durable_start_after(1, fail, "bad", key="bad")
        await anyio.sleep(2)
        assert s.store is not None
        assert await s.store.get_job("ok") is None
        failed = await s.store.get_job("bad")
        assert failed is not None
        assert failed.state == "failed"
        assert failed.error == "ValueError: boom bad"
        assert failed.attempt == 1
    assert sorted(tags()) == ["bad", "ok"]
    assert any("boom bad" in str(r.exc_info) for r in caplog.records if r.exc_info)
    # A finished job's key can be used again.
    async with scheduler(db, wall) as s:
        await s.durable_start_after(1, record, "again", key="bad")
        await anyio.sleep(2)
    assert tags()[-1] == "again"


async def test_keep_results_keeps_the_json_result(db: Path) -> None:
    wall = VirtualWall()
    store = InlineSQLiteStore(db, keep_results=timedelta(hours=1))
    async with TimedScheduler(store=store, wall_clock=wall) as s:
        await s.durable_start_after(1, record, 7, key="r")
        await anyio.sleep(2)
        job = await store.get_job("r")
        assert job is not None
        assert (job.state, job.result) == ("done", '"done 7"')


async def test_cancel_durable_deletes_a_pending_job(db: Path) -> None:
    wall = VirtualWall()
    async with scheduler(db, wall) as s:
        await s.durable_start_after(10, record, "x", key="c")
        assert await s.cancel_durable("c") is True
        assert await s.cancel_durable("c") is False
        assert await s.cancel_durable("never") is False
        await anyio.sleep(20)
    assert LOG == []
    assert states(db) == {}


# -- keys and on_conflict ----------------------------------------------------------


async def test_on_conflict_error_keep_replace(db: Path) -> None:
    wall = VirtualWall()
    async with scheduler(db, wall) as s:
        assert s.store is not None
        first_due = s.now() + timedelta(seconds=100)
        await s.durable_start_at(first_due, record, "v1", key="k")
        with pytest.raises(JobConflict, match="'k'"):
            await s.durable_start_after(50, record, "v2", key="k")
        with pytest.raises(JobConflict):
            await s.durable_start_after(50, record, "v2", key="k", on_conflict="error")
        kept = await s.durable_start_after(
            50, record, "v3", key="k", on_conflict="keep"
        )
        assert kept == "k"
        job = await s.store.get_job("k")
        assert job is not None
        assert (job.due, job.arguments) == (micros(first_due), '[["v1"]]')
        replaced = await s.durable_start_after(
            30, record, "v4", key="k", on_conflict="replace"
        )
        assert replaced == "k"
        job = await s.store.get_job("k")
        assert job is not None
        assert job.due == micros(s.now() + timedelta(seconds=30))
        assert job.arguments == '[["v4"]]'
        assert job.state == "pending"
        await anyio.sleep(200)
    # It ran once, with the replacing arguments, at the replacing time.
    assert tags() == ["v4"]
    assert LOG[0][2] == from_micros(job.due)
    assert on_time(LOG[0][2], LOG[0][3])


async def test_on_conflict_keep_and_replace_add_when_the_key_is_free(db: Path) -> None:
    wall = VirtualWall()
    async with scheduler(db, wall) as s:
        await s.durable_start_after(1, record, "a", key="a", on_conflict="keep")
        await s.durable_start_after(1, record, "b", key="b", on_conflict="replace")
        await anyio.sleep(2)
    assert sorted(tags()) == ["a", "b"]


async def test_a_running_job_keeps_its_key(db: Path) -> None:
    wall = VirtualWall()
    async with scheduler(db, wall) as s:
        await s.durable_start_after(1, busy, "run", 100, key="r")
        await anyio.sleep(2)
        assert states(db) == {"r": "running"}
        with pytest.raises(JobConflict):
            await s.durable_start_after(1, record, "dup", key="r")
        assert (
            await s.durable_start_after(1, record, "dup", key="r", on_conflict="keep")
            == "r"
        )
        await anyio.sleep(200)
    assert tags() == ["run"]


# -- bad input at the call -----------------------------------------------------------


async def _sync_async_looking() -> None:
    pass


def not_async(x: int) -> None:
    pass


class Holder:
    async def method(self, x: int) -> None:
        pass


def _bad_functions() -> list[Any]:
    async def closure(x: int) -> None:
        pass

    return [
        lambda x: None,
        closure,
        Holder().method,
        not_async,
        functools.partial(record, 1),
        print,
    ]


async def test_functions_that_cannot_be_found_again_are_refused(db: Path) -> None:
    wall = VirtualWall()
    async with scheduler(db, wall) as s:
        for fn in _bad_functions():
            with pytest.raises(TypeError):
                await s.durable_start_after(1, fn, 1)
            with pytest.raises(TypeError):
                await s.durable_start_at(s.now() + timedelta(seconds=1), fn, 1)
        await anyio.sleep(2)
        assert states(db) == {}
    assert LOG == []


@pytest.mark.parametrize(
    ("args", "kwargs", "named"),
    [
        (({1, 2},), None, "argument 0"),
        ((1, (1, 2)), None, "argument 1"),
        ((object(),), None, "argument 0"),
        ((math.nan,), None, "argument 0"),
        ((math.inf,), None, "argument 0"),
        ((b"bytes",), None, "argument 0"),
        (({1: "a"},), None, "argument 0"),
        (([1, [2, {3}]],), None, "argument 0[1][1]"),
        (({"a": {"b": b"x"}},), None, "argument 0['a']['b']"),
        ((), {"when": {1.5}}, "keyword argument 'when'"),
        ((), {"x": [math.nan]}, "keyword argument 'x'[0]"),
    ],
)
async def test_arguments_that_are_not_json_are_refused_naming_them(
    db: Path, args: tuple[Any, ...], kwargs: dict[str, Any] | None, named: str
) -> None:
    wall = VirtualWall()
    async with scheduler(db, wall) as s:
        with pytest.raises(TypeError) as info:
            await s.durable_start_after(1, record_kw, *args, kwargs=kwargs)
        assert named in str(info.value)
        assert states(db) == {}


async def test_json_arguments_round_trip(db: Path) -> None:
    wall = VirtualWall()
    args: list[Any] = [
        None,
        True,
        False,
        0,
        -(2**62),
        1.5,
        "ü'\"\\",
        [],
        {},
        [1, {"a": [None]}],
    ]
    kwargs = {"x": {"nested": [1.25, "two"]}, "y": None}
    async with scheduler(db, wall) as s:
        await s.durable_start_after(1, record_kw, *args, kwargs=kwargs)
        await anyio.sleep(2)
    assert [(args, kwargs)] == LOG


async def test_bad_when_key_and_options_are_refused(db: Path) -> None:
    wall = VirtualWall()
    async with scheduler(db, wall) as s:
        with pytest.raises(ValueError, match="past"):
            await s.durable_start_at(s.now() - timedelta(seconds=1), record, 1)
        with pytest.raises(ValueError, match="negative"):
            await s.durable_start_after(-1, record, 1)
        with pytest.raises(ValueError, match="on_conflict"):
            await s.durable_start_after(1, record, 1, key="k", on_conflict="ignore")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="misfire_grace"):
            await s.durable_start_after(1, record, 1, misfire_grace=-1)
        with pytest.raises(TypeError, match="misfire_grace"):
            await s.durable_start_after(1, record, 1, misfire_grace="1")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="key"):
            await s.durable_start_after(1, record, 1, key=5)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="key"):
            await s.durable_start_after(1, record, 1, key="")
        with pytest.raises(TypeError):
            await s.durable_start_at("tomorrow", record, 1)  # type: ignore[arg-type]
        assert states(db) == {}


async def test_no_store_not_serving_and_closed_are_refused(db: Path) -> None:
    wall = VirtualWall()
    async with TimedScheduler(wall_clock=wall) as plain:
        with pytest.raises(RuntimeError, match="no store"):
            await plain.durable_start_after(1, record, 1)
        with pytest.raises(RuntimeError, match="no store"):
            await plain.cancel_durable("x")
        assert plain.store is None
    s = scheduler(db, wall)
    with pytest.raises(RuntimeError, match="while the scheduler serves"):
        await s.durable_start_after(1, record, 1)
    async with s:
        await s.durable_start_after(1, record, "in")
        await anyio.sleep(2)
    with pytest.raises(SchedulerClosed):
        await s.durable_start_after(1, record, 1)
    with pytest.raises(SchedulerClosed):
        await s.cancel_durable("x")
    assert tags() == ["in"]


async def test_durable_needs_timed_schedulers(db: Path) -> None:
    with pytest.raises(TypeError, match="TimedScheduler"):
        Manager(2, None, QueuedScheduler, store=InlineSQLiteStore(db))
    with pytest.raises(TypeError, match="store"):
        TimedScheduler(store=42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="durable_concurrency"):
        TimedScheduler(store=InlineSQLiteStore(db), durable_concurrency=0)
    async with Manager(2, None, QueuedScheduler) as m:
        with pytest.raises(TypeError, match="TimedScheduler"):
            await m.durable_start_after(1, record, 1)


def test_registering_bad_functions_raises() -> None:
    for fn in _bad_functions():
        with pytest.raises(TypeError):
            durable(fn)
    with pytest.raises(ValueError, match="taken"):
        durable("tests.test_durable.once")(record_kw)
    with pytest.raises(ValueError, match="delivery"):
        durable("x.y", delivery="sometimes")(_sync_async_looking)  # type: ignore[call-overload]


# -- overdue at start ------------------------------------------------------------------


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_overdue_jobs_run_at_start_in_due_order_at_the_concurrency(
    db: Path, concurrency: int
) -> None:
    wall = VirtualWall()
    async with scheduler(db, wall) as s:
        start = s.now()
        # Added out of order; due 10 s apart.
        for i in [5, 2, 7, 0, 9, 3, 1, 8, 6, 4]:
            await s.durable_start_at(
                start + timedelta(seconds=10 * (i + 1)), busy, i, 5.0, key=f"o-{i}"
            )
    assert states(db) == {f"o-{i}": "pending" for i in range(10)}  # left pending
    await anyio.sleep(3600)  # the process is down for an hour
    wall.restart()
    async with scheduler(db, wall, durable_concurrency=concurrency) as s:
        reopened = s.now()
        await anyio.sleep(100)
    assert RUNNING[1] == concurrency  # at the configured concurrency, no more
    for _tag, attempt, scheduled, started, _now in LOG:
        assert attempt == 1
        assert started >= reopened - US
        assert reopened > scheduled
    # Claimed in due order, `concurrency` at a time, each run 5 s long; jobs
    # started together may start in any order (the event loop's choice).
    first = min(entry[3] for entry in LOG)
    assert abs(first - reopened) <= US  # at once
    waves: dict[timedelta, list[int]] = {}
    for tag, _attempt, _scheduled, started, _now in LOG:
        waves.setdefault(started - first, []).append(tag)
    expected = [list(range(10))[i : i + concurrency] for i in range(0, 10, concurrency)]
    assert sorted(waves) == [timedelta(seconds=5 * i) for i in range(len(expected))]
    assert [sorted(waves[at]) for at in sorted(waves)] == expected
    assert states(db) == {}


async def test_overdue_past_misfire_grace_are_missed_recorded_and_logged(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wall = VirtualWall()
    async with scheduler(db, wall) as s:
        await s.durable_start_after(
            10, record, "strict", key="strict", misfire_grace=60
        )
        await s.durable_start_after(
            10, record, "lenient", key="lenient", misfire_grace=timedelta(hours=2)
        )
        await s.durable_start_after(10, record, "any", key="any")
    await anyio.sleep(3600)
    wall.restart()
    caplog.set_level(logging.WARNING, logger="aioscheduler")
    async with scheduler(db, wall) as s:
        await anyio.sleep(10)
        assert s.store is not None
        missed = await s.store.get_job("strict")
        assert missed is not None
        assert missed.state == "missed"
        assert missed.attempt == 0
        assert missed.error is not None
        assert "misfire_grace" in missed.error
    assert sorted(tags()) == ["any", "lenient"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("'strict'" in m and "did not run" in m for m in warnings)
    assert not any("'lenient'" in m for m in warnings)
    # Kept (keep_failed), and never run later.
    wall.restart()
    async with scheduler(db, wall) as s:
        await anyio.sleep(100)
    assert states(db) == {"strict": "missed"}
    assert sorted(tags()) == ["any", "lenient"]


async def test_misfire_grace_does_not_apply_to_a_job_on_time(db: Path) -> None:
    wall = VirtualWall()
    async with scheduler(db, wall) as s:
        await s.durable_start_after(10, record, "a", misfire_grace=0)
        await anyio.sleep(11)
    assert tags() == ["a"]


# -- restart: interrupted jobs ---------------------------------------------------------


@pytest.mark.parametrize("how", ["aclose", "cancel"])
async def test_closing_while_a_job_runs_at_least_once_reruns_it(
    db: Path, how: str
) -> None:
    wall = VirtualWall()
    s = scheduler(db, wall)
    async with anyio.create_task_group() as group:
        await group.start(s.run)
        await s.durable_start_after(5, hang_first, "job", key="alo")
        await anyio.sleep(6)
        assert states(db) == {"alo": "running"}
        if how == "aclose":
            await s.aclose()
        else:
            group.cancel_scope.cancel()
    row = sql(db, "SELECT state, attempt, lease_owner FROM aioscheduler_jobs")
    assert row == [("pending", 1, None)]
    wall.restart()
    async with scheduler(db, wall) as s2:
        await anyio.sleep(1)
    assert [(entry[0], entry[1]) for entry in LOG] == [("job", 1), ("job", 2)]
    assert states(db) == {}
    del s2


@pytest.mark.parametrize("how", ["aclose", "cancel"])
async def test_closing_while_a_job_runs_at_most_once_records_it_lost(
    db: Path, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="aioscheduler")
    wall = VirtualWall()
    s = scheduler(db, wall)
    async with anyio.create_task_group() as group:
        await group.start(s.run)
        await s.durable_start_after(5, hang_once, "job", key="amo")
        await anyio.sleep(6)
        if how == "aclose":
            await s.aclose()
        else:
            group.cancel_scope.cancel()
    assert states(db) == {"amo": "lost"}
    assert any(
        "'amo'" in r.getMessage() and "lost" in r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING
    )
    wall.restart()
    async with scheduler(db, wall):
        await anyio.sleep(100)
    assert [(entry[0], entry[1]) for entry in LOG] == [("job", 1)]
    assert states(db) == {"amo": "lost"}


async def test_leaving_async_with_waits_for_running_jobs_and_keeps_pending_ones(
    db: Path,
) -> None:
    wall = VirtualWall()
    async with scheduler(db, wall) as s:
        await s.durable_start_after(1, busy, "running", 50, key="r")
        await s.durable_start_after(1000, record, "later", key="p")
        await anyio.sleep(2)
        begin = anyio.current_time()
    assert anyio.current_time() - begin == pytest.approx(49)
    assert tags() == ["running"]
    assert states(db) == {"p": "pending"}


async def test_a_crash_leaves_running_rows_resolved_by_delivery_at_open(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="aioscheduler")
    wall = VirtualWall()
    async with scheduler(db, wall):
        pass  # creates the schema
    due = wall.now() - timedelta(seconds=30)
    # What a process killed in the middle of these jobs leaves behind.
    insert_job(
        db,
        "alo",
        "tests.test_durable:record",
        due,
        arguments='[["alo"]]',
        state="running",
        attempt=1,
    )
    insert_job(
        db,
        "amo",
        "tests.test_durable.once",
        due,
        arguments='[["amo"]]',
        state="running",
        attempt=1,
        delivery="at_most_once",
    )
    insert_job(
        db,
        "alo3",
        "tests.test_durable:record",
        due,
        arguments='[["alo3"]]',
        state="running",
        attempt=3,
    )
    wall.restart()
    async with scheduler(db, wall):
        await anyio.sleep(1)
    assert sorted((entry[0], entry[1]) for entry in LOG) == [("alo", 2), ("alo3", 4)]
    assert states(db) == {"amo": "lost"}
    lost = sql(db, "SELECT error, lease_owner, attempt FROM aioscheduler_jobs")
    assert lost[0][1] is None
    assert lost[0][2] == 1
    assert "at_most_once" in lost[0][0]
    assert any(
        "'amo'" in r.getMessage() and "lost" in r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING
    )
    wall.restart()
    async with scheduler(db, wall):
        await anyio.sleep(100)
    assert len(LOG) == 2


# -- unknown functions ---------------------------------------------------------------


def _unregister(name: str) -> None:
    entry = _by_name.pop(name, None)
    if entry is not None:
        _by_function.pop(entry.fn, None)


async def test_an_unknown_function_is_kept_reported_and_retried_with_backoff(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="aioscheduler")
    name = f"tests.renamed.job_{uuid.uuid4().hex}"
    wall = VirtualWall()
    async with scheduler(db, wall):
        pass
    due = wall.now() + timedelta(seconds=10)
    insert_job(db, "u", name, due, arguments='[["u"]]')
    wall.restart()
    try:
        async with scheduler(db, wall) as s:
            await anyio.sleep(10.5)
            readies = [sql(db, "SELECT ready FROM aioscheduler_jobs")[0][0]]
            for _ in range(6):
                await anyio.sleep((readies[-1] - micros(s.now())) / 1e6 + 0.5)
                readies.append(sql(db, "SELECT ready FROM aioscheduler_jobs")[0][0])
            # 1, 2, 4, 8, 16, 32 s after each try, never deleted, never run.
            steps = [(b - a) / 1e6 for a, b in itertools.pairwise(readies)]
            assert steps == pytest.approx([2, 4, 8, 16, 32, 64], abs=1e-3)
            assert (readies[0] - micros(due)) / 1e6 == pytest.approx(1, abs=1e-3)
            assert sql(db, "SELECT state, attempt FROM aioscheduler_jobs") == [
                ("pending", 0)
            ]
            assert LOG == []
            warned = [
                r.getMessage()
                for r in caplog.records
                if r.levelno == logging.WARNING and name in r.getMessage()
            ]
            assert len(warned) == 7
            # Registered under that name now: its next try runs it.
            durable(name)(_late_registered)
            await anyio.sleep(200)
            assert tags() == ["late:u"]
            assert states(db) == {}
    finally:
        _unregister(name)


async def _late_registered(tag: str) -> None:
    LOG.append((f"late:{tag}",))


async def test_an_unknown_function_is_never_deleted_across_restarts(db: Path) -> None:
    name = f"tests.removed.job_{uuid.uuid4().hex}"
    wall = VirtualWall()
    async with scheduler(db, wall):
        pass
    insert_job(db, "gone", name, wall.now() - timedelta(days=1))
    for _ in range(3):
        wall.restart()
        async with scheduler(db, wall):
            await anyio.sleep(1000)
        await anyio.sleep(86400)
    assert sql(db, "SELECT key, state, attempt FROM aioscheduler_jobs") == [
        ("gone", "pending", 0)
    ]


# -- security ----------------------------------------------------------------------


async def test_a_stored_function_name_never_imports_or_runs_code(
    db: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="aioscheduler")
    marker = tmp_path / "imported"
    module = f"evil_{uuid.uuid4().hex}"
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / f"{module}.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nasync def run(*a): run.ran = True\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    calls: list[Any] = []

    def system(*args: Any) -> int:
        calls.append(args)
        return 0

    monkeypatch.setattr(os, "system", system)
    wall = VirtualWall()
    async with scheduler(db, wall):
        pass
    due = wall.now() - timedelta(seconds=1)
    insert_job(db, "sys", "os:system", due, arguments='[["touch /tmp/pwned"]]')
    insert_job(db, "mod", f"{module}:run", due)
    insert_job(db, "eval", "builtins:eval", due, arguments='[["1/0"]]')
    wall.restart()
    async with scheduler(db, wall):
        await anyio.sleep(60)
    assert calls == []
    assert not marker.exists()
    assert module not in sys.modules
    assert states(db) == {"sys": "pending", "mod": "pending", "eval": "pending"}
    warned = " ".join(
        r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
    )
    assert "'os:system'" in warned
    assert f"'{module}:run'" in warned


async def test_files_are_readable_by_the_owner_only(db: Path) -> None:
    old = os.umask(0)
    try:
        wall = VirtualWall()
        async with scheduler(db, wall) as s:
            await s.durable_start_after(10, record, 1)
            names = ["jobs.db", "jobs.db-wal", "jobs.db-shm", "jobs.db.lock"]
            modes = {n: stat.S_IMODE((db.parent / n).stat().st_mode) for n in names}
        assert modes == dict.fromkeys(names, 0o600)
    finally:
        os.umask(old)


INJECTIONS = [
    "x'); DROP TABLE aioscheduler_jobs; --",
    'Robert"); DELETE FROM aioscheduler_jobs; --',
    "' OR '1'='1",
    "%_\\' \x00 end",
    "ü🙂\n\t",
]


async def test_sql_text_in_keys_and_arguments_is_data(db: Path) -> None:
    wall = VirtualWall()
    async with scheduler(db, wall) as s:
        assert s.store is not None
        for i, text in enumerate(INJECTIONS):
            key = f"{text}#{i}"
            assert (
                await s.durable_start_after(
                    10, record_kw, text, kwargs={"k": text}, key=key
                )
                == key
            )
            job = await s.store.get_job(key)
            assert job is not None
            assert job.key == key
        listed = await s.store.list_jobs(key_prefix="x'); DROP")  # type: ignore[attr-defined]
        assert [job.key for job in listed] == [f"{INJECTIONS[0]}#0"]
        # A prefix is text, not a LIKE pattern.
        assert await s.store.list_jobs(key_prefix="%x") == []  # type: ignore[attr-defined]
        assert await s.store.list_jobs(key_prefix="_") == []  # type: ignore[attr-defined]
        literal = await s.store.list_jobs(key_prefix="%_")  # type: ignore[attr-defined]
        assert [job.key for job in literal] == [f"{INJECTIONS[3]}#3"]
        assert await s.cancel_durable("' OR '1'='1") is False
        assert len(states(db)) == len(INJECTIONS)
        await anyio.sleep(11)
    assert sorted(map(str, LOG)) == sorted(
        str(([text], {"k": text})) for text in INJECTIONS
    )
    assert sql(db, "SELECT name FROM sqlite_master WHERE name = 'aioscheduler_jobs'")


# -- store errors -----------------------------------------------------------------


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def _read(path: Path) -> bytes:
    return path.read_bytes()


async def test_a_file_that_is_not_a_database_is_a_store_error(db: Path) -> None:
    _write(db, b"this is not a database, just some text " * 200)
    with pytest.raises(StoreError, match="not a usable aioscheduler store"):
        async with TimedScheduler(store=InlineSQLiteStore(db)):
            pass
    assert _read(db).startswith(b"this is not a database")


async def test_a_newer_schema_is_refused_naming_its_version(db: Path) -> None:
    wall = VirtualWall()
    async with scheduler(db, wall) as s:
        await s.durable_start_after(10, record, 1, key="kept")
    sql(db, "UPDATE aioscheduler_meta SET value = '99' WHERE name = 'schema_version'")
    with pytest.raises(StoreError, match="99") as info:
        async with scheduler(db, wall):
            pass
    assert "newer" in str(info.value)
    assert states(db) == {"kept": "pending"}


async def test_a_second_store_on_the_same_file_is_locked_out(db: Path) -> None:
    wall = VirtualWall()
    async with scheduler(db, wall) as s:
        await s.durable_start_after(10, record, 1, key="first")
        with pytest.raises(StoreLocked, match="open in this process"):
            async with TimedScheduler(store=InlineSQLiteStore(db)):
                pass
        assert issubclass(StoreLocked, StoreError)
        await anyio.sleep(11)
    assert tags() == [1]
    # Once the first closed, the file can be opened again.
    async with scheduler(db, wall):
        pass


@pytest.mark.parametrize("where", ["missing_dir", "file_as_dir"])
async def test_a_path_that_cannot_be_created_is_a_store_error(
    tmp_path: Path, where: str
) -> None:
    if where == "missing_dir":
        path = tmp_path / "no" / "such" / "dir" / "jobs.db"
    else:
        (tmp_path / "plain").write_text("x")
        path = tmp_path / "plain" / "jobs.db"
    with pytest.raises(StoreError, match="cannot create"):
        async with TimedScheduler(store=InlineSQLiteStore(path)):
            pass


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
async def test_an_unwritable_directory_is_a_store_error() -> None:
    # /proc/self takes no new files, even from root (CI runs as root, which
    # a chmod-ed directory would not stop).
    with pytest.raises(StoreError, match="cannot create"):
        async with TimedScheduler(store=InlineSQLiteStore(Path("/proc/self/jobs.db"))):
            pass


async def test_disk_full_during_a_commit_is_a_store_error_and_loses_nothing(
    db: Path,
) -> None:
    wall = VirtualWall()
    store = InlineSQLiteStore(db)
    async with TimedScheduler(store=store, wall_clock=wall) as s:
        for i in range(5):
            await s.durable_start_after(600, record, i, key=f"ok-{i}")
        con = store._con
        assert con is not None
        pages = con.execute("PRAGMA page_count").fetchone()[0]
        con.execute(f"PRAGMA max_page_count = {pages}")
        big = "x" * 200_000
        with pytest.raises(StoreError, match="full"):
            await s.durable_start_after(600, record, big, key="too-big")
        # The failed batch committed nothing; the earlier jobs are there.
        assert sorted(states(db)) == [f"ok-{i}" for i in range(5)]
        con.execute("PRAGMA max_page_count = 1073741823")
        await s.durable_start_after(600, record, "after", key="after")
        await anyio.sleep(601)
    assert sorted(map(str, tags())) == ["0", "1", "2", "3", "4", "after"]
    assert states(db) == {}


# -- a Manager ---------------------------------------------------------------------


async def test_a_manager_shares_one_store_and_runs_every_job_once(db: Path) -> None:
    wall = VirtualWall()
    store = CountingStore(db)
    async with Manager(3, store=store, wall_clock=wall) as m:
        assert all(s.store is store for s in m.schedulers)
        assert m.store is store
        start = m.now()
        for i in range(90):
            await m.durable_start_at(
                start + timedelta(seconds=1 + i % 7), busy, i, 0.5, key=f"m-{i}"
            )
        await anyio.sleep(20)
    assert sorted(tags()) == list(range(90))  # each exactly once
    for _tag, attempt, scheduled, started, _now in LOG:
        assert attempt == 1
        assert on_time(scheduled, started)
    assert states(db) == {}
    assert store._users == 0  # closed by the last of the three


class ExtendCountingStore(InlineSQLiteStore):
    """Counts lease renewals (each is one transaction)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.extends = 0

    async def extend(self, tokens: Any, *, now: int, lease: float) -> Any:
        self.extends += 1
        return await super().extend(tokens, now=now, lease=lease)


async def test_a_long_job_renews_its_lease_every_third_of_it(db: Path) -> None:
    wall = VirtualWall()
    store = ExtendCountingStore(db)
    async with TimedScheduler(store=store, wall_clock=wall) as s:
        await s.durable_start_after(1, busy, "long", 100, key="long")
        await anyio.sleep(50)
        lease_until = sql(db, "SELECT lease_until FROM aioscheduler_jobs")[0][0]
        assert lease_until > micros(s.now())  # still held
    assert tags() == ["long"]
    # 100 s of running, a renewal every 10 s (a third of the 30 s lease):
    # about ten, not one per loop iteration.
    assert 8 <= store.extends <= 11
