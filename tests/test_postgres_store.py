"""The PostgreSQL store against a real server (a throwaway cluster).

These run in REAL time, on asyncio and Trio: due times are judged by the
database server's clock, which no virtual clock can move, so the
virtual-time rule of the other behaviour tests does not apply here. No
assertion depends on timing: where a test waits for something, it waits
for the event itself, under a generous ``fail_after`` that only turns a
hang into a failure. Each test uses a schema of its own.

The grants a limited role needs (see ``test_a_role_limited_to_its_schema``):
``CONNECT`` on the database and a schema it owns (``CREATE SCHEMA s
AUTHORIZATION role``; or ``USAGE, CREATE`` on it). It needs no ``CREATE`` on
the database once the schema exists.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import anyio
import psycopg
import pytest

import aioscheduler
from aioscheduler import (
    Every,
    PostgresStore,
    StoreError,
    TimedScheduler,
    current_job,
    durable,
)
from aioscheduler._durable_api import open_store_option
from aioscheduler.stores._interface import ClaimToken, Finished, NewJob
from tests._postgres import DATABASE, Cluster

pytestmark = pytest.mark.anyio

HOUR_US = 3_600_000_000


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Real time on both event loops (the server's clock is real)."""
    backend: str = request.param
    return backend


@pytest.fixture
def schema() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def store(postgres_dsn: str, schema: str) -> AsyncIterator[PostgresStore]:
    s = PostgresStore(postgres_dsn, schema=schema)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def other(postgres_dsn: str, schema: str) -> AsyncIterator[PostgresStore]:
    """A second store on the same schema: another process, as far as the
    server can tell (a connection of its own)."""
    s = PostgresStore(postgres_dsn, schema=schema)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def job(key: str, due: int, **options: Any) -> NewJob:
    values: dict[str, Any] = {
        "function": "tests.pg:noop",
        "arguments": "[[]]",
        "delivery": "at_least_once",
        "misfire_grace": None,
    }
    values.update(options)
    return NewJob(key=key, due=due, **values)


def _fields(new: NewJob) -> dict[str, Any]:
    return {name: getattr(new, name) for name in new.__slots__}


def raw(dsn: str) -> psycopg.Connection[Any]:
    return psycopg.connect(dsn, autocommit=True)


# -- the fixture ---------------------------------------------------------------------


def test_cluster_is_loopback_and_password_protected(
    postgres_cluster: Cluster, postgres_dsn: str
) -> None:
    with raw(postgres_dsn) as con:
        row = con.execute("SELECT inet_server_addr()::text, current_user").fetchone()
    assert row == ("127.0.0.1/32", "aioscheduler_test")
    with pytest.raises(psycopg.OperationalError, match="password authentication"):
        psycopg.connect(postgres_cluster.dsn(password="wrong")).close()


# -- claims ---------------------------------------------------------------------------


async def test_claims_only_jobs_due_by_the_database_clock(
    store: PostgresStore,
) -> None:
    before = await store.now()
    assert await store.add(
        [job("past", before - 1_000_000), job("future", before + HOUR_US)]
    ) == ["added", "added"]
    # The caller's clock says the future job is due: it is ignored.
    claim = await store.claim("a", now=before + 2 * HOUR_US, limit=10, lease=30)
    after = await store.now()
    assert [j.key for j in claim.jobs] == ["past"]
    assert before <= claim.now <= after
    assert claim.next_due == before + HOUR_US
    assert claim.jobs[0].token == ClaimToken(claim.jobs[0].token.id, "a", 1)
    record = await store.get_job("past")
    assert record is not None
    assert record.state == "running"
    assert record.lease_owner == "a"
    assert record.lease_until == claim.now + 30_000_000


async def test_claims_are_in_due_order_and_limited(store: PostgresStore) -> None:
    now = await store.now()
    await store.add([job(f"j{i}", now - 1_000 * (10 - i)) for i in range(10)])
    first = await store.claim("a", now=0, limit=4, lease=30)
    second = await store.claim("a", now=0, limit=100, lease=30)
    assert [j.key for j in first.jobs] == ["j0", "j1", "j2", "j3"]
    assert [j.key for j in second.jobs] == [f"j{i}" for i in range(4, 10)]
    assert second.next_due is None


async def test_skip_locked_claims_jobs_another_transaction_holds(
    store: PostgresStore, postgres_dsn: str, schema: str
) -> None:
    now = await store.now()
    await store.add([job(f"j{i:02}", now - 1_000_000 + i) for i in range(20)])
    with raw(postgres_dsn) as con, con.transaction():
        # Another claimer, mid-transaction, holds the first five rows.
        con.execute(
            f'SELECT id FROM "{schema}".jobs ORDER BY ready, id LIMIT 5 FOR UPDATE'
        )
        claim = await store.claim("a", now=0, limit=100, lease=30)
    assert [j.key for j in claim.jobs] == [f"j{i:02}" for i in range(5, 20)]


