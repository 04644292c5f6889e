"""A fleet of real worker processes sharing one PostgresStore (issue #12).

Four child processes (``tests/_pg_worker.py``: two on asyncio, two on
Trio, native and AnyIO engines) each run ``TimedScheduler(store=
PostgresStore(dsn, lease=30 s (5 s where a worker is killed or stopped),
poll_interval=0.2 s))`` on one schema of the
session's throwaway cluster. A fifth, short-lived process adds the keyed
jobs with ``scheduler.durable_batch()``. Every run of a job writes a row
into ``runs`` (UNIQUE (key, attempt); for ``at_most_once`` jobs also into
``once``, PRIMARY KEY key) with its start by the database server's clock,
and into ``done`` when it ends: a duplicate run fails loudly (and is written
to ``violations``). The store keeps every finished row, so each job's final
state is read from the store itself.

Each fleet run prints, and requires to be 0:

* lost: a job whose final state is not ``done``, unless it is an
  ``at_most_once`` job of a worker that was killed or stopped, recorded
  ``lost`` (what that delivery promises; counted apart), or whose recorded
  completion matches no finished run;
* duplicated: a second run that the policy does not allow (any for
  ``at_most_once``; for ``at_least_once``, one whose earlier run was not on
  a killed or stopped worker), and every row of ``violations``;
* early: a run that started (by the database clock) before its due time.

Reruns that ``at_least_once`` allows are counted apart ("reruns").

``kill -9`` runs over seeds: 3 by default, ``AIOSCHEDULER_PG_SEEDS=20``
runs seeds 0..19, ``AIOSCHEDULER_PG_SEEDS=4,7`` those two. No assertion
depends on speed: every wait is for an event, under a generous deadline
that only turns a hang into a clear failure.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests._engines import ROOT, child_env
from tests.conftest import HAVE_TRIO

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL/SIGSTOP: POSIX"),
    pytest.mark.skipif(not HAVE_TRIO, reason="the fleet mixes asyncio and Trio"),
]

#: (loop, engine) of the four workers.
WORKERS = [
    ("asyncio", "native"),
    ("trio", "native"),
    ("asyncio", "anyio"),
    ("trio", "anyio"),
]
# Leases long enough that a worker starved of CPU for seconds on a busy
# machine keeps its jobs (a lapse there is the documented policy, not a bug,
# and would make these tests depend on the machine's load) ...
LEASE = 30.0
# ... except in the tests whose fault is a worker that stops renewing: there
# the others take over once this lapses.
FAULT_LEASE = 5.0
POLL = 0.2
#: Anything that should happen but has not in this long hangs.
TIMEOUT = 120.0


def pg_seeds(default: int) -> list[int]:
    """The seeds to run: ``AIOSCHEDULER_PG_SEEDS`` is a count or a list."""
    text = os.environ.get("AIOSCHEDULER_PG_SEEDS", "").strip()
    if not text:
        return list(range(default))
    if "," in text:
        return [int(part) for part in text.split(",") if part.strip()]
    return list(range(int(text)))


def wait_until(what: str, check: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not so after {timeout:.0f} s")
        time.sleep(0.02)


# -- the fleet -------------------------------------------------------------------------


class Worker:
    """A child interpreter running ``tests._pg_worker``."""

    def __init__(self, fleet: Fleet, name: str, path: int, **config: Any) -> None:
        loop, engine = WORKERS[path % len(WORKERS)]
        self.name = name
        self.loop = f"{loop}+anyio" if engine == "anyio" else loop
        self.ack = fleet.workdir / f"{name}.ack"
        self.err = fleet.workdir / f"{name}.err"
        self.stopped = False
        full = {
            "mode": "serve",
            "dsn": fleet.dsn,
            "schema": fleet.schema,
            "lease": LEASE,
            "poll": POLL,
            "loop": loop,
            "ack": str(self.ack),
            "stop": str(fleet.stop_file),
            **config,
        }
        with self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests._pg_worker", json.dumps(full)],
                cwd=ROOT,
                env=child_env(engine),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def describe(self) -> str:
        return f"{self.name} (pid {self.pid}, {self.loop})"

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def lines(self) -> list[str]:
        try:
            return self.ack.read_text().splitlines()
        except FileNotFoundError:
            return []

    def wait_for(self, word: str) -> list[str]:
        """Wait for an ack line starting with *word*; return its fields."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            for line in self.lines():
                if line.split()[0] == word:
                    return line.split()
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.describe()} exited with {self.proc.returncode} "
                    f"before {word!r}:\n{self.stderr()[-4000:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.describe()} did not write {word!r} in {TIMEOUT:.0f} s:"
                    f"\n{self.stderr()[-4000:]}"
                )
            time.sleep(0.02)

    def backend_pid(self) -> int:
        return int(self.wait_for("ready")[2])

    def signal(self, sig: signal.Signals) -> None:
        """Send *sig* to this child (and only it)."""
        assert self.proc.poll() is None, f"{self.describe()} is not running"
        os.kill(self.proc.pid, sig)

    def finish(self) -> None:
        """Wait for the clean exit that the stop file asks for."""
        try:
            code = self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.describe()} did not stop in {TIMEOUT:.0f} s:\n"
                f"{self.stderr()[-4000:]}"
            ) from None
        assert code == 0, f"{self.describe()} exited with {code}:\n{self.stderr()}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)  # if it was stopped
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=TIMEOUT)


