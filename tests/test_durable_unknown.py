"""A durable job whose function is unknown is kept and tried again after its
backoff, by itself: no other add or wake-up is needed.

Virtual time on every path, with the inline SQLite store (no thread hop).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

import aioscheduler._registry as registry
from aioscheduler import TimedScheduler, durable
from tests._stores import InlineSQLiteStore

NAME = "tests.unknown-then-known"


async def test_unknown_function_is_tried_again_after_its_backoff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A registry of this test's own, so that each path registers afresh.
    monkeypatch.setattr(registry, "_by_name", {})
    monkeypatch.setattr(registry, "_by_function", {})
    ran: list[int] = []

    async def job(n: int) -> None:
        ran.append(n)

    durable(NAME)(job)
    entry = registry._by_name[NAME]
    async with TimedScheduler(store=InlineSQLiteStore(tmp_path / "jobs.db")) as s:
        due = s.now() + timedelta(seconds=10)
        await s.durable_start_at(due, job, 7, key="k")
        del registry._by_name[NAME]  # renamed or removed, as after a deploy
        with caplog.at_level(logging.WARNING, logger="aioscheduler"):
            await anyio.sleep(10.5)
        assert ran == []
        assert [r.getMessage()[:38] for r in caplog.records] == [
            "durable job 'k' names the function 'te"
        ]
        assert "tried again in 1 s" in caplog.records[0].getMessage()
        store = s.store
        assert store is not None
        record = await store.get_job("k")
        assert record is not None
        assert (record.state, record.attempt) == ("pending", 0)
        assert abs(record.ready - (record.due + 1_000_000)) <= 1
        registry._by_name[NAME] = entry  # registered again
        await anyio.sleep(1)  # the retry is due 1 s after the first claim
        assert ran == [7]
        assert await store.get_job("k") is None
