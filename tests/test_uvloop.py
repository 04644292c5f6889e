"""uvloop: the engines on uvloop's event loop, where it is installed.

looptime cannot drive uvloop (it virtualises the selector, which uvloop does
not have), so these run in real time, with short delays and assertions that
hold however fast or slow the machine is: order among jobs due at distinct
times (a late serving task still starts them in deadline order), exactly
once, never early, and how often the serving task wakes up.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from aioscheduler import QueuedScheduler, TimedScheduler
from aioscheduler.backends import _asyncio as asyncio_backend
from tests._engines import use_engine

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("uvloop") is None, reason="uvloop is not installed"
)

ENGINES = ["native", "anyio"]
UVLOOP: dict[str, Any] = {"use_uvloop": True}


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    name: str = request.param
    use_engine(monkeypatch, name)
    return name


def test_serving_task_does_not_spin_before_deadlines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """uvloop keeps time in whole milliseconds: a timer set for a deadline
    between two ticks fires early, and the serving task used to sleep and
    wake again about 70 times per job (13,997 wake-ups for 200 jobs)."""
    use_engine(monkeypatch, "native")
    sleeps = 0
    original = asyncio_backend.AsyncioEngine.sleep_until

    async def counting(self: Any, deadline: float | None) -> None:
        nonlocal sleeps
        sleeps += 1
        await original(self, deadline)

    monkeypatch.setattr(asyncio_backend.AsyncioEngine, "sleep_until", counting)
    early: list[float] = []

    async def job(due: float) -> None:
        lateness = anyio.current_time() - due
        if lateness < 0:
            early.append(lateness)

    async def main() -> None:
        async with TimedScheduler() as scheduler:
            now = anyio.current_time()
            for n in range(200):
                # Between millisecond ticks, like most real deadlines.
                delay = 0.01 + n * 0.0013
                scheduler.start_after(delay, job, now + delay)

    anyio.run(main, backend="asyncio", backend_options=UVLOOP)
    assert early == []
    # One sleep per distinct deadline at most (fewer when several are due
    # together), plus the final idle sleep; a slow machine only lowers it.
    assert sleeps <= 200 + 2, sleeps


def test_timed_jobs_run_once_in_deadline_order_never_early(engine: str) -> None:
    started: list[int] = []
    early: list[int] = []

    async def job(n: int, due: float) -> None:
        if anyio.current_time() < due:
            early.append(n)
        started.append(n)

    async def main() -> None:
        async with TimedScheduler() as scheduler:
            now = anyio.current_time()
            for n in reversed(range(50)):
                scheduler.start_after(0.002 * n, job, n, now + 0.002 * n)

    anyio.run(main, backend="asyncio", backend_options=UVLOOP)
    assert early == []
    assert started == list(range(50))


def test_queued_jobs_in_order_and_cancel_pending(engine: str) -> None:
    started: list[int] = []

    async def job(n: int) -> None:
        started.append(n)
        await anyio.lowlevel.checkpoint()

    async def main() -> None:
        async with QueuedScheduler() as scheduler:
            tasks = [scheduler.start_soon(job, n) for n in range(20)]
            assert tasks[5].cancel()

    anyio.run(main, backend="asyncio", backend_options=UVLOOP)
    assert started == [n for n in range(20) if n != 5]


def test_swallowed_cancel_ends_cancelled(engine: str) -> None:
    outcome: list[bool] = []

    async def stubborn() -> None:
        try:
            await anyio.sleep(30)
        except anyio.get_cancelled_exc_class():
            pass
        await anyio.sleep(30)

    async def main() -> None:
        with anyio.fail_after(20):
            scheduler = TimedScheduler()
            async with anyio.create_task_group() as group:
                await group.start(scheduler.run)
                task = scheduler.start_after(0, stubborn)
                await anyio.sleep(0.05)
                await scheduler.aclose()
            outcome.append(task.cancelled())

    anyio.run(main, backend="asyncio", backend_options=UVLOOP)
    assert outcome == [True]