async def test_concurrent_claimers_get_disjoint_jobs(
    store: PostgresStore, other: PostgresStore
) -> None:
    now = await store.now()
    await store.add([job(f"j{i:03}", now - 1_000_000) for i in range(300)])
    got: dict[str, list[str]] = {"a": [], "b": []}

    async def claimer(s: PostgresStore, owner: str) -> None:
        while True:
            claim = await s.claim(owner, now=0, limit=7, lease=30)
            if not claim.jobs:
                return
            got[owner] += [j.key for j in claim.jobs]

    async with anyio.create_task_group() as group:
        group.start_soon(claimer, store, "a")
        group.start_soon(claimer, other, "b")
    assert set(got["a"]).isdisjoint(got["b"])
    assert sorted(got["a"] + got["b"]) == [f"j{i:03}" for i in range(300)]


async def test_add_conflicts(store: PostgresStore) -> None:
    now = await store.now()
    assert await store.add([job("k", now + HOUR_US)]) == ["added"]
    assert await store.add([job("k", now + HOUR_US)]) == ["exists"]
    assert await store.add([job("k", now - 1, replace=True)]) == ["replaced"]
    claim = await store.claim("a", now=0, limit=1, lease=30)
    assert [j.key for j in claim.jobs] == ["k"]
    # A running job is never replaced.
    assert await store.add([job("k", now + HOUR_US, replace=True)]) == ["exists"]
    assert await store.cancel("k") is False
    assert await store.finish([Finished(claim.jobs[0].token, "done")], now=0) == [True]
    assert await store.get_job("k") is None  # finished rows are deleted


# -- leases and fencing ----------------------------------------------------------


async def test_a_stale_token_is_fenced_off(store: PostgresStore) -> None:
    now = await store.now()
    await store.add([job("k", now - 1)])
    (stale,) = (await store.claim("a", now=0, limit=1, lease=0)).jobs
    # "a" stopped renewing; its lease (0 s) has expired: "b" gets the job.
    (fresh,) = (await store.claim("b", now=0, limit=1, lease=30)).jobs
    assert fresh.key == "k"
    assert fresh.token.attempt == 2
    assert stale.token.attempt == 1
    assert await store.extend([stale.token], now=0, lease=30) == set()
    assert await store.finish([Finished(stale.token, "done")], now=0) == [False]
    assert await store.release(stale.token, ready=0, count_attempt=False) is False
    claim = await store.claim(
        "a", now=0, limit=1, lease=30, finished=[Finished(stale.token, "failed")]
    )
    assert claim.rejected == [stale.token]
    record = await store.get_job("k")
    assert record is not None
    assert (record.state, record.lease_owner, record.attempt) == ("running", "b", 2)
    assert await store.extend([fresh.token], now=0, lease=30) == {fresh.token}
    assert await store.finish([Finished(fresh.token, "done")], now=0) == [True]


async def test_expired_leases_are_resolved_by_delivery(store: PostgresStore) -> None:
    now = await store.now()
    await store.add(
        [
            job("least", now - 2),
            job("most", now - 1, delivery="at_most_once"),
        ]
    )
    claimed = (await store.claim("dead", now=0, limit=10, lease=0)).jobs
    assert [j.key for j in claimed] == ["least", "most"]
    # Its own expired leases are not expired by the owner itself.
    own = await store.claim("dead", now=0, limit=10, lease=30)
    assert (own.jobs, own.lost) == ([], [])
    claim = await store.claim("alive", now=0, limit=10, lease=30)
    assert [j.key for j in claim.jobs] == ["least"]
    assert claim.jobs[0].token.attempt == 2
    assert [r.key for r in claim.lost] == ["most"]
    assert claim.lost[0].state == "lost"
    record = await store.get_job("most")
    assert record is not None
    assert record.state == "lost"
    assert record.lease_owner is None


async def test_missed_past_misfire_grace(store: PostgresStore) -> None:
    now = await store.now()
    await store.add([job("late", now - 5_000_000, misfire_grace=1.0)])
    claim = await store.claim("a", now=0, limit=10, lease=30)
    assert claim.jobs == []
    assert [r.key for r in claim.missed] == ["late"]
    record = await store.get_job("late")
    assert record is not None
    assert (record.state, record.attempt) == ("missed", 0)


async def test_release_and_interrupt(store: PostgresStore) -> None:
    now = await store.now()
    await store.add([job("k", now - 1)])
    (claimed,) = (await store.claim("a", now=0, limit=1, lease=30)).jobs
    assert await store.release(claimed.token, ready=now + HOUR_US, count_attempt=False)
    record = await store.get_job("k")
    assert record is not None
    assert (record.state, record.attempt, record.ready) == (
        "pending",
        0,
        now + HOUR_US,
    )
    assert (await store.claim("a", now=0, limit=1, lease=30)).jobs == []


