"""Static typing of the public API, checked by ``mypy --strict`` (``nox -s types``).

``Task`` is generic in what the job returns. Each ``assert_type`` below is
checked by mypy (and is a no-op at run time), so these tests also run.
Calls a type checker must refuse carry ``# type: ignore[<code>]``: mypy
``--strict`` warns about an unused ignore, so the check fails if such a call
ever stops being an error. At run time those calls raise ``TypeError``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import assert_type

import anyio
import pytest

from aioscheduler import (
    LifoQueuedScheduler,
    Manager,
    QueuedScheduler,
    Task,
    TimedScheduler,
)


async def double(n: int) -> int:
    await anyio.sleep(0.1)
    return n * 2


async def greet(name: str, punctuation: str) -> str:
    return f"hello {name}{punctuation}"


async def nothing() -> None:
    pass


def soon() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=1)


async def test_timed_tasks_are_typed_by_the_result() -> None:
    async with TimedScheduler() as scheduler:
        after = scheduler.start_after(1, double, 21)
        assert_type(after, Task[int])
        at = scheduler.start_at(soon(), greet, "you", "!")
        assert_type(at, Task[str])
        legacy = scheduler.schedule(double(1), soon())
        assert_type(legacy, Task[int])
        none = scheduler.start_after(0, nothing)
        assert_type(none, Task[None])
        assert assert_type(await after.wait(), int) == 42
        assert assert_type(at.result(), str) == "hello you!"
        assert assert_type(await legacy.wait(), int) == 2


async def test_queued_tasks_are_typed_by_the_result() -> None:
    async with QueuedScheduler() as scheduler:
        task = scheduler.start_soon(double, 2)
        assert_type(task, Task[int])
        legacy = scheduler.schedule(greet("a", "."))
        assert_type(legacy, Task[str])
        assert assert_type(await task.wait(), int) == 4
    assert assert_type(legacy.result(), str) == "hello a."


async def test_manager_of_timed() -> None:
    async with Manager(2) as manager:
        assert_type(manager, Manager[TimedScheduler])
        task = manager.start_after(1, double, 3)
        assert_type(task, Task[int])
        at = manager.start_at(soon(), greet, "b", "?")
        assert_type(at, Task[str])
        legacy = manager.schedule(double(4), soon())
        assert_type(legacy, Task[int])
        assert assert_type(await task.wait(), int) == 6
        assert assert_type(await legacy.wait(), int) == 8
        with pytest.raises(TypeError, match="start_soon needs a Manager of Queued"):
            manager.start_soon(double, 1)  # type: ignore[misc]
        coro = double(1)
        with pytest.raises(TypeError, match=r"takes \(coro, when\)"):
            manager.schedule(coro)  # type: ignore[call-arg]


def test_manager_of_timed_takes_every_timed_option(tmp_path: Path) -> None:
    # The keyword options of TimedScheduler, through the Manager's overload
    # for its default kind (a store, its concurrency, the wall clock).
    manager = Manager(
        2,
        prefer_utc=False,
        wall_clock=time.time,
        wall_poll=5,
        store=tmp_path / "jobs.db",
        durable_concurrency=10,
    )
    assert_type(manager, Manager[TimedScheduler])
    assert manager.store is not None


@pytest.mark.parametrize("cls", [QueuedScheduler, LifoQueuedScheduler])
async def test_manager_of_queued(cls: type[QueuedScheduler]) -> None:
    async with Manager(2, cls=cls) as manager:
        assert_type(manager, Manager[QueuedScheduler])
        task = manager.start_soon(double, 5)
        assert_type(task, Task[int])
        legacy = manager.schedule(greet("c", "!"))
        assert_type(legacy, Task[str])
        assert assert_type(await task.wait(), int) == 10
        with pytest.raises(TypeError, match="start_at needs a Manager of Timed"):
            manager.start_at(soon(), double, 1)  # type: ignore[misc]
        with pytest.raises(TypeError, match="start_after needs a Manager of Timed"):
            manager.start_after(1, double, 1)  # type: ignore[misc]
        coro = double(1)
        with pytest.raises(TypeError, match=r"takes \(coro\)"):
            manager.schedule(coro, soon())  # type: ignore[call-arg]


async def test_manager_of_lifo_is_a_manager_of_queued_for_start_soon() -> None:
    async with Manager(1, cls=LifoQueuedScheduler) as manager:
        assert_type(manager, Manager[LifoQueuedScheduler])
        assert_type(manager.start_soon(double, 1), Task[int])
        with pytest.raises(TypeError):
            manager.start_after(1, double, 1)  # type: ignore[misc]


def refused_arguments(scheduler: QueuedScheduler) -> None:
    """Never called: only for the type checker, which must refuse these."""
    scheduler.start_soon(double, "not an int")  # type: ignore[arg-type]
    scheduler.start_soon(greet, "one argument short")  # type: ignore[arg-type]
