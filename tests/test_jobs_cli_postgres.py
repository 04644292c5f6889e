"""``python -m aioscheduler jobs --store postgresql://...`` against a real server.

The same command line as ``tests/test_jobs_cli.py``, on a
:class:`PostgresStore` in the throwaway cluster (the ``postgres_dsn``
fixture), each test in a schema of its own. The PostgreSQL store claims and
finishes by the *server's* clock, so only the times given to it (due times,
fixed in 2001 and 2100) are exact; the times it stamps (``finished``,
``lease_until``) are checked for their form. The password is in the URL of
every call here, and must never be printed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import psycopg
import pytest

from aioscheduler import Every, PostgresStore, TimedScheduler, durable
from aioscheduler._jobs_cli import main
from aioscheduler.stores._fires import to_micros
from aioscheduler.stores._interface import Finished, NewJob, NewSchedule
from tests._engines import ROOT, child_env
from tests._postgres import Cluster

PROG = "python -m aioscheduler jobs"
DAY = timedelta(days=1)
PAST = datetime(2001, 1, 1, tzinfo=UTC)
FUTURE = datetime(2100, 1, 1, tzinfo=UTC)
FUNCTION = "tests.cli:send"
KEEP = 100 * 365 * 86_400.0  # finished rows outlive the tests
LEASE = KEEP  # so does the running job's lease
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")

ALL_KEYS = [
    "mail:past",
    "run:now",
    "bill:failed",
    "bill:done",
    "grace:missed",
    "lost:once",
    "mail:future",
]


def us(when: datetime) -> int:
    return to_micros(when)


def new_job(
    key: str,
    due: datetime,
    arguments: str = "[[]]",
    *,
    delivery: str = "at_least_once",
    misfire_grace: float | None = None,
) -> NewJob:
    return NewJob(
        key,
        FUNCTION,
        arguments,
        us(due),
        "at_most_once" if delivery == "at_most_once" else "at_least_once",
        misfire_grace,
    )


async def _populate(dsn: str, schema: str) -> None:
    """One job in each state and a durable schedule, as in test_jobs_cli.py.

    Each job is added and claimed on its own, so that each claim takes just
    the job added (the others are finished, running, or due in 2100).
    """
    store = PostgresStore(dsn, schema=schema, keep_results=KEEP, keep_failed=KEEP)
    await store.open()
    try:
        await store.add([new_job("lost:once", PAST + 5 * DAY, delivery="at_most_once")])
        claim = await store.claim("w1", now=0, limit=10, lease=1e-6)
        assert [j.key for j in claim.jobs] == ["lost:once"]
        # w1 never renews: the next claim of another worker records it lost.
        claim = await store.claim("w2", now=0, limit=0, lease=1)
        assert [j.key for j in claim.lost] == ["lost:once"]

        await store.add([new_job("run:now", PAST + DAY)])
        claim = await store.claim("w1", now=0, limit=10, lease=LEASE)
        assert [j.key for j in claim.jobs] == ["run:now"]

        for key, day, state in [("bill:failed", 2, "failed"), ("bill:done", 3, "done")]:
            await store.add([new_job(key, PAST + day * DAY, "[[7]]")])
            claim = await store.claim("w1", now=0, limit=10, lease=60)
            assert [j.key for j in claim.jobs] == [key]
            ending = (
                Finished(claim.jobs[0].token, "failed", error="ValueError: boom")
                if state == "failed"
                else Finished(claim.jobs[0].token, "done", result='{"sent": 3}')
            )
            assert await store.finish([ending], now=0) == [True]

        await store.add([new_job("grace:missed", PAST + 4 * DAY, misfire_grace=1.0)])
        claim = await store.claim("w1", now=0, limit=10, lease=60)
        assert [j.key for j in claim.missed] == ["grace:missed"]

        assert await store.add(
            [
                new_job("mail:past", PAST, "[[1]]"),
                new_job("mail:future", FUTURE, '[[42], {"note": "hi"}]'),
            ]
        ) == ["added", "added"]
        trigger = Every(3600, start=FUTURE)
        await store.add_schedule(
            NewSchedule(
                id="hourly",
                trigger=json.dumps(trigger.to_dict()),
                given=json.dumps(trigger.to_dict()),
                function=FUNCTION,
                arguments="[[5]]",
                delivery="at_least_once",
                misfire_grace=None,
                coalesce="latest",
                max_catchup=100,
                overlap="skip",
                jitter=None,
                max_runs=None,
                next_fire=us(FUTURE),
            )
        )
    finally:
        await store.close()


@pytest.fixture
def schema() -> str:
    return f"cli_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def populated(postgres_dsn: str, schema: str) -> str:
    """The schema of a store holding ``ALL_KEYS`` and the ``hourly`` schedule."""
    anyio.run(_populate, postgres_dsn, schema)
    return schema


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the command line in this process: (exit status, stdout, stderr)."""
    capsys.readouterr()
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    status, out, err = run(capsys, *argv, "--json")
    assert (status, err) == (0, "")
    return json.loads(out)


