"""Durable jobs through the real thread hop: ``SQLiteStore``, real time.

Every path, but on real clocks (a thread hop would let a virtual clock
jump): these tests wait for events, never for time, and assert no timing.
``fail_after`` only bounds a hang.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from aioscheduler import Manager, SQLiteStore, TimedScheduler, current_job, durable
from aioscheduler.stores._interface import AddResult, NewJob
from tests._durable_support import sql, states
from tests._engines import use_engine
from tests.conftest import PATHS

# A hang, not a timing assertion: nothing here should take a second.
HANG = 30

RAN: list[tuple[str, int]] = []
DONE: dict[str, anyio.Event] = {}
EXPECTED: list[int] = [0]


@pytest.fixture(params=PATHS)
def anyio_backend(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, dict[str, Any]]:
    """Every path, on the loop's real clock."""
    name, engine = request.param
    use_engine(monkeypatch, engine)
    return name, {}


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    RAN.clear()
    DONE.clear()
    yield
    RAN.clear()
    DONE.clear()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "jobs.db"


@durable
async def mark(tag: str) -> None:
    job = current_job()
    RAN.append((tag, job.attempt))
    assert job.started >= job.scheduled  # never early, by the wall clock
    if len(RAN) >= EXPECTED[0]:
        DONE["all"].set()


@durable
async def hang_first_time(tag: str) -> None:
    RAN.append((tag, current_job().attempt))
    DONE["started"].set()
    if current_job().attempt == 1:
        await anyio.sleep_forever()
    DONE["all"].set()


def expect(count: int) -> anyio.Event:
    EXPECTED[0] = count
    DONE["all"] = anyio.Event()
    return DONE["all"]


class CountingSQLiteStore(SQLiteStore):
    """The real store (thread hop included), counting its add calls."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.adds: list[int] = []

    async def add(self, jobs: Sequence[NewJob]) -> list[AddResult]:
        self.adds.append(len(jobs))
        return await super().add(jobs)


async def test_an_add_returns_once_another_connection_sees_the_job(db: Path) -> None:
    async with TimedScheduler(store=SQLiteStore(db)) as s:
        key = await s.durable_start_after(3600, mark, "later", key="seen")
        inspector = SQLiteStore(db)
        await inspector.open_for_inspection()
        try:
            job = await inspector.get_job(key)
            assert job is not None
            assert (job.key, job.state, job.function) == (
                "seen",
                "pending",
                "tests.test_durable_threads:mark",
            )
        finally:
            await inspector.close()
        assert states(db) == {"seen": "pending"}
        assert await s.cancel_durable("seen")


async def test_concurrent_adds_share_commits_through_the_thread(db: Path) -> None:
    store = CountingSQLiteStore(db)
    done = expect(200)
    async with TimedScheduler(store=store) as s:
        async with anyio.create_task_group() as group:
            for i in range(200):
                group.start_soon(
                    s.durable_start_after, timedelta(milliseconds=1), mark, f"j{i}"
                )
        assert sum(store.adds) == 200
        assert len(store.adds) < 200  # group commit: fewer transactions
        with anyio.fail_after(HANG):
            await done.wait()
    assert sorted(tag for tag, _ in RAN) == sorted(f"j{i}" for i in range(200))
    assert {attempt for _, attempt in RAN} == {1}
    assert states(db) == {}


async def test_an_interrupted_job_runs_again_after_a_restart(db: Path) -> None:
    DONE["started"] = anyio.Event()
    s = TimedScheduler(store=SQLiteStore(db))
    async with s:
        await s.durable_start_after(0, hang_first_time, "h", key="h")
        with anyio.fail_after(HANG):
            await DONE["started"].wait()
        await s.aclose()
    assert sql(db, "SELECT state, attempt FROM aioscheduler_jobs") == [("pending", 1)]
    done = expect(1)
    async with TimedScheduler(store=SQLiteStore(db)):
        with anyio.fail_after(HANG):
            await done.wait()
    assert RAN == [("h", 1), ("h", 2)]
    assert states(db) == {}


async def test_a_manager_runs_each_job_once_through_one_store(db: Path) -> None:
    store = SQLiteStore(db)
    done = expect(100)
    async with Manager(3, store=store) as m:
        for i in range(100):
            await m.durable_start_after(timedelta(milliseconds=i % 5), mark, f"m{i}")
        with anyio.fail_after(HANG):
            await done.wait()
    assert sorted(tag for tag, _ in RAN) == sorted(f"m{i}" for i in range(100))
    assert states(db) == {}


async def test_inspection_while_a_scheduler_serves(db: Path) -> None:
    async with TimedScheduler(store=SQLiteStore(db)) as s:
        await s.durable_start_after(3600, mark, "a", key="a")
        await s.durable_start_after(7200, mark, "b", key="b")
        inspector = SQLiteStore(db)
        await inspector.open_for_inspection()  # no StoreLocked: it only looks
        try:
            listed = await inspector.list_jobs(states=["pending"])
            assert [job.key for job in listed] == ["a", "b"]
            stats = await inspector.stats()
            assert stats["counts"] == {"pending": 2}
        finally:
            await inspector.close()
        assert await s.cancel_durable("a")
        assert await s.cancel_durable("b")
    assert RAN == []
