"""Crash tests with real processes: the SQLite store under ``kill -9``."""

from __future__ import annotations

from pathlib import Path

import pytest

from aioscheduler import StoreLocked, TimedScheduler
from tests._stores import InlineSQLiteStore


async def test_a_start_failure_leaves_async_with_as_itself(tmp_path: Path) -> None:
    """What the test above found, in one process: a failure to start (here
    the store's lock, which a second descriptor in the same process meets
    too) came out of ``async with`` wrapped in an ExceptionGroup, on every
    path, so ``except StoreLocked`` did not catch it. The failed start
    leaves no lock behind."""
    path = tmp_path / "jobs.db"
    async with TimedScheduler(store=InlineSQLiteStore(path)):
        with pytest.raises(StoreLocked, match="is open in another process"):
            async with TimedScheduler(store=InlineSQLiteStore(path)):
                pass  # pragma: no cover - refused
    async with TimedScheduler(store=InlineSQLiteStore(path)) as scheduler:
        assert scheduler.store is not None
