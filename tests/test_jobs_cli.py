"""``python -m aioscheduler jobs``: the command line that looks inside a store.

The command line is not loop behaviour: it runs its own ``anyio.run`` on
asyncio, so these tests are plain functions that call its ``main(argv)`` in
this process and read what it printed, plus child processes for the real
``python -m`` entry point. Every store is made through the store's own API
with fixed times (2001 in the past, 2100 in the future), so every output is
exact; only the "... ago" of ``stats`` depends on the clock.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import pytest

import aioscheduler.__main__
from aioscheduler import Every, SQLiteStore, StoreLocked, TimedScheduler, durable
from aioscheduler._jobs_cli import main
from aioscheduler.stores._fires import to_micros
from aioscheduler.stores._interface import Finished, NewJob, NewSchedule
from tests._engines import ROOT, child_env

DAY = timedelta(days=1)
PAST = datetime(2001, 1, 1, tzinfo=UTC)
FUTURE = datetime(2100, 1, 1, tzinfo=UTC)
FUNCTION = "tests.cli:send"
LEASE = 100 * 365 * 86_400.0  # the running job's lease outlives the tests
LEASE_UNTIL = "2100-12-09T00:00:00Z"  # run:now's: claimed at PAST + DAY


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
    assert delivery in ("at_least_once", "at_most_once")
    return NewJob(
        key,
        FUNCTION,
        arguments,
        us(due),
        "at_most_once" if delivery == "at_most_once" else "at_least_once",
        misfire_grace,
    )


async def _populate(path: Path) -> None:
    """One job in each state, a durable schedule, all at fixed times.

    Jobs are added one at a time and claimed at their own due time, so each
    claim takes exactly the job just added.
    """
    store = SQLiteStore(path, keep_results=LEASE, keep_failed=LEASE)
    await store.open()
    try:
        await store.add([new_job("lost:once", PAST + 5 * DAY, delivery="at_most_once")])
        claim = await store.claim("w1", now=us(PAST + 5 * DAY), limit=10, lease=1)
        assert [j.key for j in claim.jobs] == ["lost:once"]
        # The process "dies" with it running: reopening resolves its lease.
        await store.close()
        await store.open()
        claim = await store.claim("w2", now=us(PAST + 6 * DAY), limit=0, lease=1)
        assert [j.key for j in claim.lost] == ["lost:once"]

        await store.add([new_job("run:now", PAST + DAY)])
        claim = await store.claim("w1", now=us(PAST + DAY), limit=10, lease=LEASE)
        assert [j.key for j in claim.jobs] == ["run:now"]

        for key, day, state in [("bill:failed", 2, "failed"), ("bill:done", 3, "done")]:
            now = us(PAST + day * DAY)
            await store.add([new_job(key, PAST + day * DAY, "[[7]]")])
            claim = await store.claim("w1", now=now, limit=10, lease=60)
            assert [j.key for j in claim.jobs] == [key]
            ending = (
                Finished(claim.jobs[0].token, "failed", error="ValueError: boom")
                if state == "failed"
                else Finished(claim.jobs[0].token, "done", result='{"sent": 3}')
            )
            assert await store.finish([ending], now=now + 5_000_000) == [True]

        await store.add([new_job("grace:missed", PAST + 4 * DAY, misfire_grace=1.0)])
        claim = await store.claim(
            "w1", now=us(PAST + 4 * DAY) + 10_000_000, limit=10, lease=60
        )
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
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "jobs.db"
    anyio.run(_populate, path)
    return path


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


ALL_KEYS = [
    "mail:past",
    "run:now",
    "bill:failed",
    "bill:done",
    "grace:missed",
    "lost:once",
    "mail:future",
]


# -- list -----------------------------------------------------------------------


def test_list_prints_an_aligned_table_in_due_order(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, "--store", str(store_path), "list")
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


def test_list_json_gives_every_field_with_iso_times(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = run_json(capsys, "--store", str(store_path), "list")
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
    assert (done["result"], done["finished"]) == ({"sent": 3}, "2001-01-04T00:00:05Z")
    for job in jobs:  # every time parses back as an aware UTC datetime
        for name in ("due", "ready", "lease_until", "finished"):
            if job[name] is not None:
                assert datetime.fromisoformat(job[name]).utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (["--state", "pending"], ["mail:past", "mail:future"]),
        (
            ["--state", "failed", "--state", "lost", "--state", "missed"],
            ["bill:failed", "grace:missed", "lost:once"],
        ),
        (["--state", "running"], ["run:now"]),
        (["--state", "done"], ["bill:done"]),
        # due_from inclusive, due_to exclusive; a naive time is UTC
        (
            ["--due-from", "2001-01-02", "--due-to", "2001-01-04T00:00:00Z"],
            ["run:now", "bill:failed"],
        ),
        (["--due-from", "2001-01-06T00:00:00"], ["lost:once", "mail:future"]),
        (["--due-to", "2001-01-02T00:00:00.000001+00:00"], ["mail:past", "run:now"]),
        # 2001-01-01T01:00+01:00 is midnight UTC
        (["--due-to", "2001-01-01T01:00:00+01:00"], []),
        (["--key-prefix", "mail:"], ["mail:past", "mail:future"]),
        (["--key-prefix", "bill"], ["bill:failed", "bill:done"]),
        (["--key-prefix", "%"], []),  # data, not a LIKE pattern
        (["--state", "pending", "--key-prefix", "mail:f"], ["mail:future"]),
        (["--limit", "0"], ALL_KEYS),
        (["--limit", "7"], ALL_KEYS),
    ],
)
def test_list_filters(
    store_path: Path,
    capsys: pytest.CaptureFixture[str],
    filters: list[str],
    expected: list[str],
) -> None:
    assert keys(run_json(capsys, "--store", str(store_path), "list", *filters)) == (
        expected
    )


def test_list_limit_says_when_more_match(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(
        capsys, "--store", str(store_path), "list", "--limit", "2", "--json"
    )
    assert status == 0
    assert keys(json.loads(out)) == ALL_KEYS[:2]
    assert err == "(the first 2 shown; more match: raise --limit, 0 for all)\n"


def test_list_with_nothing_matching(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(store_path)
    assert run(capsys, "--store", path, "list", "--key-prefix", "zz") == (
        0,
        "no jobs match\n",
        "",
    )
    assert run_json(capsys, "--store", path, "list", "--key-prefix", "zz") == []


def test_store_and_json_go_before_or_after_the_command(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(store_path)
    expected = run(capsys, "--store", path, "list", "--json")
    assert expected[0] == 0
    assert run(capsys, "list", "--store", path, "--json") == expected
    assert run(capsys, "--json", "--store", path, "list") == expected


def test_control_characters_from_the_store_never_reach_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "jobs.db"

    async def add() -> None:
        store = SQLiteStore(path)
        await store.open()
        await store.add(
            [new_job("evil\x1b[2J\nkey", FUTURE, '[["\\u001b]0;x\\u0007"]]')]
        )
        await store.close()

    anyio.run(add)
    status, out, _ = run(capsys, "--store", str(path), "list")
    assert status == 0
    assert "\x1b" not in out
    assert "\x07" not in out
    assert out.count("\n") == 2  # the header and one row: no newline let through
    assert "evil\\x1b[2J\\nkey" in out
    status, out, _ = run(capsys, "--store", str(path), "show", "evil\x1b[2J\nkey")
    assert status == 0
    assert "\x1b" not in out
    assert "key            evil\\x1b[2J\\nkey\n" in out


# -- show -----------------------------------------------------------------------


def test_show_prints_every_field_with_arguments_decoded(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, "--store", str(store_path), "show", "bill:failed")
    assert (status, err) == (0, "")
    assert out == (
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
        "finished       2001-01-03T00:00:05Z\n"
        "result         -\n"
        "error          ValueError: boom\n"
    )


def test_show_json_of_a_running_job(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = run_json(capsys, "--store", str(store_path), "show", "run:now")
    assert job == {
        "key": "run:now",
        "state": "running",
        "function": FUNCTION,
        "arguments": {"args": [], "kwargs": {}},
        "due": "2001-01-02T00:00:00Z",
        "ready": "2001-01-02T00:00:00Z",
        "attempt": 1,
        "delivery": "at_least_once",
        "misfire_grace": None,
        "schedule_id": None,
        "lease_owner": "w1",
        "lease_until": LEASE_UNTIL,
        "finished": None,
        "result": None,
        "error": None,
    }


def test_show_of_an_absent_job_exits_1(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "--store", str(store_path), "show", "nope") == (
        1,
        "",
        "python -m aioscheduler jobs: no job with key 'nope'\n",
    )


# -- cancel ---------------------------------------------------------------------


def test_cancel_deletes_a_pending_job(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(store_path)
    assert run(capsys, "--store", path, "cancel", "mail:future") == (
        0,
        "cancelled 'mail:future'\n",
        "",
    )
    assert keys(run_json(capsys, "--store", path, "list")) == ALL_KEYS[:-1]
    # Once more: it is gone now.
    assert run(capsys, "--store", path, "cancel", "mail:future") == (
        1,
        "",
        "python -m aioscheduler jobs: cannot cancel: no job with key 'mail:future'\n",
    )
    assert run_json(capsys, "--store", path, "cancel", "mail:past") == {
        "key": "mail:past",
        "cancelled": True,
    }
    assert keys(run_json(capsys, "--store", path, "list")) == ALL_KEYS[1:-1]


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("nope", "no job with key 'nope'"),
        (
            "run:now",
            "job 'run:now' is running (attempt 1, lease held by w1 until "
            f"{LEASE_UNTIL}): only a pending job can be cancelled",
        ),
        (
            "bill:failed",
            "job 'bill:failed' is not pending: it is failed (finished "
            "2001-01-03T00:00:05Z); only a pending job can be cancelled",
        ),
        (
            "lost:once",
            # Recorded lost when the store was reopened: at the real time.
            "job 'lost:once' is not pending: it is lost (finished "
            "<reopened>); only a pending job can be cancelled",
        ),
    ],
)
def test_cancel_refuses_what_is_not_pending_with_exit_1(
    store_path: Path, capsys: pytest.CaptureFixture[str], key: str, why: str
) -> None:
    path = str(store_path)
    before = run_json(capsys, "--store", path, "list")
    reopened = re.compile(r"finished \d{4}-\d\d-\d\dT[\d:.]+Z\)")

    def timeless(text: str) -> str:
        if "<reopened>" not in why:
            return text
        return reopened.sub("finished <reopened>)", text)

    status, out, err = run(capsys, "--store", path, "cancel", key)
    assert (status, out) == (1, "")
    assert timeless(err) == f"python -m aioscheduler jobs: cannot cancel: {why}\n"
    status, out, err = run(capsys, "--store", path, "cancel", key, "--json")
    assert status == 1
    reply = json.loads(out)
    reply["reason"] = timeless(reply["reason"])
    assert reply == {"key": key, "cancelled": False, "reason": why}
    assert run_json(capsys, "--store", path, "list") == before  # nothing changed


# -- stats and schedules --------------------------------------------------------


def test_stats(store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(store_path)
    assert run_json(capsys, "--store", path, "stats") == {
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
    status, out, err = run(capsys, "--store", path, "stats")
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[:-1] == [
        "pending         2",
        "running         1",
        "done            1",
        "failed          1",
        "missed          1",
        "lost            1",
        "total           7",
        "schedules       1",
        "next due        2001-01-01T00:00:00Z",
    ]
    assert re.fullmatch(
        r"oldest overdue  2001-01-01T00:00:00Z \(\d+ days ago\)", lines[-1]
    )


def test_stats_of_an_empty_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "empty.db"

    async def create() -> None:
        store = SQLiteStore(path)
        await store.open()
        await store.close()

    anyio.run(create)
    stats = run_json(capsys, "--store", str(path), "stats")
    assert stats == {
        "counts": dict.fromkeys(
            ["pending", "running", "done", "failed", "missed", "lost"], 0
        ),
        "total": 0,
        "schedules": 0,
        "next_due": None,
        "oldest_overdue": None,
    }
    assert run(capsys, "--store", str(path), "schedules") == (
        0,
        "no durable schedules\n",
        "",
    )


def test_schedules(store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(store_path)
    status, out, err = run(capsys, "--store", path, "schedules")
    assert (status, err) == (0, "")
    assert out == (
        "ID      TRIGGER" + " " * 58 + "NEXT FIRE             RUNS  MISSED  FUNCTION\n"
        "hourly  Every(timedelta(seconds=3600), start=2100-01-01T00:00:00+00:00)  "
        "2100-01-01T00:00:00Z  0     0       tests.cli:send\n"
    )
    assert run_json(capsys, "--store", path, "schedules") == [
        {
            "id": "hourly",
            "trigger": {
                "type": "every",
                "period": 3600,
                "start": "2100-01-01T00:00:00+00:00",
                "end": None,
            },
            "trigger_text": (
                "Every(timedelta(seconds=3600), start=2100-01-01T00:00:00+00:00)"
            ),
            "function": FUNCTION,
            "arguments": {"args": [5], "kwargs": {}},
            "delivery": "at_least_once",
            "misfire_grace": None,
            "coalesce": "latest",
            "max_catchup": 100,
            "overlap": "skip",
            "jitter": None,
            "max_runs": None,
            "next_fire": "2100-01-01T00:00:00Z",
            "high_water": None,
            "runs": 0,
            "missed": 0,
            "skipped": 0,
        }
    ]


# -- stores made by a scheduler, and one a scheduler holds ----------------------


@durable("tests.cli.remind")
async def remind(user: int, note: str = "") -> None:
    raise AssertionError("never due in these tests")


def test_jobs_added_by_a_scheduler(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "jobs.db"

    async def add() -> None:
        async with TimedScheduler(store=str(path)) as scheduler:
            await scheduler.durable_start_at(
                FUTURE, remind, 42, key="r-42", kwargs={"note": "soon"}
            )
            await scheduler.durable_start_at(FUTURE + DAY, remind, 7, key="r-7")
            await scheduler.add_durable_schedule(
                Every(60, start=FUTURE), remind, 1, id="every-minute"
            )

    anyio.run(add)
    jobs = run_json(capsys, "--store", str(path), "list")
    assert [
        (j["key"], j["state"], j["function"], j["arguments"], j["due"]) for j in jobs
    ] == [
        (
            "r-42",
            "pending",
            "tests.cli.remind",
            {"args": [42], "kwargs": {"note": "soon"}},
            "2100-01-01T00:00:00Z",
        ),
        (
            "r-7",
            "pending",
            "tests.cli.remind",
            {"args": [7], "kwargs": {}},
            "2100-01-02T00:00:00Z",
        ),
    ]
    [schedule] = run_json(capsys, "--store", str(path), "schedules")
    assert (schedule["id"], schedule["next_fire"], schedule["trigger_text"]) == (
        "every-minute",
        "2100-01-01T00:00:00Z",
        "Every(timedelta(seconds=60), start=2100-01-01T00:00:00+00:00)",
    )


@pytest.fixture
def held(
    store_path: Path,
) -> Iterator[tuple[SQLiteStore, anyio.from_thread.BlockingPortal]]:
    """The store opened, with its process lock, by an event loop in a thread."""
    store = SQLiteStore(store_path)
    with anyio.from_thread.start_blocking_portal() as portal:
        portal.call(store.open)
        try:
            yield store, portal
        finally:
            portal.call(store.close)


def cli_child(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error", "-m", "aioscheduler", "jobs", *argv],
        cwd=ROOT,
        env=child_env("native"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_works_while_another_store_holds_the_lock(
    store_path: Path,
    held: tuple[SQLiteStore, anyio.from_thread.BlockingPortal],
    capsys: pytest.CaptureFixture[str],
) -> None:
    store, portal = held
    # The lock is held: a second runner is refused ...
    second = SQLiteStore(store_path)
    with pytest.raises(StoreLocked):
        anyio.run(second.open)
    # ... and the command line reads and cancels all the same.
    path = str(store_path)
    assert keys(run_json(capsys, "--store", path, "list")) == ALL_KEYS
    assert run_json(capsys, "--store", path, "stats")["total"] == 7
    assert run(capsys, "--store", path, "cancel", "mail:future")[0] == 0
    # The holder sees the cancel, and its next write is seen by the CLI.
    assert portal.call(store.get_job, "mail:future") is None
    assert portal.call(store.add, [new_job("late:add", FUTURE + DAY)]) == ["added"]
    # (Its open made run:now pending again: its worker was gone.)
    assert keys(run_json(capsys, "--store", path, "list", "--state", "pending")) == [
        "mail:past",
        "run:now",
        "late:add",
    ]
    # A child process, with the lock still held, the real entry point.
    child = cli_child("--store", path, "list", "--json")
    assert (child.returncode, child.stderr) == (0, "")
    assert json.loads(child.stdout) == run_json(capsys, "--store", path, "list")


def test_python_m_aioscheduler_jobs_in_a_child_process(store_path: Path) -> None:
    child = cli_child("--store", str(store_path), "list", "--json")
    assert (child.returncode, child.stderr) == (0, "")
    assert keys(json.loads(child.stdout)) == ALL_KEYS
    child = cli_child("--store", str(store_path), "cancel", "run:now")
    assert child.returncode == 1
    assert "is running" in child.stderr
    child = cli_child("--store", str(store_path.with_name("absent.db")), "stats")
    assert (child.returncode, child.stdout) == (2, "")
    assert "the file does not exist" in child.stderr
    assert not store_path.with_name("absent.db").exists()


def test_main_module_sends_only_a_first_jobs_to_the_cli(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    argv = ["jobs", "--store", str(store_path), "stats", "--json"]
    assert aioscheduler.__main__.main(argv) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 7
    # "jobs" elsewhere is the demo's (refused) argument, not the CLI.
    with pytest.raises(SystemExit) as exc:
        aioscheduler.__main__.main(["--backend", "asyncio", "jobs"])
    assert exc.value.code == 2
    assert "unrecognized arguments: jobs" in capsys.readouterr().err


# -- stores it cannot read: exit 2, nothing created or changed ------------------


def expect_unusable(
    capsys: pytest.CaptureFixture[str], store: str, message: str
) -> None:
    for command in (["list"], ["stats", "--json"], ["cancel", "k"]):
        status, out, err = run(capsys, "--store", store, *command)
        assert (status, out) == (2, "")
        assert err == f"python -m aioscheduler jobs: {message}\n"


def test_a_missing_file_is_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "jobs.db"
    expect_unusable(
        capsys, str(path), f"no store at {str(path)!r}: the file does not exist"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expect_unusable(
        capsys, str(tmp_path), f"no store at {str(tmp_path)!r}: it is a directory"
    )


def test_a_file_that_is_not_a_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "notes.txt"
    text = "not a database\n" * 100
    path.write_text(text)
    expect_unusable(
        capsys,
        str(path),
        f"{str(path)!r} is not a usable aioscheduler store: file is not a database",
    )
    assert path.read_text() == text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_sqlite_database_that_is_not_a_store_is_left_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE things (x)")
    con.commit()
    con.close()
    before = path.read_bytes()
    expect_unusable(
        capsys,
        str(path),
        f"{str(path)!r} is not an aioscheduler store (a SQLite database without "
        "aioscheduler's tables)",
    )
    assert path.read_bytes() == before  # no meta table, no switch to WAL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


def test_an_empty_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "jobs.db"
    path.touch()
    expect_unusable(
        capsys,
        str(path),
        f"{str(path)!r} is not an aioscheduler store (a SQLite database without "
        "aioscheduler's tables)",
    )
    assert path.stat().st_size == 0


def test_a_store_made_by_a_newer_version(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    con = sqlite3.connect(store_path)
    con.execute(
        "UPDATE aioscheduler_meta SET value = '99' WHERE name = 'schema_version'"
    )
    con.commit()
    con.close()
    expect_unusable(
        capsys,
        str(store_path),
        f"{str(store_path)!r} was made by a newer aioscheduler (schema version 99; "
        "this version reads up to 1); upgrade aioscheduler to use it",
    )


@pytest.mark.parametrize(
    "url", ["sqlite:///jobs.db", "mysql://u:secret@h/db", "redis://h/0"]
)
def test_a_store_url_of_another_kind_is_not_supported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    scheme = url.split(":", 1)[0]
    expect_unusable(
        capsys,
        url,
        f"store URLs of the form {scheme}://... are not supported; give the "
        "path of a SQLite store, or a postgresql:// URL",
    )


def test_schema_is_only_for_postgresql(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(
        capsys, "--store", str(store_path), "--schema", "jobs", "list"
    )
    assert (status, out) == (2, "")
    assert err == (
        "python -m aioscheduler jobs: --schema is for a PostgreSQL store (a "
        "postgresql:// URL); a SQLite store has no schema\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["list"],
            "--store is required: the path of a SQLite store, or a postgresql:// URL",
        ),
        (["--store", "x.db"], "the following arguments are required: COMMAND"),
        (["--store", "x.db", "list", "--state", "waiting"], "invalid choice"),
        (["--store", "x.db", "list", "--due-from", "soon"], "'soon' is not an ISO"),
        (["--store", "x.db", "list", "--limit", "-1"], "'-1' is not a count"),
        (["--store", "x.db", "list", "--limit", "many"], "'many' is not a count"),
        (["--store", "x.db", "show"], "the following arguments are required: KEY"),
        (["--store", "x.db", "purge"], "invalid choice: 'purge'"),
    ],
)
def test_usage_errors_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    status, out, err = run(capsys, *argv)
    assert (status, out) == (2, "")
    assert err.startswith("usage: python -m aioscheduler jobs")
    assert message in err
    assert not (tmp_path / "x.db").exists()
    assert not Path("x.db").exists()