@dataclass
class Tally:
    """What a fleet run did, job by job."""

    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    early: list[str] = field(default_factory=list)
    reruns: list[str] = field(default_factory=list)
    recorded_lost: list[str] = field(default_factory=list)
    runs_by_pid: dict[int, int] = field(default_factory=dict)

    def line(self) -> str:
        return (
            f"lost={len(self.lost)} duplicated={len(self.duplicated)} "
            f"early={len(self.early)} | allowed: reruns (at_least_once)="
            f"{len(self.reruns)} recorded lost (at_most_once)="
            f"{len(self.recorded_lost)}"
        )

    def check(self) -> None:
        assert (self.lost, self.duplicated, self.early) == ([], [], []), (
            f"{self.line()}\nlost: {self.lost[:20]}\n"
            f"duplicated: {self.duplicated[:20]}\nearly: {self.early[:20]}"
        )


class Fleet:
    """A schema, its test tables, and the processes that share it."""

    def __init__(self, dsn: str, workdir: Path) -> None:
        self.dsn = dsn
        self.workdir = workdir
        self.schema = f"fleet_{uuid.uuid4().hex[:12]}"
        self.stop_file = workdir / "stop"
        self.workers: list[Worker] = []
        self.faulted: set[int] = set()  # pids of workers killed or stopped
        self.expected: dict[str, str] = {}  # key -> delivery
        self.done: set[tuple[str, int]] = set()
        s = self.schema
        with self.db() as con:
            con.execute(f"CREATE SCHEMA {s}")
            con.execute(
                f"CREATE TABLE {s}.runs (key TEXT NOT NULL, attempt INT NOT NULL, "
                "pid INT NOT NULL, started BIGINT NOT NULL, due BIGINT NOT NULL, "
                "hold BIGINT NOT NULL, UNIQUE (key, attempt))"
            )
            con.execute(f"CREATE TABLE {s}.once (key TEXT PRIMARY KEY)")
            con.execute(
                f"CREATE TABLE {s}.done (key TEXT NOT NULL, attempt INT NOT NULL, "
                "pid INT NOT NULL, UNIQUE (key, attempt))"
            )
            con.execute(
                f"CREATE TABLE {s}.violations (key TEXT, attempt INT, pid INT, "
                "error TEXT)"
            )

    def db(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn, autocommit=True)

    def query(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        with self.db() as con:
            return con.execute(sql.format(s=self.schema).encode(), params).fetchall()

    def start(self, count: int, **config: Any) -> list[Worker]:
        first = len(self.workers)
        new = [
            Worker(self, f"worker{first + i}", first + i, **config)
            for i in range(count)
        ]
        self.workers += new
        for worker in new:
            worker.wait_for("ready")
        return new

    def add(self, spec: list[tuple[str, str, float, float]], path: int = 0) -> None:
        """Add *spec* (key, delivery, delay, hold) from a short-lived process."""
        for key, delivery, _, _ in spec:
            self.expected[key] = delivery
        name = f"adder{len(list(self.workdir.glob('adder*.spec')))}"
        spec_file = self.workdir / f"{name}.spec"
        spec_file.write_text(json.dumps(spec))
        adder = Worker(self, name, path, mode="add", spec=str(spec_file))
        adder.wait_for("served")
        adder.finish()

    def live(self) -> int:
        rows = self.query(
            "SELECT COUNT(*) FROM {s}.jobs WHERE state IN ('pending', 'running')"
        )
        return int(rows[0][0])

    def wait_all_ended(self) -> None:
        """Wait until the store holds no pending or running job."""

        def ended() -> bool:
            for worker in self.workers:
                if worker.pid not in self.faulted and worker.proc.poll() is not None:
                    raise AssertionError(
                        f"{worker.describe()} died:\n{worker.stderr()[-4000:]}"
                    )
            return self.live() == 0

        wait_until("every job ended", ended)

    def stop(self) -> None:
        self.stop_file.touch()
        for worker in self.workers:
            if worker.pid not in self.faulted or worker.proc.poll() is None:
                worker.finish()

    def close(self) -> None:
        for worker in self.workers:
            worker.kill()

    def in_flight(self, pid: int, margin: float) -> dict[str, str]:
        """Jobs running on *pid* now, with at least *margin* s to go: one
        key per delivery."""
        rows = self.query(
            "SELECT r.key, j.delivery FROM {s}.runs r "
            "JOIN {s}.jobs j ON j.key = r.key AND j.attempt = r.attempt "
            "LEFT JOIN {s}.done d ON d.key = r.key AND d.attempt = r.attempt "
            "WHERE r.pid = %s AND d.key IS NULL AND j.state = 'running' "
            "AND r.started + r.hold - %s > "
            "floor(extract(epoch FROM clock_timestamp()) * 1000000) "
            "ORDER BY r.started DESC",
            (pid, round(margin * 1e6)),
        )
        found: dict[str, str] = {}
        for key, delivery in rows:
            found.setdefault(delivery, key)
        return found

    def tally(self) -> Tally:
        t = Tally()
        store = {
            key: (state, attempt, delivery, due)
            for key, state, attempt, delivery, due in self.query(
                "SELECT key, state, attempt, delivery, due FROM {s}.jobs"
            )
        }
        runs: dict[str, list[tuple[int, int, int, int]]] = defaultdict(list)
        for key, attempt, pid, started, due in self.query(
            "SELECT key, attempt, pid, started, due FROM {s}.runs ORDER BY attempt"
        ):
            runs[key].append((attempt, pid, started, due))
            t.runs_by_pid[pid] = t.runs_by_pid.get(pid, 0) + 1
        done = {(k, a) for k, a in self.query("SELECT key, attempt FROM {s}.done")}
        self.done = done
        for key, attempt, pid, error in self.query(
            "SELECT key, attempt, pid, error FROM {s}.violations"
        ):
            t.duplicated.append(f"{key} attempt {attempt} on {pid}: {error}")
        for key, delivery in self.expected.items():
            state, attempt, stored, store_due = store.get(key, ("missing", 0, "", 0))
            assert stored in (delivery, "")
            ran = runs.get(key, [])
            if state == "done" and (key, attempt) in done:
                pass
            elif (
                state == "lost"
                and delivery == "at_most_once"
                and self.faulted
                and all(pid in self.faulted for _, pid, _, _ in ran)
            ):
                t.recorded_lost.append(key)
            else:
                t.lost.append(f"{key}: {state} attempt {attempt}, runs {ran}")
            if len(ran) > 1:
                if delivery == "at_least_once" and all(
                    pid in self.faulted for _, pid, _, _ in ran[:-1]
                ):
                    t.reruns.append(key)
                else:
                    ended = sorted(a for k, a in done if k == key)
                    t.duplicated.append(
                        f"{key} ({delivery}): runs {ran}, ended attempts {ended}"
                    )
            for attempt_, pid, started, due in ran:
                # The run's due (from current_job()) is the row's.
                assert due == store_due or state == "missing", (key, due, store_due)
                if started < due:
                    t.early.append(
                        f"{key} attempt {attempt_} on {pid}: {started}<{due}"
                    )
        return t


@pytest.fixture
def fleet(postgres_dsn: str, tmp_path: Path) -> Iterator[Fleet]:
    f = Fleet(postgres_dsn, tmp_path)
    try:
        yield f
    finally:
        f.close()


def make_spec(
    rng: random.Random,
    count: int,
    *,
    delays: tuple[float, float],
    holds: tuple[float, float],
    prefix: str = "job",
) -> list[tuple[str, str, float, float]]:
    return [
        (
            f"{prefix}-{i}",
            "at_most_once" if rng.random() < 0.5 else "at_least_once",
            rng.uniform(*delays),
            rng.uniform(*holds),
        )
        for i in range(count)
    ]


# -- the tests -------------------------------------------------------------------------


def test_ten_thousand_jobs_over_four_workers_each_run_once(fleet: Fleet) -> None:
    fleet.start(4)
    rng = random.Random(12)
    fleet.add(make_spec(rng, 10_000, delays=(0.5, 3.0), holds=(0.0, 0.02)))
    fleet.wait_all_ended()
    fleet.stop()
    t = fleet.tally()
    print(f"\n10,000 jobs, 4 workers: {t.line()}; runs by pid {t.runs_by_pid}")
    t.check()
    assert (t.reruns, t.recorded_lost) == ([], [])
    assert sum(t.runs_by_pid.values()) == 10_000
    assert set(t.runs_by_pid) >= {w.pid for w in fleet.workers}  # all took part


def wait_in_flight(fleet: Fleet, victim: Worker, margin: float) -> dict[str, str]:
    """Wait until *victim* runs a job of each delivery with *margin* s to go."""
    found: dict[str, str] = {}

    def both() -> bool:
        nonlocal found
        found = fleet.in_flight(victim.pid, margin)
        return len(found) == 2

    wait_until(f"{victim.describe()} runs jobs of both deliveries", both)
    return found


@pytest.mark.parametrize("seed", pg_seeds(3))
def test_kill_9_a_worker_mid_job(fleet: Fleet, seed: int) -> None:
    rng = random.Random(seed)
    fleet.start(4, lease=FAULT_LEASE)
    fleet.add(make_spec(rng, 500, delays=(0.3, 2.0), holds=(0.2, 0.8)))
    victim = rng.choice(fleet.workers)
    time.sleep(rng.uniform(0.0, 1.0))  # the kill lands somewhere else each seed
    chosen = wait_in_flight(fleet, victim, 0.15)
    victim.signal(signal.SIGKILL)
    fleet.faulted.add(victim.pid)
    victim.proc.wait(timeout=TIMEOUT)
    fleet.wait_all_ended()
    fleet.stop()
    t = fleet.tally()
    print(
        f"\nseed {seed}: killed {victim.describe()}: {t.line()}; "
        f"runs by pid {t.runs_by_pid}"
    )
    t.check()
    # Its at_least_once job ran again elsewhere, as attempt 2; its
    # at_most_once job is recorded lost, and ran once.
    again = chosen["at_least_once"]
    runs = sorted(
        fleet.query("SELECT attempt, pid FROM {s}.runs WHERE key = %s", (again,))
    )
    assert len(runs) == 2, runs
    assert runs[0] == (1, victim.pid)
    assert runs[1][0] == 2
    assert runs[1][1] != victim.pid
    assert (2, again) in {(a, k) for k, a in fleet.done}
    lost = chosen["at_most_once"]
    state = fleet.query("SELECT state FROM {s}.jobs WHERE key = %s", (lost,))
    assert state == [("lost",)]
    assert lost in t.recorded_lost
    assert again in t.reruns


def stop_outside_a_transaction(fleet: Fleet, victim: Worker) -> None:
    """SIGSTOP *victim* where its store connection is between transactions.

    A worker stopped inside one (its claim or its renewal) holds that
    transaction's row locks until it runs again: the others skip those rows
    (SKIP LOCKED), so its leases could not expire meanwhile. That case is
    not this test's (see the report of issue #12); here the stop is retried
    until it lands between transactions.
    """
    backend = victim.backend_pid()
    for _ in range(1000):
        victim.signal(signal.SIGSTOP)
        time.sleep(0.05)  # a statement sent just before the stop completes
        state = fleet.query(
            "SELECT state FROM pg_stat_activity WHERE pid = %s", (backend,)
        )
        if state == [("idle",)]:
            return
        victim.signal(signal.SIGCONT)
        time.sleep(0.005)
    raise AssertionError(f"{victim.describe()} was never stopped between transactions")


def test_sigstop_a_worker_past_its_lease(fleet: Fleet) -> None:
    rng = random.Random(4321)
    fleet.start(4, lease=FAULT_LEASE)
    fleet.add(make_spec(rng, 400, delays=(0.5, 2.0), holds=(0.5, 1.0)))
    victim = fleet.workers[1]  # Trio
    chosen = wait_in_flight(fleet, victim, 0.3)
    stop_outside_a_transaction(fleet, victim)
    fleet.faulted.add(victim.pid)
    again, lost = chosen["at_least_once"], chosen["at_most_once"]
    # Past its lease, the others take over: the at_least_once job runs
    # again (attempt 2), the at_most_once one is recorded lost.
    wait_until(
        "the stopped worker's jobs are resolved by the others",
        lambda: (
            fleet.query(
                "SELECT 1 FROM {s}.runs WHERE key = %s AND attempt = 2", (again,)
            )
            != []
            and fleet.query("SELECT state FROM {s}.jobs WHERE key = %s", (lost,))
            == [("lost",)]
        ),
    )
    victim.signal(signal.SIGCONT)
    fleet.wait_all_ended()
    fleet.stop()
    t = fleet.tally()
    print(f"\nSIGSTOP {victim.describe()}: {t.line()}; runs by pid {t.runs_by_pid}")
    t.check()
    # Its late completions were rejected: the store kept the outcome of the
    # second attempt, and the lost record; the worker said so.
    rows = fleet.query(
        "SELECT key, state, attempt FROM {s}.jobs WHERE key IN (%s, %s)",
        (again, lost),
    )
    assert sorted(rows) == sorted([(again, "done", 2), (lost, "lost", 1)]), rows

    def runs_of(key: str) -> list[tuple[Any, ...]]:
        return sorted(
            fleet.query("SELECT attempt, pid FROM {s}.runs WHERE key = %s", (key,))
        )

    twice = runs_of(again)
    assert len(twice) == 2, twice
    assert twice[0] == (1, victim.pid)
    assert twice[1][0] == 2
    assert twice[1][1] != victim.pid
    assert runs_of(lost) == [(1, victim.pid)]
    warned = victim.stderr()
    assert (
        "lost its lease (another worker may run it): cancelled" in warned
        or "its lease could not be renewed in time" in warned
        or "was not recorded: its lease was lost" in warned
    ), warned
    assert again in t.reruns
    assert lost in t.recorded_lost


def test_a_worker_started_while_others_run_takes_its_share(fleet: Fleet) -> None:
    rng = random.Random(99)
    fleet.start(3, concurrency=20)
    fleet.add(make_spec(rng, 300, delays=(0.3, 1.0), holds=(0.2, 0.4)))
    wait_until(
        "the first jobs ran", lambda: bool(fleet.query("SELECT 1 FROM {s}.done"))
    )
    assert fleet.live() > 0  # the others are still at it
    (late,) = fleet.start(1, concurrency=20)
    fleet.add(make_spec(rng, 400, delays=(0.2, 1.0), holds=(0.1, 0.3), prefix="late"))
    fleet.wait_all_ended()
    fleet.stop()
    t = fleet.tally()
    print(f"\nlate joiner {late.describe()}: {t.line()}; runs by pid {t.runs_by_pid}")
    t.check()
    assert (t.reruns, t.recorded_lost) == ([], [])
    assert t.runs_by_pid.get(late.pid, 0) > 0, t.runs_by_pid


def test_a_schedule_every_second_runs_once_per_fire_time(fleet: Fleet) -> None:
    fleet.start(4)
    adder = Worker(fleet, "adder", 0, mode="add-schedule")
    adder.wait_for("served")
    adder.finish()
    wait_until(
        "six fire times ran",
        lambda: (
            len(fleet.query("SELECT 1 FROM {s}.runs WHERE key LIKE 'tick@%%'")) >= 6
        ),
    )
    fleet.stop()
    runs = fleet.query(
        "SELECT r.key, r.attempt, r.pid, r.started, r.due, j.due FROM {s}.runs r "
        "JOIN {s}.jobs j USING (key) ORDER BY r.due"
    )
    keys = [key for key, *_ in runs]
    early = [key for key, _, _, started, due, _ in runs if started < due]
    print(
        f"\nEvery(1 s) on 4 workers: {len(runs)} fire times run, "
        f"duplicated={len(keys) - len(set(keys))} early={len(early)}; by pid "
        f"{sorted(set(pid for _, _, pid, *_ in runs))}"
    )
    violations = fleet.query("SELECT * FROM {s}.violations")
    assert (len(keys) - len(set(keys)), early, violations) == (0, [], [])
    assert all(attempt == 1 for _, attempt, *_ in runs)
    assert all(due == row_due for *_, due, row_due in runs)
    # One run per fire time, named by its fire time, a second apart.
    fires = [due for *_, due, _ in runs]
    assert all(b - a >= 1_000_000 for a, b in itertools.pairwise(fires))
    assert all(key.startswith("tick@") for key in keys)
