"""A real full disk under the SQLite store: a clear error, nothing lost.

The store's file lives on a small ``tmpfs`` mounted for the test (Linux,
root: as in CI); a filler file leaves it a little room. Durable adds go on
until the disk is full. Every add that returned must be in the store after
the space comes back and a new scheduler opens the file, and must run once;
the add that failed raised :exc:`StoreError` and committed nothing.

Real time, real thread hop (``SQLiteStore``); no timing assertions:
``fail_after`` only bounds a hang.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from aioscheduler import SQLiteStore, StoreError, TimedScheduler, durable
from tests._engines import use_engine
from tests.conftest import PATHS

HANG = 60
RAN: list[int] = []
ALL_RAN: list[tuple[int, anyio.Event]] = []  # (how many, set when they ran)


@durable("tests.disk_full.job")
async def job(n: int) -> None:
    RAN.append(n)
    for count, event in ALL_RAN:
        if len(RAN) >= count:
            event.set()


def _can_mount() -> str | None:
    """Why a tmpfs cannot be mounted here, or None if it can."""
    if not sys.platform.startswith("linux"):
        return "tmpfs mounts are Linux's"
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root (CI runs as root)"
    return None


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    why = _can_mount()
    if why is not None:
        pytest.skip(f"a real full disk: {why}")
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:8]}"
    mount.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mount)],
        check=True,
    )
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture(params=PATHS)
def anyio_backend(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, dict[str, Any]]:
    """Every path, on the loop's real clock (a thread hop)."""
    name, engine = request.param
    use_engine(monkeypatch, engine)
    return name, {}


async def test_a_full_disk_fails_the_add_and_loses_nothing(small_disk: Path) -> None:
    RAN.clear()
    path = small_disk / "jobs.db"
    filler = small_disk / "filler"
    acknowledged: list[int] = []
    failed: StoreError | None = None
    with anyio.fail_after(HANG):
        async with TimedScheduler(store=SQLiteStore(path)) as s:
            # Leave the store a little room: a few dozen adds, then full.
            free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
            filler.write_bytes(b"\0" * max(0, free - 96 * 1024))
            for n in range(100_000):
                try:
                    await s.durable_start_after(3600, job, n, key=f"job-{n}")
                except StoreError as exc:
                    failed = exc
                    break
                acknowledged.append(n)
            assert failed is not None, "the disk never filled"
            # The scheduler goes on: the add failed, not the store.
            await s.aclose()
    assert "full" in str(failed), failed
    assert acknowledged, "no add fitted before the disk was full"

    # Space again: a new scheduler finds every acknowledged job, runs each
    # once, and the failed one was never committed.
    filler.unlink()
    with anyio.fail_after(HANG):
        store = SQLiteStore(path)
        async with TimedScheduler(store=store) as s:
            keys = {r.key for r in await store.list_jobs(limit=None)}
            assert keys == {f"job-{n}" for n in acknowledged}
            # Make them due now: replace each with a due-now copy.
            all_ran = anyio.Event()
            ALL_RAN[:] = [(len(acknowledged), all_ran)]
            async with s.durable_batch() as batch:
                for n in acknowledged:
                    batch.start_after(0, job, n, key=f"job-{n}", on_conflict="replace")
            await all_ran.wait()
            await s.aclose()
    assert sorted(RAN) == acknowledged  # each once, none lost
