"""Review findings on durable jobs: each test failed before its fix.

Virtual time on every path, with the inline SQLite store (no thread hop).
"""

from __future__ import annotations

from pathlib import Path

import anyio

from aioscheduler import TimedScheduler, durable
from aioscheduler.stores._interface import JobRecord
from tests._stores import InlineSQLiteStore

STARTED: list[str] = []


@durable("tests.review.slow")
async def slow(name: str) -> None:
    STARTED.append(name)
    await anyio.sleep(1000)


async def _record(path: Path, key: str) -> JobRecord | None:
    store = InlineSQLiteStore(path)
    await store.open()
    try:
        return await store.get_job(key)
    finally:
        await store.close()


async def test_outer_cancellation_does_not_delete_a_running_job(
    tmp_path: Path,
) -> None:
    # Cancelled from outside (a deadline around `async with`), a running
    # at-least-once job is interrupted, as by a shutdown: it must stay in
    # the store to run again, not be deleted as if the user cancelled it.
    path = tmp_path / "jobs.db"
    STARTED.clear()
    with anyio.move_on_after(5):
        async with TimedScheduler(store=InlineSQLiteStore(path)) as s:
            await s.durable_start_after(1, slow, "a", key="k")
            await anyio.sleep(100)
    assert STARTED == ["a"]
    record = await _record(path, "k")
    assert record is not None
    assert (record.state, record.attempt) == ("pending", 1)


async def test_a_cancel_asked_for_still_deletes_a_running_job(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    STARTED.clear()
    async with TimedScheduler(store=InlineSQLiteStore(path)) as s:
        await s.durable_start_after(1, slow, "a", key="k")
        await anyio.sleep(2)
        runtime = s._durable
        assert runtime is not None
        (task,) = runtime.running.values()
        assert task.cancel()
    assert STARTED == ["a"]
    assert await _record(path, "k") is None


RAN: list[str] = []


@durable("tests.review.quick")
async def quick(name: str) -> None:
    RAN.append(name)


async def test_a_due_job_starts_once_max_tasks_frees_a_slot(tmp_path: Path) -> None:
    # max_tasks is full of volatile jobs when the durable job falls due: it
    # must start when one of them ends, not wait for a durable job to end.
    RAN.clear()

    async def volatile() -> None:
        await anyio.sleep(10)

    async with TimedScheduler(
        max_tasks=1, store=InlineSQLiteStore(tmp_path / "jobs.db")
    ) as s:
        await s.durable_start_after(1, quick, "d", key="d")
        s.start_after(0, volatile)
        await anyio.sleep(5)
        assert RAN == []
        await anyio.sleep(6)  # the volatile job ended at 10 s
        assert RAN == ["d"]
