"""Review findings on durable jobs: each test failed before its fix.

Virtual time on every path, with the inline SQLite store (no thread hop).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from aioscheduler import StoreError, TimedScheduler, durable
from aioscheduler._durable import StoreLink, link_of
from aioscheduler.stores._interface import (
    AddResult,
    Claim,
    Finished,
    JobRecord,
    NewJob,
)
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


class GatedStore(InlineSQLiteStore):
    """Adds wait for ``gate`` while it is closed; ``entered`` says one waits."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate: anyio.Event | None = None
        self.entered = anyio.Event()

    async def add(self, jobs: Sequence[NewJob]) -> list[AddResult]:
        gate = self.gate
        if gate is not None:
            self.entered.set()
            await gate.wait()
        return await super().add(jobs)


async def _cancel_when_joined(link: StoreLink, scope: anyio.CancelScope) -> None:
    while link._batch is None or len(link._batch.jobs) < 2:
        await anyio.lowlevel.checkpoint()
    scope.cancel()


async def test_an_add_cancelled_after_joining_a_commit_still_wakes_the_feeder(
    tmp_path: Path,
) -> None:
    # A durable add that joined another add's commit and was cancelled
    # while waiting for it is committed all the same (as documented): its
    # job must start when due, not when the feeder next wakes by itself.
    RAN.clear()
    store = GatedStore(tmp_path / "jobs.db")
    async with TimedScheduler(store=store, wall_poll=100_000) as s:
        # A live job far ahead: the feeder sleeps until it is due.
        await s.durable_start_after(10_000, quick, "far", key="far")
        await anyio.sleep(1)

        async def keep_far() -> None:
            # "keep" of a live key: commits nothing, wakes nobody.
            await s.durable_start_after(
                10_000, quick, "x", key="far", on_conflict="keep"
            )

        link = link_of(store)
        store.gate = anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(keep_far)  # holds the commit lock
            await store.entered.wait()
            group.start_soon(keep_far)  # leads the next commit
            while link._batch is None:
                await anyio.lowlevel.checkpoint()
            with anyio.CancelScope() as scope:
                # Joins that commit, then is cancelled while it waits.
                group.start_soon(_cancel_when_joined, link, scope)
                await s.durable_start_after(1, quick, "soon", key="soon")
            assert scope.cancelled_caught
            store.gate.set()
        assert (await store.get_job("soon")) is not None  # committed
        await anyio.sleep(5)
        assert RAN == ["soon"]
        await s.cancel_durable("far")


class FailingClaimStore(InlineSQLiteStore):
    """The first claim that records an outcome fails (a full disk, say)."""

    failed = False

    async def claim(
        self,
        owner: str,
        *,
        now: int,
        limit: int,
        lease: float,
        finished: Sequence[Finished] = (),
    ) -> Claim:
        if finished and not self.failed:
            self.failed = True
            raise StoreError("disk I/O error; nothing was committed")
        return await super().claim(
            owner, now=now, limit=limit, lease=lease, finished=finished
        )


async def test_a_failed_claim_is_tried_again_and_keeps_its_outcomes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The claim that would record a job's outcome fails (a full disk, the
    # database gone for a moment): the scheduler goes on, tries again after
    # a backoff, and the outcome it carried is recorded then, or the job
    # that ended would run again after a restart (an at-most-once one: lost).
    RAN.clear()
    path = tmp_path / "jobs.db"
    store = FailingClaimStore(path)
    async with TimedScheduler(store=store) as s:
        await s.durable_start_after(1, quick, "a", key="k")
        await s.durable_start_after(3, quick, "b", key="k2")
        await anyio.sleep(5)
    assert store.failed
    assert RAN == ["a", "b"]  # the scheduler went on
    assert await _record(path, "k") is None  # done: deleted
    assert await _record(path, "k2") is None
    messages = [r.getMessage() for r in caplog.records]
    assert any("the store failed" in m and "trying again" in m for m in messages)
    assert "the store works again" in messages


SIGNALS: dict[str, anyio.Event] = {}


@durable("tests.review.signal")
async def signal(name: str) -> None:
    RAN.append(name)
    SIGNALS[name].set()


def test_a_store_serves_again_under_another_event_loop(tmp_path: Path) -> None:
    # One store object, used by a scheduler under Trio and then by one under
    # asyncio (a module-level store, tests on both backends): the second
    # must not use the first loop's commit lock.
    pytest.importorskip("trio")
    RAN.clear()
    store = InlineSQLiteStore(tmp_path / "jobs.db")

    async def serve(name: str) -> None:
        SIGNALS[name] = anyio.Event()
        with anyio.fail_after(10):
            async with TimedScheduler(store=store) as s:
                await s.durable_start_after(0, signal, name, key=name)
                await SIGNALS[name].wait()

    anyio.run(serve, "on trio", backend="trio")
    anyio.run(serve, "on asyncio", backend="asyncio")
    assert RAN == ["on trio", "on asyncio"]


QUICK: list[str] = []


