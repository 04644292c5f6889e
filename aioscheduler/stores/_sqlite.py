"""The embedded store: durable jobs in one SQLite file, for one process.

One connection, used from one worker thread at a time (``anyio.to_thread``
with a limiter of one), so the same code runs on asyncio and Trio. Each
store call is one thread hop and one transaction. WAL journal;
``synchronous=FULL`` by default, so a committed job survives a power loss,
not only a crash. A lock on a sidecar file (``jobs.db.lock``) keeps a second
process off the same database: two runners on one SQLite file would both run
every job.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import anyio
import anyio.to_thread

from aioscheduler._exceptions import StoreError, StoreLocked

from ._common import (
    JOB_COLUMNS,
    LIVE,
    PURGE_EVERY_US,
    SCHEDULE_COLUMNS,
    job_record,
    keep_micros,
    lost_records,
    missed_record,
    new_job_values,
    plan_schedule,
    read_trigger,
    run_values,
    schedule_record,
    stats_dict,
)
from ._interface import (
    AddResult,
    Claim,
    ClaimedJob,
    ClaimToken,
    Finished,
    JobRecord,
    NewJob,
    NewSchedule,
    ScheduleRecord,
)

__all__ = ["SQLiteStore"]

logger = logging.getLogger("aioscheduler")

T = TypeVar("T")

#: The schema this version writes. A database with a higher number was made
#: by a newer aioscheduler and is refused; a lower one is migrated.
SCHEMA_VERSION: Final = 1

# MIGRATIONS[n] takes a database from schema n to n + 1.
MIGRATIONS: Final[tuple[str, ...]] = (
    """
    CREATE TABLE aioscheduler_jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL UNIQUE,
        function TEXT NOT NULL,
        arguments TEXT NOT NULL,
        due INTEGER NOT NULL,
        ready INTEGER NOT NULL,
        state TEXT NOT NULL,
        attempt INTEGER NOT NULL DEFAULT 0,
        delivery TEXT NOT NULL,
        misfire_grace REAL,
        schedule_id TEXT,
        lease_owner TEXT,
        lease_until INTEGER,
        created INTEGER NOT NULL,
        finished INTEGER,
        result TEXT,
        error TEXT
    );
    CREATE INDEX aioscheduler_jobs_ready ON aioscheduler_jobs (ready, id)
        WHERE state = 'pending';
    CREATE INDEX aioscheduler_jobs_lease ON aioscheduler_jobs (lease_until)
        WHERE state = 'running';
    CREATE INDEX aioscheduler_jobs_finished ON aioscheduler_jobs (finished)
        WHERE finished IS NOT NULL;
    CREATE INDEX aioscheduler_jobs_schedule ON aioscheduler_jobs (schedule_id)
        WHERE schedule_id IS NOT NULL;
    CREATE TABLE aioscheduler_schedules (
        id TEXT PRIMARY KEY,
        trigger TEXT NOT NULL,
        given TEXT NOT NULL,
        function TEXT NOT NULL,
        arguments TEXT NOT NULL,
        delivery TEXT NOT NULL,
        misfire_grace REAL,
        coalesce TEXT NOT NULL,
        max_catchup INTEGER NOT NULL,
        overlap TEXT NOT NULL,
        jitter REAL,
        max_runs INTEGER,
        next_fire INTEGER,
        high_water INTEGER,
        runs INTEGER NOT NULL DEFAULT 0,
        missed INTEGER NOT NULL DEFAULT 0,
        skipped INTEGER NOT NULL DEFAULT 0,
        created INTEGER NOT NULL,
        error TEXT
    );
    CREATE INDEX aioscheduler_schedules_next ON aioscheduler_schedules (next_fire)
        WHERE next_fire IS NOT NULL;
    """,
)

_SYNCHRONOUS: Final = ("OFF", "NORMAL", "FULL", "EXTRA")


class SQLiteStore:
    """Durable jobs and schedules in a SQLite file, for one process.

    The default store: ``TimedScheduler(store="jobs.db")`` makes one. Pass an
    instance to choose its settings::

        store = SQLiteStore("jobs.db", synchronous="NORMAL", keep_results=3600)
        async with TimedScheduler(store=store) as scheduler:
            await scheduler.durable_start_after(60, send_reminder, 42)

    :param path: the database file (created if missing, readable by its
        owner only; so are its ``-wal`` and ``-shm`` files)
    :param synchronous: SQLite's ``synchronous`` setting: ``"FULL"`` (the
        default) makes every commit survive a power loss; ``"NORMAL"`` is
        faster and survives a crash of the process, not of the machine
    :param keep_results: keep a finished job's row (and its JSON result)
        this long (seconds or ``timedelta``); ``None`` deletes it at once
    :param keep_failed: keep failed, missed and lost jobs this long (default
        7 days), for ``python -m aioscheduler jobs``; ``None``: delete at once
    :raises StoreLocked: from :meth:`open`, if another process has the file open
    :raises StoreError: from :meth:`open`, if the file cannot be created or
        is not an aioscheduler database, or was made by a newer version

    .. versionadded:: 2.0
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "FULL",
        keep_results: float | timedelta | None = None,
        keep_failed: float | timedelta | None = timedelta(days=7),
    ) -> None:
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"path must be a str or os.PathLike, not {path!r}")
        if synchronous not in _SYNCHRONOUS:
            raise ValueError(
                f"synchronous must be one of {', '.join(_SYNCHRONOUS)}, "
                f"not {synchronous!r}"
            )
        self._path = Path(path)
        self._synchronous = synchronous
        self._keep_done_us, self._keep_failed_us = keep_micros(
            keep_results, keep_failed
        )
        self._con: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self._limiter: anyio.CapacityLimiter | None = None
        self._users = 0
        self._lost_at_open: list[JobRecord] = []
        self._purged_at = 0

    @property
    def keeps_results(self) -> bool:
        """Whether finished jobs' results are kept (``keep_results`` is set)."""
        return self._keep_done_us is not None

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self._path)!r})"

    # -- the thread hop -----------------------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run *fn* in the store's thread: one hop, one transaction."""
        limiter = self._limiter
        if limiter is None or self._con is None:
            raise StoreError(f"{self!r} is not open")
        return await self._hop(fn, *args)

    async def _hop(self, fn: Callable[..., T], *args: Any) -> T:
        """Run *fn* in a worker thread, one at a time (the limiter of one)."""
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    # -- opening ------------------------------------------------------------------

    async def open(self) -> None:
        """Open the database: lock it, create or migrate the schema, and
        resolve the leases of jobs that were running when the last process
        died (it must have died: this one holds the lock).

        Opened once per user: a Manager's schedulers share one store, and the
        last :meth:`close` closes it.
        """
        self._users += 1
        if self._users > 1:
            return
        self._limiter = anyio.CapacityLimiter(1)
        try:
            await self._hop(self._open_sync)
        except BaseException:
            self._users = 0
            self._limiter = None
            raise

    async def open_for_inspection(self) -> None:
        """Open without the process lock, to look at (and cancel) jobs while
        a scheduler runs on the file: what ``python -m aioscheduler jobs``
        does. Runs no job and resolves no lease."""
        self._users += 1
        if self._users > 1:
            return
        self._limiter = anyio.CapacityLimiter(1)
        try:
            await anyio.to_thread.run_sync(self._open_sync, True, limiter=self._limiter)
        except BaseException:
            self._users = 0
            self._limiter = None
            raise

    def _open_sync(self, inspect: bool = False) -> None:
        path = self._path
        if not inspect:
            self._lock_fd = _lock(path)
        try:
            try:
                # Created by us with owner-only permissions; SQLite gives the
                # -wal and -shm files the same permissions as the database.
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
                os.close(fd)
            except OSError as exc:
                raise StoreError(
                    f"cannot create or open the store {str(path)!r}: "
                    f"{exc.strerror or exc}"
                ) from None
            con = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=10
            )
            try:
                self._setup(con, inspect)
            except sqlite3.DatabaseError as exc:
                con.close()
                raise StoreError(
                    f"{str(path)!r} is not a usable aioscheduler store: {exc}"
                ) from None
            except BaseException:
                con.close()
                raise
            self._con = con
        except BaseException:
            self._unlock()
            raise

    def _setup(self, con: sqlite3.Connection, inspect: bool) -> None:
        if inspect:
            # Read before any write: looking at a file must not change it
            # (no WAL switch, no meta table in a database that is not ours).
            self._check_inspectable(con)
        mode = con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.DatabaseError(f"cannot use a write-ahead log (got {mode})")
        con.execute(f"PRAGMA synchronous={self._synchronous}")
        if inspect:
            return
        version = self._schema_version(con)
        self._refuse_newer(version)
        for step in range(version, SCHEMA_VERSION):
            con.execute("BEGIN IMMEDIATE")
            try:
                for statement in MIGRATIONS[step].split(";"):
                    if statement.strip():
                        con.execute(statement)
                con.execute(
                    "INSERT OR REPLACE INTO aioscheduler_meta (name, value) "
                    "VALUES ('schema_version', ?)",
                    (str(step + 1),),
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        self._resolve_dead_leases(con)

    def _refuse_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{str(self._path)!r} was made by a newer aioscheduler (schema "
                f"version {version}; this version reads up to {SCHEMA_VERSION}); "
                "upgrade aioscheduler to use it"
            )

    def _check_inspectable(self, con: sqlite3.Connection) -> None:
        """Refuse, without writing, a file that is not a current store."""
        if (
            con.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' "
                "AND name = 'aioscheduler_meta'"
            ).fetchone()
            is None
        ):
            raise StoreError(
                f"{str(self._path)!r} is not an aioscheduler store (a SQLite "
                "database without aioscheduler's tables)"
            )
        row = con.execute(
            "SELECT value FROM aioscheduler_meta WHERE name = 'schema_version'"
        ).fetchone()
        version = 0 if row is None else int(row[0])
        self._refuse_newer(version)
        if version < SCHEMA_VERSION:
            raise StoreError(
                f"{str(self._path)!r} has schema version {version}; open it "
                "with a scheduler once to migrate it"
            )

    def _schema_version(self, con: sqlite3.Connection) -> int:
        con.execute(
            "CREATE TABLE IF NOT EXISTS aioscheduler_meta "
            "(name TEXT PRIMARY KEY, value TEXT NOT NULL)"
        )
        row = con.execute(
            "SELECT value FROM aioscheduler_meta WHERE name = 'schema_version'"
        ).fetchone()
        return 0 if row is None else int(row[0])

    def _resolve_dead_leases(self, con: sqlite3.Connection) -> None:
        """Jobs running when the last process died: by their delivery."""
        now = _now_us()
        con.execute("BEGIN IMMEDIATE")
        try:
            con.execute(
                "UPDATE aioscheduler_jobs SET state = 'pending', lease_owner = NULL, "
                "lease_until = NULL WHERE state = 'running' "
                "AND delivery = 'at_least_once'"
            )
            self._lost_at_open = self._mark_lost(
                con, "state = 'running' AND delivery = 'at_most_once'", (), now
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def _mark_lost(
        self, con: sqlite3.Connection, where: str, params: tuple[Any, ...], now: int
    ) -> list[JobRecord]:
        rows = con.execute(
            f"SELECT {JOB_COLUMNS} FROM aioscheduler_jobs WHERE {where}", params
        ).fetchall()
        if not rows:
            return []
        lost = [job_record(row) for row in rows]
        error = "its worker died while it was running (delivery at_most_once)"
        for record in lost:
            self._end_row(con, record.key, "lost", None, error, now)
        return lost_records(lost, error)

    async def close(self) -> None:
        """Close the database (the last user closes it); idempotent."""
        if self._users == 0:
            return
        self._users -= 1
        if self._users:
            return
        con, self._con = self._con, None
        if con is None:
            self._unlock()
            self._limiter = None
            return

        def close_sync() -> None:
            try:
                con.close()
            finally:
                self._unlock()

        try:
            with anyio.CancelScope(shield=True):
                await self._hop(close_sync)
        finally:
            self._limiter = None

    def _unlock(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)  # releases the lock

    # -- transactions -------------------------------------------------------------

    def _transaction(self, body: Callable[[sqlite3.Connection], T]) -> T:
        con = self._con
        if con is None:
            raise StoreError(f"{self!r} is not open")
        try:
            con.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"{self!r}: cannot begin a transaction: {exc}") from exc
        try:
            result = body(con)
            con.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                con.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"{self!r}: {exc}; nothing was committed") from exc
            raise
        return result

    # -- adding -------------------------------------------------------------------

    async def add(self, jobs: Sequence[NewJob]) -> list[AddResult]:
        """Commit *jobs* in one transaction (see :class:`JobStore`)."""
        return await self._call(self._transaction, lambda con: self._add(con, jobs))

    def _add(self, con: sqlite3.Connection, jobs: Sequence[NewJob]) -> list[AddResult]:
        now = _now_us()
        results: list[AddResult] = []
        insert = (
            "INSERT INTO aioscheduler_jobs (key, function, arguments, due, ready, "
            "state, delivery, misfire_grace, schedule_id, created) "
            "VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING"
        )
        for job in jobs:
            values = new_job_values(job, now)
            replaced = False
            if job.replace:
                # A running job is not replaced: it would run on beside its
                # replacement, and its outcome would land on the new row.
                row = con.execute(
                    "DELETE FROM aioscheduler_jobs WHERE key = ? "
                    "AND state != 'running' RETURNING state",
                    (job.key,),
                ).fetchone()
                replaced = row is not None and row[0] in LIVE
            if con.execute(insert, values).rowcount:
                results.append("replaced" if replaced else "added")
                continue
            # The key is taken: by a live job (kept), or by a finished one
            # that is only kept for the record (replaced by the new job).
            row = con.execute(
                "SELECT state FROM aioscheduler_jobs WHERE key = ?", (job.key,)
            ).fetchone()
            if row is not None and row[0] in LIVE:
                results.append("exists")
                continue
            con.execute("DELETE FROM aioscheduler_jobs WHERE key = ?", (job.key,))
            con.execute(insert, values)
            results.append("added")
        return results

    async def add_schedule(self, schedule: NewSchedule) -> AddResult:
        """Commit a durable schedule; see :class:`JobStore`."""
        return await self._call(
            self._transaction, lambda con: self._add_schedule(con, schedule)
        )

    def _add_schedule(self, con: sqlite3.Connection, s: NewSchedule) -> AddResult:
        exists = con.execute(
            "SELECT given FROM aioscheduler_schedules WHERE id = ?", (s.id,)
        ).fetchone()
        if exists is not None and not s.replace:
            return "exists"
        values = (
            s.function,
            s.arguments,
            s.delivery,
            s.misfire_grace,
            s.coalesce,
            s.max_catchup,
            s.overlap,
            s.jitter,
            s.max_runs,
        )
        if exists is not None:
            if exists[0] == s.given:
                # An equal trigger keeps its progress: no fire time twice.
                con.execute(
                    "UPDATE aioscheduler_schedules SET function = ?, arguments = ?, "
                    "delivery = ?, misfire_grace = ?, coalesce = ?, max_catchup = ?, "
                    "overlap = ?, jitter = ?, max_runs = ?, error = NULL WHERE id = ?",
                    (*values, s.id),
                )
                return "replaced"
            con.execute("DELETE FROM aioscheduler_schedules WHERE id = ?", (s.id,))
            con.execute(
                "DELETE FROM aioscheduler_jobs WHERE schedule_id = ? "
                "AND state = 'pending'",
                (s.id,),
            )
        con.execute(
            "INSERT INTO aioscheduler_schedules (id, trigger, given, function, "
            "arguments, delivery, misfire_grace, coalesce, max_catchup, overlap, "
            "jitter, max_runs, next_fire, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?, ?, ?, ?, ?)",
            (s.id, s.trigger, s.given, *values, s.next_fire, _now_us()),
        )
        return "replaced" if exists is not None else "added"

    async def remove_schedule(self, id: str) -> bool:
        """Delete a durable schedule and its runs not yet started."""

        def body(con: sqlite3.Connection) -> bool:
            gone = con.execute(
                "DELETE FROM aioscheduler_schedules WHERE id = ?", (id,)
            ).rowcount
            con.execute(
                "DELETE FROM aioscheduler_jobs WHERE schedule_id = ? "
                "AND state = 'pending'",
                (id,),
            )
            return bool(gone)

        return await self._call(self._transaction, body)

    async def cancel(self, key: str) -> bool:
        """Delete the pending job *key*; ``False`` if none is pending."""
        return await self._call(
            self._transaction,
            lambda con: bool(
                con.execute(
                    "DELETE FROM aioscheduler_jobs WHERE key = ? AND state = 'pending'",
                    (key,),
                ).rowcount
            ),
        )

    # -- claiming -----------------------------------------------------------------

    async def claim(
        self,
        owner: str,
        *,
        now: int,
        limit: int,
        lease: float,
        finished: Sequence[Finished] = (),
    ) -> Claim:
        """Record *finished* and claim due jobs, in one transaction."""
        return await self._call(
            self._transaction,
            lambda con: self._claim(con, owner, now, limit, lease, finished),
        )

    def _claim(
        self,
        con: sqlite3.Connection,
        owner: str,
        now: int,
        limit: int,
        lease: float,
        finished: Sequence[Finished],
    ) -> Claim:
        rejected = [
            r.token
            for r, ok in zip(finished, self._finish(con, finished, now), strict=False)
            if ok is False
        ]
        # One process per file (the lock): a lease can only have been left by
        # a process that died, and open() resolved those. Leases held by this
        # process are never expired here, even if a job blocked the event
        # loop past its lease: that would run it twice.
        lost, self._lost_at_open = self._lost_at_open, []
        schedule_missed = self._fire_schedules(con, now)
        if now - self._purged_at > PURGE_EVERY_US:
            self._purge(con, now)
        jobs: list[ClaimedJob] = []
        missed: list[JobRecord] = []
        if limit > 0:
            rows = con.execute(
                "UPDATE aioscheduler_jobs SET state = 'running', lease_owner = ?, "
                "lease_until = ?, attempt = attempt + 1 WHERE id IN (SELECT id FROM "
                "aioscheduler_jobs WHERE state = 'pending' AND ready <= ? "
                "ORDER BY ready, id LIMIT ?) RETURNING id, key, function, arguments, "
                "due, ready, attempt, delivery, misfire_grace, schedule_id",
                (owner, now + round(lease * 1e6), now, limit),
            ).fetchall()
            rows.sort(key=lambda row: (row[5], row[0]))
            for row in rows:
                grace = row[8]
                if grace is not None and now - row[4] > grace * 1e6 + 2:
                    missed.append(self._miss(con, row, now))
                    continue
                jobs.append(
                    ClaimedJob(
                        ClaimToken(row[0], owner, row[6]),
                        row[1],
                        row[2],
                        row[3],
                        row[4],
                        row[7],
                        row[9],
                    )
                )
        return Claim(
            jobs,
            now,
            self._next_due(con),
            missed=missed,
            lost=lost,
            rejected=rejected,
            schedule_missed=schedule_missed,
        )

    def _miss(self, con: sqlite3.Connection, row: Any, now: int) -> JobRecord:
        record = missed_record(row, now)
        con.execute(
            "UPDATE aioscheduler_jobs SET attempt = attempt - 1 WHERE id = ?", (row[0],)
        )
        self._end_row(con, row[1], "missed", None, record.error, now)
        return record

    def _end_row(
        self,
        con: sqlite3.Connection,
        key: str,
        state: str,
        result: str | None,
        error: str | None,
        now: int,
    ) -> None:
        keep = self._keep_done_us if state == "done" else self._keep_failed_us
        if keep is None:
            con.execute("DELETE FROM aioscheduler_jobs WHERE key = ?", (key,))
        else:
            con.execute(
                "UPDATE aioscheduler_jobs SET state = ?, finished = ?, result = ?, "
                "error = ?, lease_owner = NULL, lease_until = NULL WHERE key = ?",
                (state, now, result, error, key),
            )

    def _fire_schedules(self, con: sqlite3.Connection, now: int) -> dict[str, int]:
        """Add the runs of due durable schedules; return how many each missed."""
        rows = con.execute(
            f"SELECT {SCHEDULE_COLUMNS} FROM aioscheduler_schedules "
            "WHERE next_fire IS NOT NULL AND next_fire <= ?",
            (now,),
        ).fetchall()
        missed_by_id: dict[str, int] = {}
        for row in rows:
            s = schedule_record(row)
            trigger = read_trigger(s)
            if isinstance(trigger, str):
                con.execute(
                    "UPDATE aioscheduler_schedules SET next_fire = NULL, error = ? "
                    "WHERE id = ?",
                    (trigger, s.id),
                )
                continue
            plan = plan_schedule(s, trigger, now)
            skipped = 0
            fires = plan.runs
            if fires and s.overlap == "skip":
                busy = con.execute(
                    "SELECT 1 FROM aioscheduler_jobs WHERE schedule_id = ? "
                    "AND state IN ('pending', 'running') LIMIT 1",
                    (s.id,),
                ).fetchone()
                if busy is not None:
                    skipped, fires = len(fires), []
            for fire, due in fires:
                con.execute(
                    "INSERT INTO aioscheduler_jobs (key, function, arguments, due, "
                    "ready, state, delivery, misfire_grace, schedule_id, created) "
                    "VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?) "
                    "ON CONFLICT (key) DO NOTHING",
                    run_values(s, fire, due, now),
                )
            con.execute(
                "UPDATE aioscheduler_schedules SET next_fire = ?, high_water = ?, "
                "runs = runs + ?, missed = missed + ?, skipped = skipped + ? "
                "WHERE id = ?",
                (
                    plan.next_fire,
                    plan.high_water,
                    len(fires),
                    plan.missed,
                    skipped,
                    s.id,
                ),
            )
            if plan.missed:
                missed_by_id[s.id] = plan.missed
        return missed_by_id

    def _purge(self, con: sqlite3.Connection, now: int) -> None:
        self._purged_at = now
        for states, keep in (
            (("done",), self._keep_done_us),
            (("failed", "missed", "lost"), self._keep_failed_us),
        ):
            marks = ", ".join("?" * len(states))
            con.execute(
                "DELETE FROM aioscheduler_jobs WHERE finished IS NOT NULL "
                f"AND finished < ? AND state IN ({marks})",
                (now - (keep or 0), *states),
            )

    def _next_due(self, con: sqlite3.Connection) -> int | None:
        job = con.execute(
            "SELECT MIN(ready) FROM aioscheduler_jobs WHERE state = 'pending'"
        ).fetchone()[0]
        fire = con.execute(
            "SELECT MIN(next_fire) FROM aioscheduler_schedules "
            "WHERE next_fire IS NOT NULL"
        ).fetchone()[0]
        if job is None or (fire is not None and fire < job):
            return fire  # type: ignore[no-any-return]
        return job  # type: ignore[no-any-return]

    async def next_due(self) -> int | None:
        """The earliest ready time of a pending job or a durable schedule."""
        con = self._con
        if con is None:
            raise StoreError(f"{self!r} is not open")
        return await self._call(self._next_due, con)

    # -- after a claim: fenced on (id, owner, attempt) ------------------------------

    async def extend(
        self, tokens: Sequence[ClaimToken], *, now: int, lease: float
    ) -> set[ClaimToken]:
        """Extend the leases of *tokens*; return those still held."""

        def body(con: sqlite3.Connection) -> set[ClaimToken]:
            until = now + round(lease * 1e6)
            held: set[ClaimToken] = set()
            for token in tokens:
                if con.execute(
                    "UPDATE aioscheduler_jobs SET lease_until = ? WHERE id = ? "
                    "AND lease_owner = ? AND attempt = ? AND state = 'running'",
                    (until, token.id, token.owner, token.attempt),
                ).rowcount:
                    held.add(token)
            return held

        return await self._call(self._transaction, body)

    async def finish(self, results: Sequence[Finished], *, now: int) -> list[bool]:
        """Record how claimed jobs ended; ``False`` where the lease was lost."""
        return await self._call(
            self._transaction, lambda con: self._finish(con, results, now)
        )

    def _finish(
        self, con: sqlite3.Connection, results: Sequence[Finished], now: int
    ) -> list[bool]:
        held: list[bool] = []
        for r in results:
            t = r.token
            fence = (t.id, t.owner, t.attempt)
            where = "id = ? AND lease_owner = ? AND attempt = ? AND state = 'running'"
            state = r.state
            keep = self._keep_done_us if state == "done" else self._keep_failed_us
            if state == "released":
                count = con.execute(
                    "UPDATE aioscheduler_jobs SET state = 'pending', lease_owner = "
                    f"NULL, lease_until = NULL, attempt = attempt - 1 WHERE {where}",
                    fence,
                ).rowcount
            elif state == "interrupted":
                count = con.execute(
                    "UPDATE aioscheduler_jobs SET state = 'pending', lease_owner = "
                    f"NULL, lease_until = NULL WHERE {where}",
                    fence,
                ).rowcount
            elif state == "cancelled" or keep is None:
                count = con.execute(
                    f"DELETE FROM aioscheduler_jobs WHERE {where}", fence
                ).rowcount
            else:
                count = con.execute(
                    "UPDATE aioscheduler_jobs SET state = ?, finished = ?, result = ?, "
                    f"error = ?, lease_owner = NULL, lease_until = NULL WHERE {where}",
                    (state, now, r.result, r.error, *fence),
                ).rowcount
            held.append(bool(count))
        return held

    async def release(
        self, token: ClaimToken, *, ready: int, count_attempt: bool
    ) -> bool:
        """Give a claimed job back, claimable again from *ready*."""

        def body(con: sqlite3.Connection) -> bool:
            return bool(
                con.execute(
                    "UPDATE aioscheduler_jobs SET state = 'pending', "
                    "lease_owner = NULL, lease_until = NULL, ready = ?, "
                    "attempt = attempt - ? WHERE id = ? "
                    "AND lease_owner = ? AND attempt = ? AND state = 'running'",
                    (
                        ready,
                        0 if count_attempt else 1,
                        token.id,
                        token.owner,
                        token.attempt,
                    ),
                ).rowcount
            )

        return await self._call(self._transaction, body)

    # -- looking inside -------------------------------------------------------------

    async def get_job(self, key: str) -> JobRecord | None:
        """The job with *key*, live or kept."""

        def body(con: sqlite3.Connection) -> JobRecord | None:
            row = con.execute(
                f"SELECT {JOB_COLUMNS} FROM aioscheduler_jobs WHERE key = ?", (key,)
            ).fetchone()
            return None if row is None else job_record(row)

        return await self._call(self._read, body)

    async def get_schedule(self, id: str) -> ScheduleRecord | None:
        """The durable schedule *id*."""

        def body(con: sqlite3.Connection) -> ScheduleRecord | None:
            row = con.execute(
                f"SELECT {SCHEDULE_COLUMNS} FROM aioscheduler_schedules WHERE id = ?",
                (id,),
            ).fetchone()
            return None if row is None else schedule_record(row)

        return await self._call(self._read, body)

    async def list_jobs(
        self,
        *,
        states: Sequence[str] = (),
        due_from: int | None = None,
        due_to: int | None = None,
        key_prefix: str | None = None,
        limit: int | None = 100,
    ) -> list[JobRecord]:
        """Jobs in due order, filtered (for the command line and tests)."""
        where: list[str] = []
        params: list[Any] = []
        if states:
            where.append(f"state IN ({', '.join('?' * len(states))})")
            params += states
        if due_from is not None:
            where.append("due >= ?")
            params.append(due_from)
        if due_to is not None:
            where.append("due < ?")
            params.append(due_to)
        if key_prefix:
            # A range, not LIKE: the prefix is data, with no wildcards.
            where.append("key >= ? AND key < ?")
            params += [key_prefix, key_prefix + "\U0010ffff"]
        sql = f"SELECT {JOB_COLUMNS} FROM aioscheduler_jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY due, id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)

        def body(con: sqlite3.Connection) -> list[JobRecord]:
            return [job_record(row) for row in con.execute(sql, params)]

        return await self._call(self._read, body)

    async def list_schedules(self) -> list[ScheduleRecord]:
        """Every durable schedule, by id."""

        def body(con: sqlite3.Connection) -> list[ScheduleRecord]:
            return [
                schedule_record(row)
                for row in con.execute(
                    f"SELECT {SCHEDULE_COLUMNS} FROM aioscheduler_schedules ORDER BY id"
                )
            ]

        return await self._call(self._read, body)

    async def stats(self) -> dict[str, Any]:
        """Counts by state, the next due time, the oldest overdue job."""

        def body(con: sqlite3.Connection) -> dict[str, Any]:
            counts = dict(
                con.execute(
                    "SELECT state, COUNT(*) FROM aioscheduler_jobs GROUP BY state"
                ).fetchall()
            )
            now = _now_us()
            oldest = con.execute(
                "SELECT MIN(ready) FROM aioscheduler_jobs WHERE state = 'pending'"
            ).fetchone()[0]
            schedules = con.execute(
                "SELECT COUNT(*) FROM aioscheduler_schedules"
            ).fetchone()[0]
            return stats_dict(counts, schedules, self._next_due(con), oldest, now)

        return await self._call(self._read, body)

    def _read(self, body: Callable[[sqlite3.Connection], T]) -> T:
        con = self._con
        if con is None:
            raise StoreError(f"{self!r} is not open")
        try:
            return body(con)
        except sqlite3.Error as exc:
            raise StoreError(f"{self!r}: {exc}") from exc


def _now_us() -> int:
    return time.time_ns() // 1000


def _lock(path: Path) -> int:
    """Take the store's process lock (a sidecar file); return its descriptor."""
    lock_path = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(
            f"cannot create the store's lock file {str(lock_path)!r}: "
            f"{exc.strerror or exc}"
        ) from None
    try:
        _try_lock(fd)
    except OSError:
        where = "another process"
        with contextlib.suppress(OSError, ValueError):
            pid = int(os.pread(fd, 32, 0).decode().strip())
            where = (
                "this process already (another SQLiteStore on the same file; "
                "share one store object instead)"
                if pid == os.getpid()
                else f"another process (pid {pid})"
            )
        os.close(fd)
        raise StoreLocked(
            f"the store {str(path)!r} is open in {where}: one "
            "process per SQLite store, or every process would run every job; "
            "use a PostgreSQL store to share jobs between processes"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


if sys.platform == "win32":  # pragma: no cover - not tested on this platform
    import msvcrt

    def _try_lock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