# -- schedules -------------------------------------------------------------------


@durable("tests.pg.tick")
async def tick() -> None:
    ticks.append(current_job().key)


ticks: list[str] = []


async def test_each_fire_time_runs_once_with_two_stores_racing(
    store: PostgresStore, other: PostgresStore
) -> None:
    ticks.clear()
    async with TimedScheduler(store=store) as s:
        sid = await s.add_durable_schedule(
            Every(0.05), tick, id="beat", coalesce="all", overlap="allow"
        )
    # No scheduler runs now; two claimers race over the schedule's fire
    # times until a few have been materialized.
    keys: dict[str, list[str]] = {"a": [], "b": []}

    async def claimer(s: PostgresStore, owner: str) -> None:
        while len(keys["a"]) + len(keys["b"]) < 20:
            claim = await s.claim(owner, now=0, limit=100, lease=30)
            keys[owner] += [j.key for j in claim.jobs]
            await s.finish([Finished(j.token, "done") for j in claim.jobs], now=0)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            group.start_soon(claimer, store, "a")
            group.start_soon(claimer, other, "b")
    # The scheduler may have run a fire time or two before it left.
    everything = keys["a"] + keys["b"] + ticks
    assert len(set(everything)) == len(everything)
    assert all(k.startswith(f"{sid}@") for k in everything)
    record = await store.get_schedule(sid)
    assert record is not None
    assert record.runs == len(everything)


# -- schemas, roles, secrets ---------------------------------------------------------


async def test_a_custom_schema_with_an_odd_name(postgres_dsn: str) -> None:
    name = f'Odd "schema" {uuid.uuid4().hex[:6]}'
    store = PostgresStore(postgres_dsn, schema=name)
    await store.open()
    try:
        now = await store.now()
        await store.add([job("k", now - 1)])
        assert [j.key for j in (await store.claim("a", now=0, limit=5, lease=9)).jobs]
    finally:
        await store.close()
    with raw(postgres_dsn) as con:
        tables = con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = %s ORDER BY table_name",
            (name,),
        ).fetchall()
        version = con.execute(
            psycopg.sql.SQL("SELECT value FROM {}.meta").format(
                psycopg.sql.Identifier(name)
            )
        ).fetchone()
    assert tables == [("jobs",), ("meta",), ("schedules",)]
    assert version == ("1",)
    # Opening again finds the schema at its version: nothing to migrate.
    again = PostgresStore(postgres_dsn, schema=name)
    await again.open()
    await again.close()