@durable("tests.review.noted")
async def noted(name: str) -> None:
    QUICK.append(name)


async def test_an_unreadable_schedule_is_set_aside_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A schedule row whose trigger this version cannot read (a newer
    # version's, or a zone this machine lacks) used to fail every claim, so
    # no scheduler on the store could run anything.
    from aioscheduler import Every

    path = tmp_path / "jobs.db"
    QUICK.clear()
    store = InlineSQLiteStore(path)
    async with TimedScheduler(store=store) as s:
        await s.add_durable_schedule(Every(10), noted, "tick", id="bad")
        assert store._con is not None
        store._con.execute(
            "UPDATE aioscheduler_schedules SET trigger = ? WHERE id = 'bad'",
            ('{"type": "cron", "expr": "* * * * *", "tz": "Mars/Olympus"}',),
        )
        await s.durable_start_after(30, noted, "job")
        await anyio.sleep(60)
    assert QUICK == ["job"]
    record = await _schedule(path, "bad")
    assert record is not None
    assert record.next_fire is None
    assert record.error is not None
    assert "Mars/Olympus" in record.error
    assert any("set aside" in r.getMessage() for r in caplog.records)


async def _schedule(path: Path, id: str) -> Any:
    store = InlineSQLiteStore(path)
    await store.open()
    try:
        return await store.get_schedule(id)
    finally:
        await store.close()


class _AddsDuringClaim(InlineSQLiteStore):
    """Runs an add (through the scheduler) in the middle of a claim, as a
    store with side-by-side transactions would let it happen."""

    hook: Any = None

    async def claim(self, owner: str, **kw: Any) -> Claim:
        claim = await super().claim(owner, **kw)
        hook, self.hook = self.hook, None
        if hook is not None:
            await hook()
        return claim


async def test_an_add_during_a_claim_is_not_slept_through(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    QUICK.clear()
    store = _AddsDuringClaim(path)
    async with TimedScheduler(store=store) as s:
        await s.durable_start_after(1000, noted, "far")
        await anyio.sleep(1)  # the feeder sleeps toward "far"
        started = s.now()

        async def add_near() -> None:
            # Committed after the claim looked: only the add's wake-up can
            # tell the feeder.
            link = link_of(store)
            link.runtimes[0]._sleeping = False
            await s.durable_start_after(5, noted, "near")

        store.hook = add_near
        # Due now, and it keeps running (no ending wakes the feeder): wakes
        # the feeder to claim. Otherwise only lease renewal (10 s) or
        # wall_poll (30 s) would wake it.
        STARTED.clear()
        await s.durable_start_after(0, slow, "wake")
        await anyio.sleep(7)
        assert STARTED == ["wake"]
        assert QUICK == ["near"], (QUICK, s.now() - started)
        await s.aclose()


async def test_replacing_with_an_equal_every_keeps_the_progress(tmp_path: Path) -> None:
    # Every() anchors at the time it is added, so the stored (anchored)
    # trigger differs from one add to the next: equality must be judged on
    # the trigger as given, or replace would restart the schedule.
    from aioscheduler import Every

    path = tmp_path / "jobs.db"
    QUICK.clear()
    store = InlineSQLiteStore(path)
    async with TimedScheduler(store=store) as s:
        await s.add_durable_schedule(Every(10), noted, "a", id="tick")
        await anyio.sleep(25)  # fires at 10 and 20
        before = await store.get_schedule("tick")
        assert before is not None
        await s.add_durable_schedule(
            Every(10), noted, "b", id="tick", on_conflict="replace"
        )
        after = await store.get_schedule("tick")
        assert after is not None
        assert (after.next_fire, after.high_water, after.runs) == (
            before.next_fire,
            before.high_water,
            before.runs,
        )
        await anyio.sleep(10)  # the fire at 30, with the new argument
        await s.aclose()
    assert QUICK == ["a", "a", "b"]


class _StuckRenewals(InlineSQLiteStore):
    """A shared-store stand-in whose lease renewals hang (a cut-off database)."""

    expires_leases = True
    lease = 3.0

    async def extend(self, tokens: Any, *, now: int, lease: float) -> set[Any]:
        await anyio.sleep(100)
        return set()


CUT: list[float] = []


@durable("tests.review.cut")
async def cut() -> None:
    start = anyio.current_time()
    try:
        await anyio.sleep(1000)
    except anyio.get_cancelled_exc_class():
        CUT.append(anyio.current_time() - start)
        raise


async def test_a_worker_that_cannot_renew_in_time_cancels_its_own_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Past its lease (3 s) another worker may claim the job: a worker whose
    # renewals do not land stops running it a sixth of a lease before.
    path = tmp_path / "jobs.db"
    CUT.clear()
    async with TimedScheduler(store=_StuckRenewals(path)) as s:
        await s.durable_start_after(1, cut, key="k")
        await anyio.sleep(20)
        await s.aclose()
    assert [pytest.approx(2.5, abs=1e-6)] == CUT
    assert any("could not be renewed in time" in r.getMessage() for r in caplog.records)
