"""The child process of tests/test_durable_crash.py: durable jobs on a real
SQLite store (its thread hop, real time), to be killed with SIGKILL.

Run as ``python -m tests._durable_child '<json config>'``. The config names
the mode, the files and the clock:

* ``add``: open ``TimedScheduler(store=...)``, add keyed durable jobs in
  small concurrent batches and append ``ack <key> <delivery> <due µs>`` to
  the ack file once each add has returned; then serve until killed.
* ``serve``: add nothing; serve until no job is pending or running, then
  leave ``async with`` (exit 0).
* ``schedule``: add (if ``add_schedule``) the durable schedule ``tick``,
  ``Every(0.2 s)``, and ack it; then serve until killed.
* ``schedule-serve``: serve until this process has run ``runs`` fires.
* ``hold``: open the store, add one job due in an hour, serve until killed.
* ``probe``: try to open the store; print what happened as JSON.

Every job appends ``start <key> <attempt> <start ns> <scheduled µs>
<context started µs> <pid>`` to the journal when it starts and ``end <key>
<attempt> <pid>`` when it ends, one ``write`` (``O_APPEND``) and ``fsync``
per line. All times come from one wall clock shared by every process: the
system-wide monotonic clock plus a constant the test passes in, so that
"no job starts early" is exact (the real wall clock slews under NTP, and a
scheduler keeps its wall-to-loop offset within a millisecond).
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import anyio

from aioscheduler import (
    Every,
    SQLiteStore,
    StoreLocked,
    TimedScheduler,
    current_job,
    durable,
)

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

#: wall time minus the monotonic clock, in ns: set from the config.
_wall_offset_ns = 0
_journal_fd = -1
_runs_here = 0
_runs_wanted = 0
_enough_runs: anyio.Event | None = None


def steady_ns() -> int:
    """The shared wall clock, in ns (what the jobs write in the journal)."""
    return time.monotonic_ns() + _wall_offset_ns


def steady_wall_clock() -> float:
    """The same clock in POSIX seconds: the schedulers' ``wall_clock``."""
    return steady_ns() / 1e9


def micros(when: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (exact)."""
    return (when - _EPOCH) // timedelta(microseconds=1)


def append_line(fd: int, line: str) -> None:
    """Append *line* with one write, then fsync: it survives a SIGKILL whole."""
    data = line.encode()
    if os.write(fd, data) != len(data):  # pragma: no cover - a full disk
        raise OSError(f"short write of {line!r}")
    os.fsync(fd)


def open_append(path: str) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)


async def _run(hold: float) -> None:
    global _runs_here
    job = current_job()
    start = steady_ns()
    append_line(
        _journal_fd,
        f"start {job.key} {job.attempt} {start} {micros(job.scheduled)} "
        f"{micros(job.started)} {os.getpid()}\n",
    )
    await anyio.sleep(hold)
    append_line(_journal_fd, f"end {job.key} {job.attempt} {os.getpid()}\n")
    _runs_here += 1
    if _enough_runs is not None and _runs_here >= _runs_wanted:
        _enough_runs.set()


@durable("crash.at_least_once")
async def at_least_once_job(hold: float) -> None:
    await _run(hold)


@durable("crash.at_most_once", delivery="at_most_once")
async def at_most_once_job(hold: float) -> None:
    await _run(hold)


@durable("crash.tick", delivery="at_most_once")
async def tick(hold: float) -> None:
    await _run(hold)


def make_store(config: dict[str, Any]) -> SQLiteStore:
    keep = config.get("keep_results")
    return SQLiteStore(config["db"], keep_results=keep)


def scheduler(store: SQLiteStore) -> TimedScheduler:
    return TimedScheduler(store=store, wall_clock=steady_wall_clock)


async def add_jobs(s: TimedScheduler, config: dict[str, Any], ack: int) -> None:
    """Add ``config["jobs"]`` keyed jobs, a few at a time (group commit)."""
    rng = random.Random(config["seed"] * 7919 + 3)
    count: int = config["jobs"]

    async def add_one(
        index: int, at_most_once: bool, delay: float, hold: float
    ) -> None:
        key = f"job-{index}"
        fn = at_most_once_job if at_most_once else at_least_once_job
        if delay == 0:  # due at once: overdue when the feeder claims it
            await s.durable_start_after(0, fn, hold, key=key)
            due = -1
        else:
            when = s.now() + timedelta(seconds=delay)
            await s.durable_start_at(when, fn, hold, key=key)
            due = micros(when)
        delivery = "at_most_once" if at_most_once else "at_least_once"
        append_line(ack, f"ack {key} {delivery} {due}\n")

    index = 0
    while index < count:
        size = min(rng.randint(1, 8), count - index)
        async with anyio.create_task_group() as group:
            for _ in range(size):
                at_most_once = rng.random() < 0.5
                delay = 0.0 if rng.random() < 0.25 else rng.uniform(0.005, 1.0)
                hold = rng.uniform(0.0, 0.15)
                group.start_soon(add_one, index, at_most_once, delay, hold)
                index += 1
        await anyio.sleep(rng.uniform(0.0, 0.08))
    append_line(ack, "added-all\n")


async def live_jobs(store: SQLiteStore) -> int:
    counts = (await store.stats())["counts"]
    return int(counts.get("pending", 0)) + int(counts.get("running", 0))


async def main(config: dict[str, Any]) -> None:
    global _journal_fd, _wall_offset_ns, _enough_runs, _runs_wanted
    _wall_offset_ns = config["wall_offset_ns"]
    _runs_wanted = config.get("runs", 0)
    enough = _enough_runs = anyio.Event()
    mode = config["mode"]
    if "journal" in config:
        _journal_fd = open_append(config["journal"])
    ack = open_append(config["ack"]) if "ack" in config else -1
    store = make_store(config)
    if mode == "probe":
        try:
            async with scheduler(store):
                record = await store.get_job("held")
                state = None if record is None else record.state
                print(json.dumps({"opened": True, "held": state}))
        except StoreLocked as exc:
            print(json.dumps({"locked": str(exc), "type": type(exc).__name__}))
        return
    async with scheduler(store) as s:
        append_line(ack, f"ready {os.getpid()}\n")
        if mode == "add":
            await add_jobs(s, config, ack)
            await anyio.sleep_forever()
        elif mode == "serve":
            while True:  # a poll: the store has no "all done" event
                if not await live_jobs(store):
                    break
                await anyio.sleep(0.02)
        elif mode == "schedule":
            if config["add_schedule"]:
                await s.add_durable_schedule(
                    Every(0.2), tick, config["hold"], id="tick"
                )
                append_line(ack, "ack-schedule tick\n")
            await anyio.sleep_forever()
        elif mode == "schedule-serve":
            if await store.get_schedule("tick") is None:
                append_line(ack, "no-schedule\n")
                return
            await enough.wait()
        elif mode == "hold":
            await s.durable_start_after(3600, at_least_once_job, 0.0, key="held")
            append_line(ack, "holding\n")
            await anyio.sleep_forever()
        else:
            raise ValueError(f"unknown mode {mode!r}")
    append_line(ack, "served\n")


if __name__ == "__main__":
    settings = json.loads(sys.argv[1])
    anyio.run(main, settings, backend=settings["loop"])