async def test_a_role_limited_to_its_schema(postgres_cluster: Cluster) -> None:
    role = f"limited_{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    admin = postgres_cluster.psql_admin
    admin(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    admin(f"REVOKE CREATE ON DATABASE {DATABASE} FROM PUBLIC")
    admin("REVOKE ALL ON SCHEMA public FROM PUBLIC", dbname=DATABASE)
    admin(f"GRANT CONNECT ON DATABASE {DATABASE} TO {role}")
    admin(f"CREATE SCHEMA {role} AUTHORIZATION {role}", dbname=DATABASE)
    dsn = postgres_cluster.dsn(user=role, password=password)
    store = PostgresStore(dsn, schema=role)
    await store.open()
    try:
        now = await store.now()
        await store.add([job("k", now - 1)])
        (claimed,) = (await store.claim("a", now=0, limit=5, lease=9)).jobs
        assert await store.finish([Finished(claimed.token, "done")], now=0) == [True]
    finally:
        await store.close()
    # It may not create a schema of its own: a clear error, nothing else.
    elsewhere = PostgresStore(dsn, schema=f"{role}_other")
    with pytest.raises(StoreError, match="permission denied") as info:
        await elsewhere.open()
    assert password not in str(info.value)


async def test_the_password_never_shows(postgres_cluster: Cluster) -> None:
    secret = "s3cret-" + uuid.uuid4().hex
    dsn = postgres_cluster.dsn(password=secret)
    store = PostgresStore(dsn, schema="nope")
    assert repr(store) == (
        f"PostgresStore(host='127.0.0.1', port='{postgres_cluster.port}', "
        f"dbname='{DATABASE}', schema='nope')"
    )
    with pytest.raises(StoreError) as info:
        await store.open()
    assert "password authentication failed" in str(info.value)
    assert secret not in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    with pytest.raises(ValueError, match="not shown") as bad:
        PostgresStore(f"postgresql://u:{secret}@127.0.0.1:5432/db?nonsense=1")
    assert secret not in str(bad.value)
    by_url = open_store_option(dsn)
    assert isinstance(by_url, PostgresStore)
    assert secret not in repr(by_url)
    assert secret not in repr(TimedScheduler(store=dsn).store)


def test_is_exported() -> None:
    assert aioscheduler.PostgresStore is PostgresStore
    assert "PostgresStore" in aioscheduler.__all__


# -- notifications ---------------------------------------------------------------------


async def test_an_add_due_soon_notifies_listeners(
    store: PostgresStore, other: PostgresStore
) -> None:
    now = await store.now()
    got: list[bool] = []

    async def listen() -> None:
        got.append(await store.wait_for_jobs(60))

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            group.start_soon(listen)
            group.start_soon(listen)  # shares the wait
            await other.add([job("far", now + HOUR_US)])  # no notification
            await other.add([job("soon", now)])
    assert got == [True, True]


# -- end to end ------------------------------------------------------------------------


ran: list[tuple[str, int]] = []
_enough: list[tuple[int, anyio.Event]] = []


def ran_at_least(count: int) -> anyio.Event:
    """An event set once *count* runs of ``record`` have been logged."""
    event = anyio.Event()
    _enough.append((count, event))
    if len(ran) >= count:
        event.set()
    return event


@durable("tests.pg.record")
async def record(n: int) -> None:
    ran.append((current_job().key, n))
    for count, event in _enough:
        if len(ran) >= count:
            event.set()


async def test_a_scheduler_runs_durable_jobs_from_postgres(
    postgres_dsn: str, schema: str
) -> None:
    ran.clear()
    store = PostgresStore(postgres_dsn, schema=schema, keep_results=timedelta(hours=1))
    async with TimedScheduler(store=store) as s:
        for i in range(10):
            await s.durable_start_after(0.01 * i, record, i, key=f"r{i}")
        with anyio.fail_after(30):
            await ran_at_least(10).wait()
    assert sorted(ran) == sorted((f"r{i}", i) for i in range(10))
    # The rows were kept (keep_results); a scheduler of a store that keeps
    # none would purge them (done rows are purged by whichever worker
    # claims: give every worker the same settings).
    inspect = PostgresStore(postgres_dsn, schema=schema)
    await inspect.open_for_inspection()
    try:
        records = await inspect.list_jobs(states=["done"])
    finally:
        await inspect.close()
    assert sorted(r.key for r in records) == [f"r{i}" for i in range(10)]


async def test_a_job_added_by_another_process_wakes_an_idle_scheduler(
    postgres_dsn: str, schema: str, other: PostgresStore
) -> None:
    ran.clear()
    # A poll of an hour: only the notification can wake the scheduler in time.
    store = PostgresStore(postgres_dsn, schema=schema, poll_interval=3600)
    async with TimedScheduler(store=store) as s:
        await anyio.sleep(0.2)  # let the feeder claim (nothing) and sleep
        now = await other.now()
        added = job("from-elsewhere", now, function="tests.pg.record")
        await other.add([NewJob(**{**_fields(added), "arguments": "[[7]]"})])
        with anyio.fail_after(30):
            await ran_at_least(1).wait()
        assert s.store is store
    assert ran == [("from-elsewhere", 7)]


@pytest.fixture(autouse=True)
def _no_leftover_runs() -> Iterator[None]:
    yield
    ran.clear()
    ticks.clear()
    _enough.clear()


def test_without_psycopg_the_error_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg fails
    with pytest.raises(ImportError, match=r"pip install 'aioscheduler\[postgres\]'"):
        PostgresStore("postgresql://u@127.0.0.1/db")
    with pytest.raises(ImportError, match=r"aioscheduler\[postgres\]"):
        TimedScheduler(store="postgres://u@127.0.0.1/db")


async def test_the_server_dropping_every_connection_loses_nothing(
    postgres_cluster: Cluster, postgres_dsn: str, schema: str
) -> None:
    # What a database restart or a failover looks like to a worker: the
    # server ends its connections. The worker goes on (the store connects
    # again; a failed claim is tried again after a backoff), and every job
    # runs, none twice.
    ran.clear()
    store = PostgresStore(postgres_dsn, schema=schema, lease=3, poll_interval=0.2)
    async with TimedScheduler(store=store) as s:
        for i in range(40):
            await s.durable_start_after(0.05 * i, record, i, key=f"d{i}")
        await ran_at_least(10).wait()
        postgres_cluster.psql_admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{DATABASE}' AND application_name = 'aioscheduler' "
            "AND pid <> pg_backend_pid()"
        )
        with anyio.fail_after(60):
            await ran_at_least(40).wait()
    keys = [key for key, _ in ran]
    assert sorted(set(keys)) == sorted(f"d{i}" for i in range(40))
    # A job whose claim or outcome was cut off runs again, at most once
    # more, as a rerun (at-least-once); none is lost.
    assert len(keys) - len(set(keys)) <= 2, sorted(keys)
