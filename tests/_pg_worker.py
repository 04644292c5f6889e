"""The child process of tests/test_postgres_fleet.py: one member of a fleet
of schedulers sharing a real :class:`PostgresStore`.

Run as ``python -m tests._pg_worker '<json config>'``. The config names the
mode, the database, the schema and the files:

* ``serve``: open ``TimedScheduler(store=PostgresStore(...))`` and serve
  until the ``stop`` file exists, then leave ``async with`` (which waits for
  the running jobs) and exit 0.
* ``add``: add the jobs listed in the ``spec`` file (``[key, delivery,
  delay, hold]`` each) with ``scheduler.durable_batch()``, a few thousand per
  commit, then leave (``add-schedule``: add the durable schedule ``tick``,
  ``Every(1 s)``, instead).

Both write ``ready <pid> <store backend pid>`` to the ``ack`` file once the
store is open, and ``added`` / ``served`` when done. The ``aioscheduler``
logger's warnings go to stderr, where the test looks for them.

Every job writes to tables the test made in the store's schema, through a
connection pool of its own (psycopg's synchronous connections, in worker
threads: the same code on asyncio and Trio):

* when it starts, in one transaction: a row ``(key, attempt, pid, started,
  due, hold)`` in ``runs`` (UNIQUE (key, attempt)) with ``started`` read
  from the database server's clock, and, for an ``at_most_once`` job, a row
  in ``once`` (PRIMARY KEY key): a second run of an ``at_most_once`` job,
  or two runs of one attempt, fails loudly (and is written to
  ``violations``, which the test requires to be empty);
* when it ends: ``(key, attempt, pid)`` in ``done`` (UNIQUE (key, attempt)).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sys
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import anyio
import anyio.to_thread
import psycopg

from aioscheduler import Every, PostgresStore, TimedScheduler, current_job, durable

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_DB_NOW: Final = "floor(extract(epoch FROM clock_timestamp()) * 1000000)::bigint"
#: Connections each worker's jobs share.
POOL: Final = 2

_pool: queue.SimpleQueue[psycopg.Connection[Any]] = queue.SimpleQueue()
_limiter: anyio.CapacityLimiter | None = None
_schema = ""


def micros(when: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (exact)."""
    return (when - _EPOCH) // timedelta(microseconds=1)


def append_line(path: str, line: str) -> None:
    """Append *line* with one write (``O_APPEND``), then fsync."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _started(key: str, attempt: int, due: int, hold: float, once: bool) -> None:
    con = _pool.get()
    s = _schema
    try:
        try:
            with con.transaction():
                con.execute(
                    f"INSERT INTO {s}.runs (key, attempt, pid, started, due, hold) "
                    f"VALUES (%s, %s, %s, {_DB_NOW}, %s, %s)",
                    (key, attempt, os.getpid(), due, round(hold * 1e6)),
                )
                if once:
                    con.execute(f"INSERT INTO {s}.once (key) VALUES (%s)", (key,))
        except psycopg.errors.UniqueViolation as exc:
            con.execute(
                f"INSERT INTO {s}.violations (key, attempt, pid, error) "
                "VALUES (%s, %s, %s, %s)",
                (key, attempt, os.getpid(), str(exc)),
            )
            raise
    finally:
        _pool.put(con)


def _ended(key: str, attempt: int) -> None:
    con = _pool.get()
    try:
        con.execute(
            f"INSERT INTO {_schema}.done (key, attempt, pid) VALUES (%s, %s, %s)",
            (key, attempt, os.getpid()),
        )
    finally:
        _pool.put(con)


async def _run(hold: float, once: bool) -> None:
    job = current_job()
    assert _limiter is not None
    await anyio.to_thread.run_sync(
        _started, job.key, job.attempt, micros(job.scheduled), hold, once,
        limiter=_limiter,
    )  # fmt: skip
    await anyio.sleep(hold)
    await anyio.to_thread.run_sync(_ended, job.key, job.attempt, limiter=_limiter)


@durable("pgfleet.at_least_once")
async def at_least_once_job(hold: float) -> None:
    await _run(hold, once=False)


@durable("pgfleet.at_most_once", delivery="at_most_once")
async def at_most_once_job(hold: float) -> None:
    await _run(hold, once=True)


@durable("pgfleet.tick", delivery="at_most_once")
async def tick(hold: float) -> None:
    await _run(hold, once=True)


def make_store(config: dict[str, Any]) -> PostgresStore:
    return PostgresStore(
        config["dsn"],
        schema=config["schema"],
        lease=config["lease"],
        poll_interval=config["poll"],
        # Every row stays, with its final state, for the test to read.
        keep_results=3600,
        keep_failed=3600,
    )


async def add_jobs(s: TimedScheduler, spec_path: str) -> None:
    spec: list[list[Any]] = json.loads(await anyio.Path(spec_path).read_text())
    functions = {"at_least_once": at_least_once_job, "at_most_once": at_most_once_job}
    # One commit: this process's store connection is busy with it, so a job
    # this scheduler claimed meanwhile could not have its lease renewed.
    async with s.durable_batch() as batch:
        for key, delivery, delay, hold in spec:
            batch.start_after(delay, functions[delivery], hold, key=key)


async def main(config: dict[str, Any]) -> None:
    global _limiter, _schema
    _schema = config["schema"]
    _limiter = anyio.CapacityLimiter(POOL)
    for _ in range(POOL):
        _pool.put(psycopg.connect(config["dsn"], autocommit=True))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logging.getLogger("aioscheduler").addHandler(handler)
    mode = config["mode"]
    ack = config["ack"]
    store = make_store(config)
    concurrency = 1 if mode != "serve" else config.get("concurrency", 100)
    async with TimedScheduler(store=store, durable_concurrency=concurrency) as s:
        con = store._con
        assert con is not None
        append_line(ack, f"ready {os.getpid()} {con.info.backend_pid}\n")
        if mode == "serve":
            stop = anyio.Path(config["stop"])
            # The test touches the file (another process: no event to await).
            while not await stop.exists():  # noqa: ASYNC110
                await anyio.sleep(0.05)
        elif mode == "add":
            await add_jobs(s, config["spec"])
        elif mode == "add-schedule":
            await s.add_durable_schedule(Every(1), tick, 0.0, id="tick")
        else:
            raise ValueError(f"unknown mode {mode!r}")
        append_line(ack, "added\n" if mode != "serve" else "leaving\n")
    append_line(ack, "served\n")


if __name__ == "__main__":
    settings = json.loads(sys.argv[1])
    anyio.run(main, settings, backend=settings["loop"])
