"""A claim still under way when ``async with`` ends starts nothing.

Leaving ``async with`` waits for the running durable jobs, then cancels
whatever is left. A claim the feeder sent before the body ended (held up
behind a slow store call: a big ``durable_batch()`` on the same
connection, say) can return after that wait is over: the jobs it claimed
must go back to the store untouched, not start in a closing scheduler and
be interrupted there (an ``at_most_once`` job would be recorded lost after
it began; an ``at_least_once`` one would run again). Found by the fleet
tests of tests/test_postgres_fleet.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from aioscheduler import TimedScheduler, durable
from aioscheduler.stores._interface import Claim
from tests._stores import InlineSQLiteStore

pytestmark = pytest.mark.anyio

started: list[str] = []


@durable("exit_claim.once", delivery="at_most_once")
async def once(name: str) -> None:
    started.append(name)
    await anyio.sleep(1)


class SlowClaims(InlineSQLiteStore):
    """Each claim takes a second once ``slow`` is set (a busy connection)."""

    slow = False

    async def claim(self, owner: str, **options: Any) -> Claim:
        if self.slow:
            await anyio.sleep(1)
        return await super().claim(owner, **options)


async def test_a_claim_that_returns_after_the_body_ended_starts_nothing(
    tmp_path: Path,
) -> None:
    started.clear()
    store = SlowClaims(tmp_path / "jobs.db")
    async with TimedScheduler(store=store) as s:
        store.slow = True
        await s.durable_start_after(0.2, once, "a", key="a")
        # The feeder's claims take 1 s each: the one from 1 s claims the
        # job, and returns after the body has ended (at 1.5 s).
        await anyio.sleep(1.5)
    assert started == []
    store.slow = False
    await store.open()
    try:
        record = await store.get_job("a")
    finally:
        await store.close()
    assert record is not None
    assert (record.state, record.attempt) == ("pending", 0)