def keys(jobs: list[dict[str, Any]]) -> list[str]:
    return [job["key"] for job in jobs]


def schema_exists(cluster: Cluster, schema: str) -> bool:
    with psycopg.connect(cluster.admin_dsn(), autocommit=True) as con:
        row = con.execute(
            "SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)
        ).fetchone()
    return row is not None


@pytest.fixture(autouse=True)
def _never_the_password(
    postgres_cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> Iterator[None]:
    """Whatever a test printed, the password was not in it."""
    yield
    out, err = capsys.readouterr()
    assert postgres_cluster.password not in out + err


# -- the commands, on a PostgreSQL store ------------------------------------------


def test_list_prints_the_same_table_as_for_sqlite(
    postgres_dsn: str, populated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(
        capsys, "--store", postgres_dsn, "--schema", populated, "list"
    )
    assert (status, err) == (0, "")
    assert out == (
        "DUE                   STATE    ATTEMPT  KEY           FUNCTION        "
        "ARGUMENTS\n"
        "2001-01-01T00:00:00Z  pending  0        mail:past     tests.cli:send  1\n"
        "2001-01-02T00:00:00Z  running  1        run:now       tests.cli:send\n"
        "2001-01-03T00:00:00Z  failed   1        bill:failed   tests.cli:send  7\n"
        "2001-01-04T00:00:00Z  done     1        bill:done     tests.cli:send  7\n"
        "2001-01-05T00:00:00Z  missed   0        grace:missed  tests.cli:send\n"
        "2001-01-06T00:00:00Z  lost     1        lost:once     tests.cli:send\n"
        "2100-01-01T00:00:00Z  pending  0        mail:future   tests.cli:send  42, "
        'note="hi"\n'
    )


def test_list_json_and_filters(
    postgres_dsn: str, populated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ("--store", postgres_dsn, "list", "--schema", populated)
    jobs = run_json(capsys, *base)
    assert keys(jobs) == ALL_KEYS
    assert jobs[-1] == {
        "key": "mail:future",
        "state": "pending",
        "function": FUNCTION,
        "arguments": {"args": [42], "kwargs": {"note": "hi"}},
        "due": "2100-01-01T00:00:00Z",
        "ready": "2100-01-01T00:00:00Z",
        "attempt": 0,
        "delivery": "at_least_once",
        "misfire_grace": None,
        "schedule_id": None,
        "lease_owner": None,
        "lease_until": None,
        "finished": None,
        "result": None,
        "error": None,
    }
    done = jobs[ALL_KEYS.index("bill:done")]
    assert done["result"] == {"sent": 3}
    assert STAMP.fullmatch(done["finished"])
    for filters, expected in [
        (["--state", "pending"], ["mail:past", "mail:future"]),
        (["--state", "lost", "--state", "missed"], ["grace:missed", "lost:once"]),
        (
            ["--due-from", "2001-01-02", "--due-to", "2001-01-04T00:00:00Z"],
            ["run:now", "bill:failed"],
        ),
        (["--key-prefix", "bill"], ["bill:failed", "bill:done"]),
        (["--key-prefix", "%"], []),  # data, not a LIKE pattern
        (["--key-prefix", "_"], []),
        (["--limit", "0"], ALL_KEYS),
    ]:
        assert keys(run_json(capsys, *base, *filters)) == expected, filters
    status, out, err = run(capsys, *base, "--limit", "2", "--json")
    assert status == 0
    assert keys(json.loads(out)) == ALL_KEYS[:2]
    assert err == "(the first 2 shown; more match: raise --limit, 0 for all)\n"


def test_show(
    postgres_dsn: str, populated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ("--store", postgres_dsn, "--schema", populated)
    status, out, err = run(capsys, *store, "show", "bill:failed")
    assert (status, err) == (0, "")
    assert STAMP.search(out.split("finished", 1)[1])
    finished = re.compile(r"^(finished\s+)\S+$", re.MULTILINE)
    assert finished.sub(r"\1<stamp>", out) == (
        "key            bill:failed\n"
        "state          failed\n"
        "function       tests.cli:send\n"
        "arguments      7\n"
        "due            2001-01-03T00:00:00Z\n"
        "ready          2001-01-03T00:00:00Z\n"
        "attempt        1\n"
        "delivery       at_least_once\n"
        "misfire_grace  -\n"
        "schedule_id    -\n"
        "lease_owner    -\n"
        "lease_until    -\n"
        "finished       <stamp>\n"
        "result         -\n"
        "error          ValueError: boom\n"
    )
    running = run_json(capsys, *store, "show", "run:now")
    assert (running["state"], running["attempt"], running["lease_owner"]) == (
        "running",
        1,
        "w1",
    )
    assert running["lease_until"] > "2100"
    assert run(capsys, *store, "show", "nope") == (
        1,
        "",
        f"{PROG}: no job with key 'nope'\n",
    )


def test_cancel(
    postgres_dsn: str, populated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ("--store", postgres_dsn, "--schema", populated)
    assert run(capsys, *store, "cancel", "mail:future") == (
        0,
        "cancelled 'mail:future'\n",
        "",
    )
    assert run_json(capsys, *store, "cancel", "mail:past") == {
        "key": "mail:past",
        "cancelled": True,
    }
    assert keys(run_json(capsys, *store, "list")) == ALL_KEYS[1:-1]
    status, out, err = run(capsys, *store, "cancel", "run:now")
    assert (status, out) == (1, "")
    assert re.fullmatch(
        f"{PROG}: cannot cancel: job 'run:now' is running \\(attempt 1, lease held "
        "by w1 until [^)]+\\): only a pending job can be cancelled\n",
        err,
    )
    status, out, err = run(capsys, *store, "cancel", "bill:done")
    assert (status, out) == (1, "")
    assert "job 'bill:done' is not pending: it is done (finished " in err
    assert run(capsys, *store, "cancel", "mail:future") == (
        1,
        "",
        f"{PROG}: cannot cancel: no job with key 'mail:future'\n",
    )
    assert keys(run_json(capsys, *store, "list")) == ALL_KEYS[1:-1]


def test_stats_and_schedules(
    postgres_dsn: str, populated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ("--store", postgres_dsn, "--schema", populated)
    assert run_json(capsys, *store, "stats") == {
        "counts": {
            "pending": 2,
            "running": 1,
            "done": 1,
            "failed": 1,
            "missed": 1,
            "lost": 1,
        },
        "total": 7,
        "schedules": 1,
        "next_due": "2001-01-01T00:00:00Z",
        "oldest_overdue": "2001-01-01T00:00:00Z",
    }
    status, out, err = run(capsys, *store, "stats")
    assert (status, err) == (0, "")
    assert out.splitlines()[6:9] == [
        "total           7",
        "schedules       1",
        "next due        2001-01-01T00:00:00Z",
    ]
    assert re.fullmatch(
        r"oldest overdue  2001-01-01T00:00:00Z \(\d+ days ago\)", out.splitlines()[-1]
    )
    status, out, err = run(capsys, *store, "schedules")
    assert (status, err) == (0, "")
    assert out == (
        "ID      TRIGGER" + " " * 58 + "NEXT FIRE             RUNS  MISSED  FUNCTION\n"
        "hourly  Every(timedelta(seconds=3600), start=2100-01-01T00:00:00+00:00)  "
        "2100-01-01T00:00:00Z  0     0       tests.cli:send\n"
    )
    [schedule] = run_json(capsys, *store, "schedules")
    assert (schedule["id"], schedule["next_fire"], schedule["overlap"]) == (
        "hourly",
        "2100-01-01T00:00:00Z",
        "skip",
    )


@durable("tests.cli_pg.remind")
async def remind(user: int, note: str = "") -> None:
    raise AssertionError("never due in these tests")


def test_jobs_added_by_a_scheduler_in_the_default_schema(
    postgres_dsn: str, postgres_cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--schema`` left out is the store's default schema, ``aioscheduler``."""

    async def add() -> None:
        async with TimedScheduler(store=postgres_dsn) as scheduler:
            await scheduler.durable_start_at(
                FUTURE, remind, 42, key="pg-r-42", kwargs={"note": "soon"}
            )

    postgres_cluster.psql_admin(
        "DROP SCHEMA IF EXISTS aioscheduler CASCADE", dbname="aioscheduler_test"
    )
    try:
        anyio.run(add)
        jobs = run_json(capsys, "--store", postgres_dsn, "list")
        assert [(j["key"], j["function"], j["arguments"]) for j in jobs] == [
            (
                "pg-r-42",
                "tests.cli_pg.remind",
                {"args": [42], "kwargs": {"note": "soon"}},
            )
        ]
        # The postgres:// spelling is the same store.
        other = "postgres://" + postgres_dsn.split("://", 1)[1]
        assert run_json(capsys, "--store", other, "list") == jobs
    finally:
        postgres_cluster.psql_admin(
            "DROP SCHEMA IF EXISTS aioscheduler CASCADE", dbname="aioscheduler_test"
        )


# -- what it refuses, creating nothing, never printing the password -----------------


def expect_unusable(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str | re.Pattern[str]
) -> None:
    for command in (["list"], ["stats", "--json"], ["cancel", "k"]):
        status, out, err = run(capsys, *argv, *command)
        assert (status, out) == (2, "")
        if isinstance(message, str):
            assert err == f"{PROG}: {message}\n"
        else:
            assert message.fullmatch(err), err


def test_a_schema_without_a_store_is_not_created(
    postgres_dsn: str,
    postgres_cluster: Cluster,
    schema: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    where = (
        f"PostgresStore(host='127.0.0.1', port='{postgres_cluster.port}', "
        f"dbname='aioscheduler_test', schema='{schema}')"
    )
    expect_unusable(
        capsys,
        ["--store", postgres_dsn, "--schema", schema],
        f"{where} is not an aioscheduler store (no schema '{schema}' with "
        "aioscheduler's tables in that database)",
    )
    assert not schema_exists(postgres_cluster, schema)
    # A schema that exists, without the tables, is left as it is.
    postgres_cluster.psql_admin(f'CREATE SCHEMA "{schema}"', dbname="aioscheduler_test")
    expect_unusable(
        capsys,
        ["--store", postgres_dsn, "--schema", schema],
        f"{where} is not an aioscheduler store (no schema '{schema}' with "
        "aioscheduler's tables in that database)",
    )
    with psycopg.connect(postgres_cluster.admin_dsn("aioscheduler_test")) as con:
        row = con.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = %s", (schema,)
        ).fetchone()
    assert row == (0,)


def test_a_store_made_by_a_newer_version(
    postgres_dsn: str,
    postgres_cluster: Cluster,
    populated: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as con:
        con.execute(
            f"UPDATE \"{populated}\".meta SET value = '99' "
            "WHERE name = 'schema_version'"
        )
    expect_unusable(
        capsys,
        ["--store", postgres_dsn, "--schema", populated],
        f"PostgresStore(host='127.0.0.1', port='{postgres_cluster.port}', "
        f"dbname='aioscheduler_test', schema='{populated}') was made by a newer "
        "aioscheduler (schema version 99; this version reads up to 1); upgrade "
        "aioscheduler to use it",
    )


def test_a_wrong_password_is_not_shown(
    postgres_cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "wr0ng-" + uuid.uuid4().hex
    dsn = postgres_cluster.dsn(password=secret)
    expect_unusable(
        capsys,
        ["--store", dsn],
        re.compile(
            f"{re.escape(PROG)}: PostgresStore\\(host='127.0.0.1', "
            f"port='{postgres_cluster.port}', dbname='aioscheduler_test', "
            "schema='aioscheduler'\\): cannot connect: .*password authentication "
            "failed.*\n",
            re.DOTALL,
        ),
    )
    for command in (["list"], ["stats"]):
        _, out, err = run(capsys, "--store", dsn, *command)
        assert secret not in out + err


def test_a_malformed_url_is_not_quoted(capsys: pytest.CaptureFixture[str]) -> None:
    secret = "s3cret-" + uuid.uuid4().hex
    expect_unusable(
        capsys,
        ["--store", f"postgresql://u:{secret}@127.0.0.1:5432/db?nonsense=1"],
        "conninfo is not a valid PostgreSQL connection string (not shown: it may "
        "hold a password)",
    )


def test_an_unreachable_server(capsys: pytest.CaptureFixture[str]) -> None:
    secret = "s3cret-" + uuid.uuid4().hex
    # Port 1 on the loopback interface: nothing listens there.
    status, out, err = run(
        capsys,
        "--store",
        f"postgresql://u:{secret}@127.0.0.1:1/db?connect_timeout=5",
        "stats",
    )
    assert (status, out) == (2, "")
    assert err.startswith(
        f"{PROG}: PostgresStore(host='127.0.0.1', port='1', dbname='db', "
        "schema='aioscheduler'): cannot connect: "
    )
    assert secret not in err


def test_a_bad_schema_name(
    postgres_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, "--store", postgres_dsn, "--schema", "", "list")
    assert (status, out) == (2, "")
    assert err == f"{PROG}: schema must be 1 to 63 bytes, got ''\n"


def test_without_psycopg_the_error_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg fails
    status, out, err = run(capsys, "--store", "postgresql://u@127.0.0.1/db", "list")
    assert (status, out) == (2, "")
    assert err == (
        f"{PROG}: PostgresStore needs psycopg 3: pip install 'aioscheduler[postgres]'\n"
    )


# -- the real entry point ----------------------------------------------------------


def cli_child(
    *argv: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error", "-m", "aioscheduler", "jobs", *argv],
        cwd=ROOT,
        env=child_env("native", env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_python_m_aioscheduler_jobs_in_a_child_process(
    postgres_dsn: str,
    postgres_cluster: Cluster,
    populated: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    child = cli_child("--store", postgres_dsn, "--schema", populated, "list", "--json")
    assert (child.returncode, child.stderr) == (0, "")
    assert keys(json.loads(child.stdout)) == ALL_KEYS
    child = cli_child(
        "--store", postgres_dsn, "--schema", populated, "cancel", "run:now"
    )
    assert child.returncode == 1
    assert "is running" in child.stderr
    child = cli_child("--store", postgres_dsn, "--schema", populated, "stats")
    assert child.returncode == 0
    assert "total           7\n" in child.stdout
    # The password from the environment rather than the command line.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGPASSWORD"] = postgres_cluster.password
    without = postgres_dsn.replace(f":{postgres_cluster.password}@", "@")
    assert postgres_cluster.password not in without
    child = cli_child("--store", without, "--schema", populated, "schedules", env=env)
    assert (child.returncode, child.stderr) == (0, "")
    assert child.stdout.startswith("ID      TRIGGER")
    # A wrong password: exit 2, and neither it nor the right one is shown.
    wrong = postgres_cluster.dsn(password="wr0ng-" + uuid.uuid4().hex)
    child = cli_child("--store", wrong, "--schema", populated, "stats")
    assert (child.returncode, child.stdout) == (2, "")
    assert "password authentication failed" in child.stderr
    assert "wr0ng-" not in child.stderr
    for output in (child.stdout, child.stderr):
        assert postgres_cluster.password not in output
