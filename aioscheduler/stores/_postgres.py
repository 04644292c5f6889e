"""The shared store: durable jobs in PostgreSQL, for many processes and machines.

No async PostgreSQL driver runs on Trio (psycopg's async connection and
asyncpg need asyncio), so this store uses psycopg 3's *synchronous*
connection in a worker thread (``anyio.to_thread``, a limiter of one per
connection): one code path on asyncio and Trio, one thread hop and one
transaction per store call. ``statement_timeout`` bounds how long a call
(and so a cancelled one) can take.

Due times are judged by the database server's clock, never the caller's:
a claim takes only jobs whose ready time is at or before the server's
``clock_timestamp()`` (microseconds), with ``FOR UPDATE SKIP LOCKED`` so
that concurrent claimers get disjoint jobs and no one waits on another.
Expired leases (of other workers) are resolved inside the claim by each
job's delivery; every change after a claim is fenced on (id, owner,
attempt). A due schedule's row is locked (``SKIP LOCKED``) while its fire
times become job rows keyed ``"<id>@<fire iso>"`` (``ON CONFLICT DO
NOTHING``) and its high-water mark moves on: each fire time runs once across
the fleet.

The connection string (and its password) never appears in a repr, a log
line or an error message; TLS and other connection settings go to psycopg
untouched.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final, TypeVar

import anyio
import anyio.to_thread

from aioscheduler._exceptions import StoreError
from aioscheduler._time import option_seconds

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

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresStore"]

T = TypeVar("T")

logger = logging.getLogger("aioscheduler")

#: The schema this version writes; a higher one is refused, a lower migrated.
SCHEMA_VERSION: Final = 1

# MIGRATIONS[n] takes a schema from version n to n + 1; {s} is the schema.
MIGRATIONS: Final[tuple[str, ...]] = (
    """
    CREATE TABLE {s}.jobs (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        function TEXT NOT NULL,
        arguments TEXT NOT NULL,
        due BIGINT NOT NULL,
        ready BIGINT NOT NULL,
        state TEXT NOT NULL CHECK (state IN
            ('pending', 'running', 'done', 'failed', 'missed', 'lost')),
        attempt INTEGER NOT NULL DEFAULT 0,
        delivery TEXT NOT NULL CHECK (delivery IN
            ('at_least_once', 'at_most_once')),
        misfire_grace DOUBLE PRECISION,
        schedule_id TEXT,
        lease_owner TEXT,
        lease_until BIGINT,
        created BIGINT NOT NULL,
        finished BIGINT,
        result TEXT,
        error TEXT
    );
    CREATE INDEX jobs_ready ON {s}.jobs (ready, id) WHERE state = 'pending';
    CREATE INDEX jobs_lease ON {s}.jobs (lease_until) WHERE state = 'running';
    CREATE INDEX jobs_finished ON {s}.jobs (finished) WHERE finished IS NOT NULL;
    CREATE INDEX jobs_schedule ON {s}.jobs (schedule_id)
        WHERE schedule_id IS NOT NULL;
    CREATE TABLE {s}.schedules (
        id TEXT PRIMARY KEY,
        trigger TEXT NOT NULL,
        given TEXT NOT NULL,
        function TEXT NOT NULL,
        arguments TEXT NOT NULL,
        delivery TEXT NOT NULL,
        misfire_grace DOUBLE PRECISION,
        coalesce TEXT NOT NULL,
        max_catchup INTEGER NOT NULL,
        overlap TEXT NOT NULL,
        jitter DOUBLE PRECISION,
        max_runs INTEGER,
        next_fire BIGINT,
        high_water BIGINT,
        runs INTEGER NOT NULL DEFAULT 0,
        missed INTEGER NOT NULL DEFAULT 0,
        skipped INTEGER NOT NULL DEFAULT 0,
        created BIGINT NOT NULL,
        error TEXT
    );
    CREATE INDEX schedules_next ON {s}.schedules (next_fire)
        WHERE next_fire IS NOT NULL
    """,
)

# A transaction the server chose as a deadlock's victim is run again this
# many times before the error is raised.
_DEADLOCK_RETRIES: Final = 5

_CLAIMED_COLUMNS: Final = (
    "j.id, j.key, j.function, j.arguments, j.due, j.ready, j.attempt, j.delivery, "
    "j.misfire_grace, j.schedule_id"
)
# A batch of tokens (unnest ... AS t(id, owner, attempt)) matched to their rows.
# "(state = 'running') IS TRUE", not "state = 'running'": the same test, but
# one the planner cannot match to the partial index jobs_lease. Otherwise,
# with statistics that count few running rows (taken while idle), it scans
# that index (every running row, and the dead entries of all the jobs run
# since the last vacuum) for each token: 15-65 ms per batch instead of 0.5.
_TOKEN_FENCE: Final = (
    "j.id = t.id AND j.lease_owner = t.owner AND j.attempt = t.attempt "
    "AND (j.state = 'running') IS TRUE"
)
# The server's clock in microseconds since the epoch, never rounded up (a
# claim must not see a time ahead of the server's).
_DB_NOW: Final = "floor(extract(epoch FROM clock_timestamp()) * 1000000)::bigint"
# A notifications wait is at most this long per thread hop, so that close()
# (which waits for the hop) is quick.
_LISTEN_SLICE: Final = 0.25


def _quote(identifier: str) -> str:
    """An SQL identifier, quoted (what ``psycopg.sql.Identifier`` makes)."""
    return '"' + identifier.replace('"', '""') + '"'


def _import_psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise ImportError(
            "PostgresStore needs psycopg 3: pip install 'aioscheduler[postgres]'"
        ) from None
    return psycopg


class PostgresStore:
    """Durable jobs and schedules in PostgreSQL, shared by many processes.

    Every scheduler (in any process, on any machine) given a store on the
    same database and schema shares one set of jobs and schedules: each job
    is claimed by one of them, when it is due by the database server's
    clock. ``TimedScheduler(store="postgresql://...")`` makes one; pass an
    instance to choose its settings::

        store = PostgresStore("postgresql://app@db.internal/app", schema="jobs")
        async with TimedScheduler(store=store) as scheduler:
            await scheduler.durable_start_after(60, send_reminder, 42)

    Needs the ``postgres`` extra (``pip install 'aioscheduler[postgres]'``).

    :param conninfo: a libpq connection string or ``postgresql://`` URL,
        given to psycopg as it is (TLS settings included); never shown in a
        repr, a log line or an error message
    :param schema: the schema of the store's tables, created if missing
        (the role then needs ``CREATE`` on the database; or create it for
        the role beforehand)
    :param keep_results: keep a finished job's row this long (seconds or
        ``timedelta``); ``None`` deletes it at once
    :param keep_failed: keep failed, missed and lost jobs this long (default
        7 days); ``None``: delete at once
    :param poll_interval: how often an idle scheduler looks for jobs that
        other processes added (at most; a ``NOTIFY`` wakes it sooner for
        jobs due within this interval)
    :param statement_timeout: bounds every statement (seconds, default 10;
        keep it at most a third of *lease*, so that a renewal waiting behind
        a slow call still lands in time)
    :param connect_timeout: bounds connecting (seconds)
    :param lease: how long a claimed job is held without renewal (seconds,
        default 30); a worker renews its leases every third of it, and the
        jobs of a worker that stopped renewing (died, stopped, cut off) are
        claimable again, or recorded lost, once it expires

    .. versionadded:: 2.0
    """

    @property
    def expires_leases(self) -> bool:
        """``True``: leases of a live worker can lapse here (other workers
        then claim its jobs), so a worker that cannot renew in time cancels
        its own runs."""
        return True

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str = "aioscheduler",
        keep_results: float | timedelta | None = None,
        keep_failed: float | timedelta | None = timedelta(days=7),
        poll_interval: float | timedelta = 5.0,
        statement_timeout: float | timedelta = 10.0,
        connect_timeout: float | timedelta = 10.0,
        lease: float | timedelta = 30.0,
    ) -> None:
        if not isinstance(conninfo, str):
            raise TypeError(f"conninfo must be a str, not {type(conninfo).__name__}")
        if not isinstance(schema, str):
            raise TypeError(f"schema must be a str, not {type(schema).__name__}")
        if not schema or len(schema.encode()) > 63 or "\x00" in schema:
            raise ValueError(f"schema must be 1 to 63 bytes, got {schema!r}")
        pg = _import_psycopg()
        try:
            params = pg.conninfo.conninfo_to_dict(conninfo)
        except pg.Error:
            # Its message may quote the string, password and all.
            raise ValueError(
                "conninfo is not a valid PostgreSQL connection string "
                "(not shown: it may hold a password)"
            ) from None
        self._conninfo = conninfo
        self._secrets = [conninfo] + [
            str(v) for k, v in params.items() if k == "password" and v
        ]
        self._where = {
            k: str(params[k]) for k in ("host", "port", "dbname") if params.get(k)
        }
        self._schema = schema
        self._s = _quote(schema)
        digest = hashlib.sha256(f"aioscheduler:{schema}".encode()).digest()
        self._lock_key = int.from_bytes(digest[:8], "big", signed=True)
        self._channel = "aioscheduler_" + digest.hex()[:32]
        self._keep_done_us, self._keep_failed_us = keep_micros(
            keep_results, keep_failed
        )
        poll = option_seconds(poll_interval, "poll_interval", allow_none=False)
        assert poll is not None
        if poll <= 0:
            raise ValueError(f"poll_interval must be > 0, got {poll_interval!r}")
        self._poll = poll
        held = option_seconds(lease, "lease", allow_none=False)
        assert held is not None
        if held < 1:
            raise ValueError(f"lease must be at least 1 second, got {lease!r}")
        self.lease = held
        """How long a claim holds a job (seconds); renewed every third of it."""
        timeout = option_seconds(
            statement_timeout, "statement_timeout", allow_none=False
        )
        assert timeout is not None
        self._statement_timeout_ms = max(1, round(timeout * 1000))
        connect = option_seconds(connect_timeout, "connect_timeout", allow_none=False)
        assert connect is not None
        self._connect_timeout = max(1, math.ceil(connect))
        self._con: psycopg.Connection[Any] | None = None
        self._listen_con: psycopg.Connection[Any] | None = None
        self._renew_con: psycopg.Connection[Any] | None = None
        self._renew_limiter: anyio.CapacityLimiter | None = None
        self._limiter: anyio.CapacityLimiter | None = None
        self._listen_limiter: anyio.CapacityLimiter | None = None
        self._listener_busy = False
        # Held by the thread that waits for notifications: a wait abandoned
        # by a cancelled caller goes on in its thread (for at most
        # _LISTEN_SLICE), and close() must not close the connection under it.
        self._listen_lock = threading.Lock()
        self._notified: anyio.Event | None = None
        self._users = 0
        self._purged_at = 0

    @property
    def schema(self) -> str:
        """The schema of the store's tables."""
        return self._schema

    @property
    def poll_interval(self) -> float:
        """At most this long (seconds) before an idle scheduler looks for
        jobs added by other processes."""
        return self._poll

    def __repr__(self) -> str:
        where = ", ".join(f"{k}={v!r}" for k, v in self._where.items())
        return f"PostgresStore({where}{', ' if where else ''}schema={self._schema!r})"

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _error(self, what: str, exc: BaseException) -> StoreError:
        return StoreError(self._redact(f"{self!r}: {what}: {exc}".rstrip()))

    # -- connections and the thread hop -------------------------------------------

    def _connect(self, *, listen: bool = False) -> psycopg.Connection[Any]:
        pg = _import_psycopg()
        try:
            con: psycopg.Connection[Any] = pg.connect(
                self._conninfo,
                autocommit=True,
                connect_timeout=self._connect_timeout,
                application_name="aioscheduler",
            )
        except pg.Error as exc:
            raise self._error("cannot connect", exc) from None
        try:
            con.execute(
                "SELECT set_config('statement_timeout', %s, false)",
                (f"{self._statement_timeout_ms}ms",),
            )
            if listen:
                con.execute(f"LISTEN {_quote(self._channel)}")
        except pg.Error as exc:
            con.close()
            raise self._error("cannot set up the connection", exc) from None
        return con

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run *fn* in the store's thread: one hop, one transaction."""
        if self._limiter is None:
            raise StoreError(f"{self!r} is not open")
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    def _transaction(
        self, body: Callable[[psycopg.Connection[Any]], T], renewal: bool = False
    ) -> T:
        pg = _import_psycopg()
        if self._con is None:
            raise StoreError(f"{self!r} is not open")
        if renewal:
            # Lease renewals have a connection of their own: they must not
            # wait behind a long claim or a large batch's commit.
            con = self._renew_con
            if con is None or con.broken or con.closed:
                self._renew_con = con = self._connect()
        else:
            con = self._con
            if con.broken or con.closed:
                # The server went away (restart, failover): connect again.
                self._con = con = self._connect()
        try:
            for retry in range(_DEADLOCK_RETRIES, -1, -1):
                try:
                    with con.transaction():
                        return body(con)
                except (
                    pg.errors.DeadlockDetected,
                    pg.errors.SerializationFailure,
                ):
                    # The server rolled the whole transaction back (a
                    # renewal and a claim of this process locked the same
                    # rows in another order): running it again is safe.
                    if not retry:
                        raise
            raise AssertionError("unreachable")  # pragma: no cover
        except pg.OperationalError as exc:
            raise self._error(
                "the connection failed; the transaction may or may not have "
                "been committed",
                exc,
            ) from exc
        except pg.Error as exc:
            raise self._error(
                f"{exc.__class__.__name__}; nothing was committed", exc
            ) from exc

    # -- opening ------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, and create or migrate the schema.

        Opened once per user: a Manager's schedulers share one store, and
        the last :meth:`close` closes it. Leases of other workers are not
        touched here: they expire, and are resolved by the claims.
        """
        self._users += 1
        if self._users > 1:
            return
        self._limiter = anyio.CapacityLimiter(1)
        self._listen_limiter = anyio.CapacityLimiter(1)
        self._notified = anyio.Event()
        try:
            await anyio.to_thread.run_sync(self._open_sync, True, limiter=self._limiter)
        except BaseException:
            self._users = 0
            self._limiter = None
            raise

    async def open_for_inspection(self) -> None:
        """Open to look at (and cancel) jobs while schedulers run (a shared
        store needs no exclusive lock): what ``python -m aioscheduler jobs``
        does. No connection listens, and nothing is created or migrated: a
        schema without the store's tables, or of another schema version, is
        refused with a :class:`StoreError`."""
        self._users += 1
        if self._users > 1:
            return
        self._limiter = anyio.CapacityLimiter(1)
        self._listen_limiter = anyio.CapacityLimiter(1)
        self._notified = anyio.Event()
        try:
            await anyio.to_thread.run_sync(
                self._open_sync, False, limiter=self._limiter
            )
        except BaseException:
            self._users = 0
            self._limiter = None
            raise

    def _open_sync(self, listen: bool) -> None:
        self._con = self._connect()
        try:
            self._transaction(self._migrate if listen else self._check_inspectable)
            if listen:
                # Listening from the start: a job added from now on is
                # notified, even before the first wait_for_jobs().
                self._listen_con = self._connect(listen=True)
        except BaseException:
            con, self._con = self._con, None
            if con is not None:
                con.close()
            raise

    def _migrate(self, con: psycopg.Connection[Any]) -> None:
        # One opener at a time migrates (many processes start at once).
        con.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
        exists = con.execute(
            "SELECT 1 FROM pg_namespace WHERE nspname = %s", (self._schema,)
        ).fetchone()
        if exists is None:
            # CREATE SCHEMA IF NOT EXISTS would need CREATE on the database
            # even when the schema exists: ask only when it does not.
            con.execute(f"CREATE SCHEMA {self._s}")
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {self._s}.meta "
            "(name TEXT PRIMARY KEY, value TEXT NOT NULL)"
        )
        row = con.execute(
            f"SELECT value FROM {self._s}.meta WHERE name = 'schema_version'"
        ).fetchone()
        version = 0 if row is None else int(row[0])
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self!r} was made by a newer aioscheduler (schema version "
                f"{version}; this version reads up to {SCHEMA_VERSION}); "
                "upgrade aioscheduler to use it"
            )
        for step in range(version, SCHEMA_VERSION):
            con.execute(MIGRATIONS[step].format(s=self._s).encode())
            con.execute(
                f"INSERT INTO {self._s}.meta (name, value) "
                "VALUES ('schema_version', %s) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (str(step + 1),),
            )

    def _check_inspectable(self, con: psycopg.Connection[Any]) -> None:
        """Refuse, without writing, a schema that is not a current store."""
        # The catalogs, readable without USAGE on the schema.
        row = con.execute(
            "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = 'meta'",
            (self._schema,),
        ).fetchone()
        if row is None:
            raise StoreError(
                f"{self!r} is not an aioscheduler store (no schema "
                f"{self._schema!r} with aioscheduler's tables in that database)"
            )
        row = con.execute(
            f"SELECT value FROM {self._s}.meta WHERE name = 'schema_version'"
        ).fetchone()
        version = 0 if row is None else int(row[0])
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self!r} was made by a newer aioscheduler (schema version "
                f"{version}; this version reads up to {SCHEMA_VERSION}); "
                "upgrade aioscheduler to use it"
            )
        if version < SCHEMA_VERSION:
            raise StoreError(
                f"{self!r} has schema version {version}; open it with a "
                "scheduler once to migrate it"
            )

    async def close(self) -> None:
        """Close the connections (the last user closes them); idempotent."""
        if self._users == 0:
            return
        self._users -= 1
        if self._users:
            return
        con, self._con = self._con, None
        listen, self._listen_con = self._listen_con, None
        renew, self._renew_con = self._renew_con, None
        limiter, listen_limiter = self._limiter, self._listen_limiter
        renew_limiter, self._renew_limiter = self._renew_limiter, None
        try:
            with anyio.CancelScope(shield=True):
                if con is not None:
                    await anyio.to_thread.run_sync(con.close, limiter=limiter)
                if renew is not None:
                    await anyio.to_thread.run_sync(renew.close, limiter=renew_limiter)
                if listen is not None:
                    # After any notifications wait still in its thread.
                    await anyio.to_thread.run_sync(
                        self._close_listen, listen, limiter=listen_limiter
                    )
        finally:
            self._limiter = None
            self._listen_limiter = None

    def _close_listen(self, con: psycopg.Connection[Any]) -> None:
        with self._listen_lock:
            con.close()

    # -- the server's clock -------------------------------------------------------

    def _now(self, con: psycopg.Connection[Any]) -> int:
        row = con.execute(f"SELECT {_DB_NOW}").fetchone()
        assert row is not None
        return int(row[0])

    async def now(self) -> int:
        """The database server's clock, microseconds since the epoch."""
        return await self._call(self._transaction, self._now)

    # -- adding -------------------------------------------------------------------

    async def add(self, jobs: Sequence[NewJob]) -> list[AddResult]:
        """Commit *jobs* in one transaction (see :class:`JobStore`)."""
        return await self._call(self._transaction, lambda con: self._add(con, jobs))

    def _add(
        self, con: psycopg.Connection[Any], jobs: Sequence[NewJob]
    ) -> list[AddResult]:
        now = self._now(con)
        s = self._s
        results: list[AddResult] = []
        insert = (
            f"INSERT INTO {s}.jobs (key, function, arguments, due, ready, state, "
            "delivery, misfire_grace, schedule_id, created) VALUES "
            "(%s, %s, %s, %s, %s, 'pending', %s, %s, %s, %s) "
            "ON CONFLICT (key) DO NOTHING"
        )
        soon = False
        for job in jobs:
            values = new_job_values(job, now)
            replaced = False
            if job.replace:
                # A running job is not replaced (see SQLiteStore).
                row = con.execute(
                    f"DELETE FROM {s}.jobs WHERE key = %s AND state <> 'running' "
                    "RETURNING state",
                    (job.key,),
                ).fetchone()
                replaced = row is not None and row[0] in LIVE
            result: AddResult | None = None
            # A few rounds: the row in the way may be deleted meanwhile.
            for _ in range(5):
                if con.execute(insert, values).rowcount:
                    result = "replaced" if replaced else "added"
                    break
                row = con.execute(
                    f"SELECT state FROM {s}.jobs WHERE key = %s FOR UPDATE",
                    (job.key,),
                ).fetchone()
                if row is None:
                    continue
                if row[0] in LIVE:
                    result = "exists"
                    break
                # Finished, only kept for the record: the new job takes its key.
                con.execute(f"DELETE FROM {s}.jobs WHERE key = %s", (job.key,))
            if result is None:
                raise StoreError(f"{self!r}: the key {job.key!r} kept changing")
            results.append(result)
            if result != "exists" and job.due <= now + self._poll * 1e6:
                soon = True
        if soon:
            # Idle workers elsewhere learn of it now rather than at their
            # next poll; only for jobs due within the poll interval, since
            # NOTIFY serializes commits.
            con.execute("SELECT pg_notify(%s, '')", (self._channel,))
        return results

    async def add_schedule(self, schedule: NewSchedule) -> AddResult:
        """Commit a durable schedule; see :class:`JobStore`."""
        return await self._call(
            self._transaction, lambda con: self._add_schedule(con, schedule)
        )

    def _add_schedule(self, con: psycopg.Connection[Any], sc: NewSchedule) -> AddResult:
        s = self._s
        now = self._now(con)
        # Locks the row if it exists; else a concurrent insert of the same id
        # waits on the primary key below.
        exists = con.execute(
            f"SELECT given FROM {s}.schedules WHERE id = %s FOR UPDATE", (sc.id,)
        ).fetchone()
        if exists is not None and not sc.replace:
            return "exists"
        values = (
            sc.function,
            sc.arguments,
            sc.delivery,
            sc.misfire_grace,
            sc.coalesce,
            sc.max_catchup,
            sc.overlap,
            sc.jitter,
            sc.max_runs,
        )
        if exists is not None:
            if exists[0] == sc.given:
                # An equal trigger keeps its progress: no fire time twice.
                con.execute(
                    f"UPDATE {s}.schedules SET function = %s, arguments = %s, "
                    "delivery = %s, misfire_grace = %s, coalesce = %s, "
                    "max_catchup = %s, overlap = %s, jitter = %s, max_runs = %s, "
                    "error = NULL WHERE id = %s",
                    (*values, sc.id),
                )
                return "replaced"
            con.execute(f"DELETE FROM {s}.schedules WHERE id = %s", (sc.id,))
            con.execute(
                f"DELETE FROM {s}.jobs WHERE schedule_id = %s AND state = 'pending'",
                (sc.id,),
            )
        inserted = con.execute(
            f"INSERT INTO {s}.schedules (id, trigger, given, function, arguments, "
            "delivery, misfire_grace, coalesce, max_catchup, overlap, jitter, "
            "max_runs, next_fire, created) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, "
            "%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
            (sc.id, sc.trigger, sc.given, *values, sc.next_fire, now),
        ).rowcount
        if not inserted:
            return "exists"  # added by another process meanwhile
        if sc.next_fire is not None and sc.next_fire <= now + self._poll * 1e6:
            con.execute("SELECT pg_notify(%s, '')", (self._channel,))
        return "replaced" if exists is not None else "added"

    async def remove_schedule(self, id: str) -> bool:
        """Delete a durable schedule and its runs not yet started."""

        def body(con: psycopg.Connection[Any]) -> bool:
            gone = con.execute(
                f"DELETE FROM {self._s}.schedules WHERE id = %s", (id,)
            ).rowcount
            con.execute(
                f"DELETE FROM {self._s}.jobs WHERE schedule_id = %s "
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
                    f"DELETE FROM {self._s}.jobs WHERE key = %s AND state = 'pending'",
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
        """Record *finished* and claim due jobs, in one transaction.

        *now* is ignored: jobs are due by the database server's clock, which
        the returned claim's ``now`` gives.
        """
        return await self._call(
            self._transaction,
            lambda con: self._claim(con, owner, limit, lease, finished),
        )

    def _claim(
        self,
        con: psycopg.Connection[Any],
        owner: str,
        limit: int,
        lease: float,
        finished: Sequence[Finished],
    ) -> Claim:
        s = self._s
        now = self._now(con)
        rejected = [
            r.token
            for r, ok in zip(finished, self._finish(con, finished, now), strict=True)
            if not ok
        ]
        lost = self._expire_leases(con, owner, now)
        schedule_missed = self._fire_schedules(con, now)
        if now - self._purged_at > PURGE_EVERY_US:
            self._purge(con, now)
        jobs: list[ClaimedJob] = []
        missed: list[JobRecord] = []
        if limit > 0:
            rows = con.execute(
                f"WITH c AS (SELECT id FROM {s}.jobs WHERE state = 'pending' "
                "AND ready <= %s ORDER BY ready, id LIMIT %s FOR UPDATE SKIP LOCKED) "
                f"UPDATE {s}.jobs j SET state = 'running', lease_owner = %s, "
                "lease_until = %s, attempt = j.attempt + 1 FROM c WHERE j.id = c.id "
                f"RETURNING {_CLAIMED_COLUMNS}",
                (now, limit, owner, now + round(lease * 1e6)),
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
            self._next_due(con, owner),
            missed=missed,
            lost=lost,
            rejected=rejected,
            schedule_missed=schedule_missed,
        )

    def _expire_leases(
        self, con: psycopg.Connection[Any], owner: str, now: int
    ) -> list[JobRecord]:
        """Resolve the expired leases of other owners, by each job's delivery.

        The claimer's own leases are never expired here (it is alive: it is
        claiming); it renews them, or gives them back, itself.
        """
        s = self._s
        con.execute(
            f"WITH e AS (SELECT id FROM {s}.jobs WHERE state = 'running' "
            "AND lease_until < %s AND lease_owner <> %s "
            "AND delivery = 'at_least_once' FOR UPDATE SKIP LOCKED) "
            f"UPDATE {s}.jobs j SET state = 'pending', lease_owner = NULL, "
            "lease_until = NULL FROM e WHERE j.id = e.id",
            (now, owner),
        )
        rows = con.execute(
            f"SELECT {JOB_COLUMNS} FROM {s}.jobs WHERE state = 'running' "
            "AND lease_until < %s AND lease_owner <> %s "
            "AND delivery = 'at_most_once' FOR UPDATE SKIP LOCKED",
            (now, owner),
        ).fetchall()
        if not rows:
            return []
        error = (
            "its worker stopped renewing its lease while it was running "
            "(delivery at_most_once)"
        )
        lost = [job_record(row) for row in rows]
        for record in lost:
            self._end_row(con, record.key, "lost", None, error, now)
        return lost_records(lost, error)

    def _miss(self, con: psycopg.Connection[Any], row: Any, now: int) -> JobRecord:
        record = missed_record(row, now)
        con.execute(
            f"UPDATE {self._s}.jobs SET attempt = attempt - 1 WHERE id = %s",
            (row[0],),
        )
        self._end_row(con, row[1], "missed", None, record.error, now)
        return record

    def _end_row(
        self,
        con: psycopg.Connection[Any],
        key: str,
        state: str,
        result: str | None,
        error: str | None,
        now: int,
    ) -> None:
        keep = self._keep_done_us if state == "done" else self._keep_failed_us
        if keep is None:
            con.execute(f"DELETE FROM {self._s}.jobs WHERE key = %s", (key,))
        else:
            con.execute(
                f"UPDATE {self._s}.jobs SET state = %s, finished = %s, result = %s, "
                "error = %s, lease_owner = NULL, lease_until = NULL WHERE key = %s",
                (state, now, result, error, key),
            )

    def _fire_schedules(self, con: psycopg.Connection[Any], now: int) -> dict[str, int]:
        """Add the runs of due durable schedules; return how many each missed.

        Each due schedule row is locked (rows another claimer holds are
        skipped: it is firing them), its runs inserted under unique keys,
        and its progress moved on with a compare-and-set: a fire time is
        materialized once across all workers.
        """
        s = self._s
        rows = con.execute(
            f"SELECT {SCHEDULE_COLUMNS} FROM {s}.schedules "
            "WHERE next_fire IS NOT NULL AND next_fire <= %s "
            "ORDER BY next_fire FOR UPDATE SKIP LOCKED",
            (now,),
        ).fetchall()
        missed_by_id: dict[str, int] = {}
        for row in rows:
            sc = schedule_record(row)
            trigger = read_trigger(sc)
            if isinstance(trigger, str):
                con.execute(
                    f"UPDATE {s}.schedules SET next_fire = NULL, error = %s "
                    "WHERE id = %s",
                    (trigger, sc.id),
                )
                continue
            plan = plan_schedule(sc, trigger, now)
            skipped = 0
            fires = plan.runs
            if fires and sc.overlap == "skip":
                busy = con.execute(
                    f"SELECT 1 FROM {s}.jobs WHERE schedule_id = %s "
                    "AND state IN ('pending', 'running') LIMIT 1",
                    (sc.id,),
                ).fetchone()
                if busy is not None:
                    skipped, fires = len(fires), []
            for fire, due in fires:
                con.execute(
                    f"INSERT INTO {s}.jobs (key, function, arguments, due, ready, "
                    "state, delivery, misfire_grace, schedule_id, created) "
                    "VALUES (%s, %s, %s, %s, %s, 'pending', %s, %s, %s, %s) "
                    "ON CONFLICT (key) DO NOTHING",
                    run_values(sc, fire, due, now),
                )
            moved = con.execute(
                f"UPDATE {s}.schedules SET next_fire = %s, high_water = %s, "
                "runs = runs + %s, missed = missed + %s, skipped = skipped + %s "
                "WHERE id = %s AND next_fire = %s "
                "AND high_water IS NOT DISTINCT FROM %s",
                (
                    plan.next_fire,
                    plan.high_water,
                    len(fires),
                    plan.missed,
                    skipped,
                    sc.id,
                    sc.next_fire,
                    sc.high_water,
                ),
            ).rowcount
            if moved != 1:  # pragma: no cover - the row lock makes it impossible
                raise StoreError(
                    f"{self!r}: schedule {sc.id!r} changed while it was fired"
                )
            if plan.missed:
                missed_by_id[sc.id] = plan.missed
        return missed_by_id

    def _purge(self, con: psycopg.Connection[Any], now: int) -> None:
        self._purged_at = now
        for states, keep in (
            (["done"], self._keep_done_us),
            (["failed", "missed", "lost"], self._keep_failed_us),
        ):
            con.execute(
                f"DELETE FROM {self._s}.jobs WHERE finished IS NOT NULL "
                "AND finished < %s AND state = ANY(%s)",
                (now - (keep or 0), states),
            )

    def _next_due(self, con: psycopg.Connection[Any], owner: str | None) -> int | None:
        s = self._s
        # The expiry of another worker's lease counts too: its job may be
        # claimable (or lost) then.
        row = con.execute(
            f"SELECT LEAST((SELECT MIN(ready) FROM {s}.jobs WHERE state = 'pending'), "
            f"(SELECT MIN(next_fire) FROM {s}.schedules WHERE next_fire IS NOT NULL), "
            f"(SELECT MIN(lease_until) + 1 FROM {s}.jobs WHERE state = 'running' "
            "AND %s::text IS NOT NULL AND lease_owner <> %s))",
            (owner, owner),
        ).fetchone()
        assert row is not None
        return None if row[0] is None else int(row[0])

    async def next_due(self) -> int | None:
        """The earliest ready time of a pending job or a durable schedule."""
        return await self._call(
            self._transaction, lambda con: self._next_due(con, None)
        )

    # -- after a claim: fenced on (id, owner, attempt) ------------------------------

    async def extend(
        self, tokens: Sequence[ClaimToken], *, now: int, lease: float
    ) -> set[ClaimToken]:
        """Extend the leases of *tokens* from the server's clock (*now* is
        ignored); return those still held."""
        if not tokens:
            return set()

        def body(con: psycopg.Connection[Any]) -> set[ClaimToken]:
            until = self._now(con) + round(lease * 1e6)
            rows = con.execute(
                f"UPDATE {self._s}.jobs j SET lease_until = %s "
                "FROM unnest(%s::bigint[], %s::text[], %s::int[]) "
                f"AS t(id, owner, attempt) WHERE {_TOKEN_FENCE} "
                "RETURNING j.id, j.lease_owner, j.attempt",
                (
                    until,
                    [t.id for t in tokens],
                    [t.owner for t in tokens],
                    [t.attempt for t in tokens],
                ),
            ).fetchall()
            return {ClaimToken(*row) for row in rows}

        if self._limiter is None:
            raise StoreError(f"{self!r} is not open")
        limiter = self._renew_limiter
        if limiter is None:
            limiter = self._renew_limiter = anyio.CapacityLimiter(1)
        return await anyio.to_thread.run_sync(
            self._transaction, body, True, limiter=limiter
        )

    async def finish(self, results: Sequence[Finished], *, now: int) -> list[bool]:
        """Record how claimed jobs ended (*now* is ignored: the server's
        clock is used); ``False`` where the lease was lost."""
        return await self._call(
            self._transaction,
            lambda con: self._finish(con, results, self._now(con)),
        )

    def _finish(
        self, con: psycopg.Connection[Any], results: Sequence[Finished], now: int
    ) -> list[bool]:
        """Record *results*: one statement per kind of ending (not one per
        job: a claim often carries hundreds), each fenced on (id, owner,
        attempt); ``False`` where the lease was lost."""
        s = self._s
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(results):
            state = r.state
            keep = self._keep_done_us if state == "done" else self._keep_failed_us
            kind: str
            if state in ("released", "interrupted"):
                kind = state
            elif state == "cancelled" or keep is None:
                kind = "delete"
            else:
                kind = "end"
            groups.setdefault(kind, []).append(i)
        tokens = "unnest(%s::bigint[], %s::text[], %s::int[]) AS t(id, owner, attempt)"
        fence = _TOKEN_FENCE
        held = [False] * len(results)
        for kind, indexes in groups.items():
            fenced = [results[i].token for i in indexes]
            params: tuple[Any, ...] = (
                [t.id for t in fenced],
                [t.owner for t in fenced],
                [t.attempt for t in fenced],
            )
            if kind == "delete":
                sql = f"DELETE FROM {s}.jobs j USING {tokens} WHERE {fence}"
            elif kind == "released":
                sql = (
                    f"UPDATE {s}.jobs j SET state = 'pending', lease_owner = NULL, "
                    f"lease_until = NULL, attempt = j.attempt - 1 FROM {tokens} "
                    f"WHERE {fence}"
                )
            elif kind == "interrupted":
                sql = (
                    f"UPDATE {s}.jobs j SET state = 'pending', lease_owner = NULL, "
                    f"lease_until = NULL FROM {tokens} WHERE {fence}"
                )
            else:
                sql = (
                    f"UPDATE {s}.jobs j SET state = t.state, finished = %s, "
                    "result = t.result, error = t.error, lease_owner = NULL, "
                    "lease_until = NULL FROM unnest(%s::bigint[], %s::text[], "
                    "%s::int[], %s::text[], %s::text[], %s::text[]) "
                    "AS t(id, owner, attempt, state, result, error) "
                    f"WHERE {fence}"
                )
                params = (
                    now,
                    *params,
                    [results[i].state for i in indexes],
                    [results[i].result for i in indexes],
                    [results[i].error for i in indexes],
                )
            recorded = {row[0] for row in con.execute(sql + " RETURNING j.id", params)}
            for i in indexes:
                held[i] = results[i].token.id in recorded
        return held

    async def release(
        self, token: ClaimToken, *, ready: int, count_attempt: bool
    ) -> bool:
        """Give a claimed job back, claimable again from *ready*."""

        def body(con: psycopg.Connection[Any]) -> bool:
            return bool(
                con.execute(
                    f"UPDATE {self._s}.jobs SET state = 'pending', "
                    "lease_owner = NULL, lease_until = NULL, ready = %s, "
                    "attempt = attempt - %s WHERE id = %s AND lease_owner = %s "
                    "AND attempt = %s AND state = 'running'",
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

    # -- wake-ups -------------------------------------------------------------------

    async def wait_for_jobs(self, max_wait: float) -> bool:
        """Wait up to *max_wait* seconds for a notification that jobs due
        soon were added (by any process); ``True`` if one came.

        A hint only (notifications can be lost; poll as well). Listens on a
        connection of its own, which must be a session connection (not a
        PgBouncer transaction-pooling one). Concurrent callers share the
        wait: one notification wakes them all. Never raises a connection
        error: it logs it, and waits out *max_wait*.
        """
        if self._listen_limiter is None:
            raise StoreError(f"{self!r} is not open")
        with anyio.move_on_after(max_wait) as scope:
            while True:
                event = self._notified
                assert event is not None
                if self._listener_busy:
                    # Another caller waits on the connection: share its
                    # wake-up (and take over if it leaves).
                    with anyio.move_on_after(_LISTEN_SLICE):
                        await event.wait()
                        return True
                    continue
                self._listener_busy = True
                try:
                    slice_ = min(
                        _LISTEN_SLICE, max(scope.deadline - anyio.current_time(), 0.0)
                    )
                    got = await anyio.to_thread.run_sync(
                        self._wait_notifies,
                        slice_,
                        limiter=self._listen_limiter,
                        abandon_on_cancel=True,
                    )
                finally:
                    self._listener_busy = False
                if got:
                    self._notified = anyio.Event()
                    event.set()
                    return True
                if got is None:  # the connection failed: poll instead
                    await anyio.sleep(math.inf)
        return False

    def _wait_notifies(self, timeout: float) -> bool | None:
        with self._listen_lock:
            return self._wait_notifies_locked(timeout)

    def _wait_notifies_locked(self, timeout: float) -> bool | None:
        pg = _import_psycopg()
        try:
            con = self._listen_con
            if con is None or con.broken or con.closed:
                if self._limiter is None:
                    return None  # closed meanwhile
                self._listen_con = con = self._connect(listen=True)
            got = False
            for _ in con.notifies(timeout=timeout, stop_after=1):
                got = True
            if got:
                # Drain what else came: one wake-up is enough.
                for _ in con.notifies(timeout=0.0):
                    pass
            return got
        except (pg.Error, StoreError) as exc:
            logger.warning(
                "%s",
                self._redact(
                    f"{self!r}: cannot listen for new jobs ({exc}); polling "
                    f"every {self._poll:g} s instead"
                ),
            )
            return None

    # -- looking inside -------------------------------------------------------------

    async def get_job(self, key: str) -> JobRecord | None:
        """The job with *key*, live or kept."""

        def body(con: psycopg.Connection[Any]) -> JobRecord | None:
            row = con.execute(
                f"SELECT {JOB_COLUMNS} FROM {self._s}.jobs WHERE key = %s", (key,)
            ).fetchone()
            return None if row is None else job_record(row)

        return await self._call(self._transaction, body)

    async def get_schedule(self, id: str) -> ScheduleRecord | None:
        """The durable schedule *id*."""

        def body(con: psycopg.Connection[Any]) -> ScheduleRecord | None:
            row = con.execute(
                f"SELECT {SCHEDULE_COLUMNS} FROM {self._s}.schedules WHERE id = %s",
                (id,),
            ).fetchone()
            return None if row is None else schedule_record(row)

        return await self._call(self._transaction, body)

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
            where.append("state = ANY(%s)")
            params.append(list(states))
        if due_from is not None:
            where.append("due >= %s")
            params.append(due_from)
        if due_to is not None:
            where.append("due < %s")
            params.append(due_to)
        if key_prefix:
            # starts_with, not LIKE: the prefix is data, with no wildcards.
            where.append("starts_with(key, %s)")
            params.append(key_prefix)
        sql = f"SELECT {JOB_COLUMNS} FROM {self._s}.jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY due, id"
        if limit is not None:
            sql += " LIMIT %s"
            params.append(limit)

        def body(con: psycopg.Connection[Any]) -> list[JobRecord]:
            return [job_record(row) for row in con.execute(sql, params).fetchall()]

        return await self._call(self._transaction, body)

    async def list_schedules(self) -> list[ScheduleRecord]:
        """Every durable schedule, by id."""

        def body(con: psycopg.Connection[Any]) -> list[ScheduleRecord]:
            return [
                schedule_record(row)
                for row in con.execute(
                    f"SELECT {SCHEDULE_COLUMNS} FROM {self._s}.schedules ORDER BY id"
                ).fetchall()
            ]

        return await self._call(self._transaction, body)

    async def stats(self) -> dict[str, Any]:
        """Counts by state, the next due time, the oldest overdue job."""

        def body(con: psycopg.Connection[Any]) -> dict[str, Any]:
            s = self._s
            counts = {
                str(state): int(n)
                for state, n in con.execute(
                    f"SELECT state, COUNT(*) FROM {s}.jobs GROUP BY state"
                ).fetchall()
            }
            now = self._now(con)
            oldest = con.execute(
                f"SELECT MIN(ready) FROM {s}.jobs WHERE state = 'pending'"
            ).fetchone()
            schedules = con.execute(f"SELECT COUNT(*) FROM {s}.schedules").fetchone()
            assert oldest is not None
            assert schedules is not None
            return stats_dict(
                counts, int(schedules[0]), self._next_due(con, None), oldest[0], now
            )

        return await self._call(self._transaction, body)
