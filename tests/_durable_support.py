"""Shared by the durable-job tests: a wall clock across restarts, raw SQL.

Each scheduler's wall time is the wall clock read when it starts serving
plus the loop time elapsed since: under a virtual loop clock, the virtual
time a test spends *between* two schedulers (a process that is down) is not
wall time for the next one. :class:`VirtualWall` makes it so: call
:meth:`VirtualWall.restart` before opening the next scheduler, after
``await anyio.sleep(downtime)`` outside any scheduler.
"""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio

from tests.conftest import steady_wall_clock

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class VirtualWall:
    """A steady wall clock that carries virtual time over a restart."""

    def __init__(self) -> None:
        self.origin = anyio.current_time()
        self.shift = 0.0

    def __call__(self) -> float:
        return steady_wall_clock() + self.shift

    def restart(self) -> None:
        """The next scheduler starts as late as the virtual time spent so far."""
        self.shift = anyio.current_time() - self.origin

    def now(self) -> datetime:
        """What a scheduler opened now would read as its wall time (about)."""
        return datetime.fromtimestamp(self(), UTC)


def micros(when: datetime) -> int:
    """Microseconds since the epoch, as the store keeps times."""
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def sql(db: Path, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """Run one statement on the database file, with a connection of its own."""
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as con:
        return con.execute(statement, params).fetchall()


def insert_job(
    db: Path,
    key: str,
    function: str,
    due: datetime,
    *,
    arguments: str = "[[]]",
    state: str = "pending",
    attempt: int = 0,
    delivery: str = "at_least_once",
) -> None:
    """Write a job row directly, as another program (or an attacker) could."""
    due_us = micros(due)
    lease_owner = "dead-host:1:gone" if state == "running" else None
    lease_until = due_us + 3_600_000_000 if state == "running" else None
    sql(
        db,
        "INSERT INTO aioscheduler_jobs (key, function, arguments, due, ready, state, "
        "attempt, delivery, lease_owner, lease_until, created) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            key,
            function,
            arguments,
            due_us,
            due_us,
            state,
            attempt,
            delivery,
            lease_owner,
            lease_until,
            due_us,
        ),
    )


def states(db: Path) -> dict[str, str]:
    """Every job's state, by key."""
    return dict(sql(db, "SELECT key, state FROM aioscheduler_jobs"))
