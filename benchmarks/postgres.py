"""Durable jobs shared by worker processes through PostgresStore, against a
raw psycopg floor.

    python -m benchmarks.postgres [--quick] [--repeat R] [--json out.json]
                                  [--only P1,P1B,P2,P3] [--no-fsync]

Starts its own throwaway PostgreSQL cluster (``initdb`` into a temporary
directory, ``pg_ctl`` on 127.0.0.1 and a free port, ``fsync`` on; see
``benchmarks/_pgcluster.py``), stopped and deleted at the end.

Every run gets a fresh schema made by a :class:`PostgresStore` (so the
store's tables and indexes), filled with ``scheduler.durable_batch()`` in
batches of 1,000 with jobs due from an hour ahead, then moved in time in one
``UPDATE`` (and ``VACUUM FULL``) so that the first is due a few seconds after
the worker processes start. Each job is an empty durable function that notes
its key, start and due time (``current_job()``); each worker writes what it
ran to a file at the end. Lateness is start minus due, both by the database
server's clock (the claim's; on this one machine, also the wall clock).

P1. 1, 2 and 4 worker processes (asyncio; asyncio + trio; 2 + 2), each a
    ``TimedScheduler(store=PostgresStore(...), durable_concurrency=1024)``,
    200,000 jobs due evenly over 20 s: jobs/s (jobs / (last start - first
    due)), lateness p50 / p99 / max, and duplicates and losses (keys run
    more than once, or never: both must be 0).
P1b. Capacity: 4 workers, the 200,000 jobs all due at once (the P1 rates
    are capped by the 10,000/s offered): jobs / (last start - due).
P2. p99 lateness with 4 workers at half the rate they sustained in P1.
P3. 4 workers (lease 5 s), one killed with SIGKILL halfway (at a moment
    it holds leases): the time from
    the kill until every job it held a lease on has started in another
    worker. Target: within lease + poll_interval.

Floor, in the same run: the same number of processes running a raw psycopg
loop over the same table shape, one transaction per round: delete the jobs
of the last claim (fenced on id and attempt), then claim up to 256 due jobs
(``FOR UPDATE SKIP LOCKED``, by the server's ``clock_timestamp()``); idle,
it sleeps until the next due time (at most 50 ms). Lateness: the claim's
server time minus due. P3's floor is the least the rule allows: the time
from the kill until the last lease of the killed worker expired.

Real time on a shared machine: read medians of several runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import anyio

import aioscheduler
from aioscheduler import PostgresStore, TimedScheduler, current_job, durable

Result = dict[str, Any]

FUNCTION = "benchmarks.postgres:job"
ROOT = Path(__file__).parent.parent
DSN_ENV = "AIOSCHEDULER_BENCH_DSN"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)
DB_NOW = "floor(extract(epoch FROM clock_timestamp()) * 1000000)::bigint"
#: The floor's claim size (the feeder's CLAIM_BATCH).
FLOOR_BATCH = 256
#: Jobs are added due from this far ahead, then moved (µs).
PARKED_US = 3600 * 1_000_000


# -- the job and the worker processes ------------------------------------------------

ran: list[tuple[str, datetime, datetime]] = []


@durable(FUNCTION)
async def job() -> None:
    """Note the key, the start and the due time: nothing else."""
    c = current_job()
    ran.append((c.key, c.started, c.scheduled))


def _micros(moment: datetime) -> int:
    return (moment - EPOCH) // ONE_US


def _stdin_closed(stop: threading.Event | None = None) -> None:
    """Block until the parent closes our stdin (the signal to stop)."""
    sys.stdin.buffer.read()
    if stop is not None:
        stop.set()


async def _ours(dsn: str, schema: str, lease: float, out: Path) -> None:
    store = PostgresStore(dsn, schema=schema, lease=lease)
    async with TimedScheduler(store=store, durable_concurrency=1024) as s:
        print("ready", flush=True)
        await anyio.to_thread.run_sync(_stdin_closed)
        await s.aclose()
    await anyio.Path(out).write_text(
        json.dumps([[key, _micros(start), _micros(due)] for key, start, due in ran])
    )


def _floor(dsn: str, schema: str, lease: float, out: Path) -> None:
    import psycopg

    s = '"' + schema.replace('"', '""') + '"'
    claim = (
        f"WITH c AS (SELECT id FROM {s}.jobs WHERE state = 'pending' "
        "AND ready <= %s ORDER BY ready, id LIMIT %s FOR UPDATE SKIP LOCKED) "
        f"UPDATE {s}.jobs j SET state = 'running', lease_owner = %s, "
        "lease_until = %s, attempt = j.attempt + 1 FROM c WHERE j.id = c.id "
        "RETURNING j.id, j.key, j.due, j.attempt"
    )
    delete = (
        f"DELETE FROM {s}.jobs j USING unnest(%s::bigint[], %s::int[]) "
        "AS t(id, attempt) WHERE j.id = t.id AND j.attempt = t.attempt "
        "AND j.lease_owner = %s"  # (a lease owner only while running)
    )
    owner = f"floor:{os.getpid()}"
    lease_us = round(lease * 1e6)
    records: list[tuple[str, int, int]] = []
    stop = threading.Event()
    threading.Thread(target=_stdin_closed, args=(stop,), daemon=True).start()
    with psycopg.connect(dsn, autocommit=True) as con:
        print("ready", flush=True)
        held: list[tuple[int, int]] = []
        while True:
            with con.transaction():
                if held:
                    con.execute(
                        delete,
                        ([h[0] for h in held], [h[1] for h in held], owner),
                    )
                    held = []
                if stop.is_set():
                    break
                row = con.execute(f"SELECT {DB_NOW}").fetchone()
                assert row is not None
                now = int(row[0])
                rows = con.execute(
                    claim, (now, FLOOR_BATCH, owner, now + lease_us)
                ).fetchall()
                if not rows:
                    nxt = con.execute(
                        f"SELECT MIN(ready) FROM {s}.jobs WHERE state = 'pending'"
                    ).fetchone()
            if rows:
                for id_, key, due, attempt in rows:
                    records.append((key, now, due))
                    held.append((id_, attempt))
                continue
            wait = 0.05
            if nxt is not None and nxt[0] is not None:
                wait = min(wait, max(0.0, (int(nxt[0]) - now) / 1e6))
            stop.wait(wait)
    out.write_text(json.dumps(records))


def _child(kind: str, backend: str, schema: str, lease: float, out: Path) -> None:
    dsn = os.environ[DSN_ENV]
    if kind == "ours":
        anyio.run(_ours, dsn, schema, lease, out, backend=backend)
    else:
        _floor(dsn, schema, lease, out)


# -- the parent: set-up, runs, measurements -------------------------------------------


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    out: Path
    backend: str
    killed: bool = False


@dataclass
class Outcome:
    """What one run of one workload measured."""

    jobs: int
    rate: float  # jobs / (last start - first due)
    p50: float  # lateness, seconds
    p99: float
    max: float
    duplicates: int
    missing: int
    add_rate: float = 0.0  # durable_batch() adds/s (ours only)
    absorb: float | None = None  # P3: kill to the last of its jobs rerun (s)
    expiry: float | None = None  # P3: kill to the last of its leases expired (s)
    held: int = 0  # P3: jobs the killed worker held leases on
    extra: dict[str, Any] = field(default_factory=dict)


def _percentile(values: Sequence[int], q: float) -> int:
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


class Bench:
    def __init__(self, dsn: str, tmp: Path) -> None:
        self.dsn = dsn
        self.tmp = tmp

    def connect(self) -> Any:
        import psycopg

        return psycopg.connect(self.dsn, autocommit=True)

    def db_now(self) -> int:
        with self.connect() as con:
            row = con.execute(f"SELECT {DB_NOW}").fetchone()
        return int(row[0])

    # -- tables ------------------------------------------------------------------

    async def _fill(self, schema: str, n: int, seconds: float, base: int) -> float:
        """Add *n* jobs due over *seconds* from *base* (µs) with
        ``durable_batch()``, 1,000 per commit; return adds/s."""
        store = PostgresStore(self.dsn, schema=schema)
        step = seconds * 1e6 / n
        async with TimedScheduler(store=store) as s:
            begin = time.perf_counter()
            for start in range(0, n, 1000):
                async with s.durable_batch() as batch:
                    for i in range(start, min(n, start + 1000)):
                        when = EPOCH + timedelta(microseconds=base + round(i * step))
                        batch.start_at(when, job, key=f"j{i:07d}")
            elapsed = time.perf_counter() - begin
            await s.aclose()
        return n / elapsed

    def new_table(self, n: int, seconds: float) -> tuple[str, float]:
        """A fresh schema holding *n* jobs due over *seconds*, parked an hour
        ahead; return (schema, adds/s)."""
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        base = self.db_now() + PARKED_US
        rate = anyio.run(self._fill, schema, n, seconds, base)
        return schema, rate

    def copy_table(self, source: str) -> str:
        """A fresh schema (made by a PostgresStore) with *source*'s jobs."""
        schema = f"bench_{uuid.uuid4().hex[:10]}"

        async def create() -> None:
            store = PostgresStore(self.dsn, schema=schema)
            await store.open()
            await store.close()

        anyio.run(create)
        columns = (
            "key, function, arguments, due, ready, state, attempt, delivery, "
            "misfire_grace, schedule_id, created"
        )
        with self.connect() as con:
            con.execute(
                f"INSERT INTO {schema}.jobs ({columns}) "
                f"SELECT {columns} FROM {source}.jobs ORDER BY id"
            )
        return schema

    def move_due(self, schema: str, first_due: int) -> None:
        """Make the earliest job due at *first_due* (µs), keeping the gaps;
        then ``VACUUM FULL ANALYZE`` (a table as compact as a fresh one)."""
        with self.connect() as con:
            with con.transaction():
                row = con.execute(f"SELECT MIN(due) FROM {schema}.jobs").fetchone()
                shift = int(row[0]) - first_due
                con.execute(
                    f"UPDATE {schema}.jobs SET due = due - %s, ready = ready - %s",
                    (shift, shift),
                )
            con.execute(f"VACUUM FULL ANALYZE {schema}.jobs")

    def drop(self, schema: str) -> None:
        with self.connect() as con:
            con.execute(f"DROP SCHEMA {schema} CASCADE")

    # -- a run ----------------------------------------------------------------------

    def spawn(self, kind: str, backend: str, schema: str, lease: float) -> Worker:
        out = self.tmp / f"{kind}-{uuid.uuid4().hex[:8]}.json"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.postgres",
                "--child",
                kind,
                "--backend",
                backend,
                "--schema",
                schema,
                "--lease",
                str(lease),
                "--out",
                str(out),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            env={**os.environ, DSN_ENV: self.dsn},
        )
        return Worker(proc, out, backend)

    def run(
        self,
        kind: str,
        schema: str,
        workers: int,
        n: int,
        *,
        lease: float = 30.0,
        kill_at: float | None = None,
        poll: float = 5.0,
    ) -> Outcome:
        """Run the *n* jobs of *schema* in *workers* processes of *kind*."""
        backends = ["asyncio", "trio"] * workers
        lead = 3.0 + 1.0 * workers  # the processes start meanwhile
        first_due = self.db_now() + round(lead * 1e6)
        self.move_due(schema, first_due)
        procs = [self.spawn(kind, backends[w], schema, lease) for w in range(workers)]
        try:
            for w in procs:
                assert w.proc.stdout is not None
                if w.proc.stdout.readline().strip() != b"ready":
                    raise RuntimeError(f"a {kind} worker did not start")
            late_start = (self.db_now() - first_due) / 1e6
            if late_start > 0:
                print(f"    (workers ready {late_start:.2f} s after the first due)")
            killed_at = 0
            held: list[tuple[str, int]] = []
            deadline = time.monotonic() + lead + n / 1000 + 120
            kill_done = kill_at is None
            with self.connect() as con:
                while True:
                    now = self.db_now()
                    if not kill_done and now >= first_due + kill_at * 1e6:  # type: ignore[operator]
                        victim = procs[0]
                        # Killed when it holds leases (an empty job's lease
                        # lasts from one claim to the next): at most 2 s on.
                        owner = f"%:{victim.proc.pid}:%"
                        for _ in range(2000):
                            got = con.execute(
                                f"SELECT 1 FROM {schema}.jobs WHERE state = "
                                "'running' AND lease_owner LIKE %s LIMIT 1",
                                (owner,),
                            ).fetchone()
                            if got is not None:
                                break
                            time.sleep(0.001)
                        os.kill(victim.proc.pid, signal.SIGKILL)
                        killed_at = time.time_ns() // 1000
                        victim.proc.wait()
                        victim.killed = True
                        kill_done = True
                        # Its connection closes with it: an open transaction
                        # rolls back. What it holds after that, it leased.
                        time.sleep(0.5)
                        held = [
                            (str(k), int(u))
                            for k, u in con.execute(
                                f"SELECT key, lease_until FROM {schema}.jobs "
                                "WHERE state = 'running' AND lease_owner LIKE %s",
                                (owner,),
                            ).fetchall()
                        ]
                    # Through the partial indexes: a COUNT(*) of the table
                    # every tick would load the server that is measured.
                    row = con.execute(
                        f"SELECT EXISTS (SELECT 1 FROM {schema}.jobs "
                        "WHERE state = 'pending') OR EXISTS (SELECT 1 FROM "
                        f"{schema}.jobs WHERE state = 'running')"
                    ).fetchone()
                    if not row[0] and kill_done:
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError("jobs are left after the deadline")
                    time.sleep(0.25)
            records: list[tuple[str, int, int]] = []
            for w in procs:
                if w.killed:
                    continue
                assert w.proc.stdin is not None
                w.proc.stdin.close()
            for w in procs:
                if w.killed:
                    continue
                if w.proc.wait(timeout=120):
                    raise RuntimeError(f"a {kind} worker failed")
                records += [(k, s, d) for k, s, d in json.loads(w.out.read_text())]
        finally:
            for w in procs:
                if w.proc.poll() is None:
                    w.proc.kill()
                    w.proc.wait()
                for stream in (w.proc.stdin, w.proc.stdout):
                    if stream is not None:
                        _close(stream)
                w.out.unlink(missing_ok=True)
        return _measure(records, n, killed_at, held)


def _close(stream: IO[bytes]) -> None:
    with contextlib.suppress(OSError):
        stream.close()


def _measure(
    records: Sequence[tuple[str, int, int]],
    n: int,
    killed_at: int,
    held: Sequence[tuple[str, int]],
) -> Outcome:
    keys = {r[0] for r in records}
    lateness = sorted(max(0, start - due) for _, start, due in records)
    first_due = min(r[2] for r in records)
    last_start = max(r[1] for r in records)
    outcome = Outcome(
        jobs=len(records),
        rate=n / ((last_start - first_due) / 1e6),
        p50=_percentile(lateness, 0.50) / 1e6,
        p99=_percentile(lateness, 0.99) / 1e6,
        max=lateness[-1] / 1e6,
        duplicates=len(records) - len(keys),
        missing=n - len(keys),
    )
    if killed_at:
        # The killed worker's file is never written: its jobs count once,
        # when another worker runs them.
        starts: dict[str, int] = {}
        for key, start, _ in records:
            starts[key] = max(start, starts.get(key, 0))
        held_keys = {k for k, _ in held}
        outcome.held = len(held_keys)
        if held_keys - starts.keys():
            raise AssertionError("jobs the killed worker held never ran again")
        if held_keys:
            outcome.absorb = (max(starts[k] for k in held_keys) - killed_at) / 1e6
            outcome.expiry = (max(u for _, u in held) - killed_at) / 1e6
    return outcome


# -- workloads ------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _row(
    workload: str,
    ours: Sequence[float],
    floor: Sequence[float],
    unit: str,
    target: str,
    met: bool | None,
    higher_is_better: bool = True,
) -> Result:
    o, f = _median(ours), _median(floor)
    return {
        "workload": workload,
        "ours": o,
        "floor": f,
        "ours_runs": list(ours),
        "floor_runs": list(floor),
        "ratio": o / f if f else float("nan"),
        "unit": unit,
        "target": target,
        "met": met,
        "higher_is_better": higher_is_better,
    }


def _print_outcome(label: str, o: Outcome) -> None:
    extra = ""
    if o.absorb is not None:
        extra = f", held {o.held}, absorbed {o.absorb:.2f} s (expiry {o.expiry:.2f} s)"
    add = f", added {o.add_rate:,.0f}/s" if o.add_rate else ""
    print(
        f"    {label}: {o.rate:,.0f} jobs/s, lateness p50 {o.p50 * 1e3:.1f} ms "
        f"p99 {o.p99 * 1e3:.1f} ms max {o.max * 1e3:.1f} ms, "
        f"duplicates {o.duplicates}, missing {o.missing}{add}{extra}",
        flush=True,
    )


def pair(
    bench: Bench,
    workers: int,
    n: int,
    seconds: float,
    *,
    lease: float = 30.0,
    kill_at: float | None = None,
) -> tuple[Outcome, Outcome]:
    """One run of ours and one of the floor on copies of one table."""
    schema, add_rate = bench.new_table(n, seconds)
    floor_schema = bench.copy_table(schema)
    try:
        ours = bench.run("ours", schema, workers, n, lease=lease, kill_at=kill_at)
        ours.add_rate = add_rate
        _print_outcome(f"ours  x{workers}", ours)
        floor = bench.run(
            "floor", floor_schema, workers, n, lease=lease, kill_at=kill_at
        )
        _print_outcome(f"floor x{workers}", floor)
    finally:
        bench.drop(schema)
        bench.drop(floor_schema)
    return ours, floor


def run_p1(
    bench: Bench, counts: Sequence[int], n: int, seconds: float, repeat: int
) -> tuple[list[Result], dict[int, list[Outcome]]]:
    rows: list[Result] = []
    all_ours: dict[int, list[Outcome]] = {}
    dups = missing = 0
    for workers in counts:
        ours: list[Outcome] = []
        floor: list[Outcome] = []
        for _ in range(repeat):
            o, f = pair(bench, workers, n, seconds)
            ours.append(o)
            floor.append(f)
        all_ours[workers] = ours
        dups += sum(o.duplicates for o in ours + floor)
        missing += sum(o.missing for o in ours + floor)
        label = f"P1 {workers} worker{'s' if workers > 1 else ''}"
        rate = [o.rate for o in ours]
        # Capped by the rate offered (n over seconds): the target of 10,000/s
        # is judged on P1b's capacity.
        target = "—"
        rows.append(
            _row(
                f"{label}, {n:,} jobs over {seconds:g} s: jobs/s",
                rate,
                [f.rate for f in floor],
                "jobs/s",
                target,
                None,
            )
        )
        for name in ("p50", "p99", "max"):
            rows.append(
                _row(
                    f"{label}: lateness {name}",
                    [getattr(o, name) for o in ours],
                    [getattr(f, name) for f in floor],
                    "s",
                    "—",
                    None,
                    higher_is_better=False,
                )
            )
        rows.append(
            _row(
                f"{label}: durable_batch() adds (informational)",
                [o.add_rate for o in ours],
                [o.add_rate for o in ours],
                "adds/s",
                "—",
                None,
            )
        )
        rows[-1]["floor"] = float("nan")
        rows[-1]["ratio"] = float("nan")
    rows.append(
        {
            "workload": "P1 duplicates + losses, every run (ours and floor)",
            "ours": float(dups + missing),
            "floor": float("nan"),
            "ratio": float("nan"),
            "unit": "count",
            "target": "0",
            "met": dups + missing == 0,
            "higher_is_better": False,
        }
    )
    return rows, all_ours


def run_capacity(bench: Bench, n: int, repeat: int) -> list[Result]:
    """P1b: every job due at once: how fast 4 workers drain them."""
    ours: list[Outcome] = []
    floor: list[Outcome] = []
    for _ in range(repeat):
        o, f = pair(bench, 4, n, 0.0)
        ours.append(o)
        floor.append(f)
        if o.duplicates or o.missing or f.duplicates or f.missing:
            raise AssertionError("P1b: duplicates or losses")
    rate = [o.rate for o in ours]
    return [
        _row(
            f"P1b 4 workers, {n:,} jobs due at once: jobs/s (capacity)",
            rate,
            [f.rate for f in floor],
            "jobs/s",
            "≥ 10,000/s",
            _median(rate) >= 10_000,
        )
    ]


def run_p2(bench: Bench, sustained: float, seconds: float, repeat: int) -> list[Result]:
    rate = sustained / 2
    n = round(rate * seconds)
    ours: list[Outcome] = []
    floor: list[Outcome] = []
    for _ in range(repeat):
        o, f = pair(bench, 4, n, seconds)
        ours.append(o)
        floor.append(f)
        if o.duplicates or o.missing or f.duplicates or f.missing:
            raise AssertionError("P2: duplicates or losses")
    p99 = [o.p99 for o in ours]
    return [
        _row(
            f"P2 4 workers at {rate:,.0f}/s (half of P1's): lateness p99",
            p99,
            [f.p99 for f in floor],
            "s",
            "≤ 250 ms",
            _median(p99) <= 0.25,
            higher_is_better=False,
        )
    ]


def run_p3(bench: Bench, n: int, seconds: float, repeat: int) -> list[Result]:
    lease, poll = 5.0, 5.0
    absorb: list[float] = []
    expiry: list[float] = []
    for _ in range(repeat):
        schema, _ = bench.new_table(n, seconds)
        try:
            o = bench.run("ours", schema, 4, n, lease=lease, kill_at=seconds / 2)
        finally:
            bench.drop(schema)
        _print_outcome("ours  x4, one killed", o)
        # Its file is never written: the jobs it ran and recorded before the
        # kill are "missing" here (the table is empty: none is lost).
        if o.duplicates:
            raise AssertionError(f"P3: {o.duplicates} duplicates among the survivors")
        if o.absorb is None or o.expiry is None:
            print("    (the killed worker held no lease: run again)")
            continue
        absorb.append(o.absorb)
        expiry.append(o.expiry)
    if not absorb:
        return []
    return [
        _row(
            f"P3 4 workers, one SIGKILLed: its jobs run elsewhere (lease {lease:g} s, "
            f"poll {poll:g} s); floor: its leases expire",
            absorb,
            expiry,
            "s",
            f"≤ {lease + poll:g} s",
            _median(absorb) <= lease + poll,
            higher_is_better=False,
        )
    ]


# -- output ---------------------------------------------------------------------------


def _show(value: float, unit: str) -> str:
    if value != value:  # nan
        return "—"
    if unit == "s":
        return f"{value * 1e3:,.1f} ms" if value < 10 else f"{value:,.1f} s"
    if unit == "count":
        return f"{value:,.0f}"
    return f"{value:,.0f}/s"


def print_table(rows: Sequence[Result]) -> None:
    header = ("workload", "ours", "floor", "ratio", "target", "met?")
    table = [header]
    for row in rows:
        met = row["met"]
        ratio = row["ratio"]
        table.append(
            (
                row["workload"],
                _show(row["ours"], row["unit"]),
                _show(row["floor"], row["unit"]),
                "—" if ratio != ratio else f"{ratio:.2f}x",
                row["target"],
                "—" if met is None else ("yes" if met else "NO"),
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for k, r in enumerate(table):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
        if k == 0:
            print("  ".join("-" * w for w in widths))


def environment(server: str, fsync: bool) -> Result:
    import psycopg

    return {
        "python": platform.python_version(),
        "postgresql": server,
        "fsync": fsync,
        "psycopg": f"{psycopg.__version__} ({psycopg.pq.__impl__})",
        "aioscheduler": aioscheduler.__version__,
        "anyio": _version("anyio"),
        "trio": _version("trio"),
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "cpus": os.cpu_count(),
    }


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "-"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.postgres")
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--repeat", "-r", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--only", default="P1,P1B,P2,P3")
    parser.add_argument(
        "--no-fsync", action="store_true", help="run the server with fsync off"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--backend", default="asyncio", help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    parser.add_argument("--lease", type=float, default=30.0, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.child:
        _child(
            options.child, options.backend, options.schema, options.lease, options.out
        )
        return
    from ._pgcluster import HOW_TO_GET, find_bin_dir, server_version, start

    bin_dir = find_bin_dir()
    if bin_dir is None:
        sys.exit(HOW_TO_GET)
    only = {w.strip().upper() for w in options.only.split(",")}
    quick, repeat = options.quick, options.repeat
    fsync = not options.no_fsync
    n, seconds = (20_000, 4.0) if quick else (200_000, 20.0)
    counts = [1, 2, 4]
    cluster = start(bin_dir, fsync=fsync)
    try:
        server = server_version(cluster)
        print(
            f"PostgresStore on PostgreSQL {server} (fsync {'on' if fsync else 'off'})"
            f", medians of {repeat} runs{' (quick sizes)' if quick else ''}",
            flush=True,
        )
        import tempfile

        with tempfile.TemporaryDirectory(prefix="aioscheduler-pgbench-") as tmp:
            bench = Bench(cluster.dsn(), Path(tmp))
            rows: list[Result] = []
            sustained = 10_000.0
            if "P1" in only or "P2" in only:
                begin = time.perf_counter()
                p1_rows, ours = run_p1(
                    bench, counts if "P1" in only else [4], n, seconds, repeat
                )
                print(f"  P1 done in {time.perf_counter() - begin:.1f} s", flush=True)
                rows += p1_rows if "P1" in only else []
                sustained = _median([o.rate for o in ours[4]])
            if "P1B" in only:
                begin = time.perf_counter()
                rows += run_capacity(bench, n, repeat)
                print(f"  P1b done in {time.perf_counter() - begin:.1f} s", flush=True)
            if "P2" in only:
                begin = time.perf_counter()
                rows += run_p2(bench, sustained, seconds, repeat)
                print(f"  P2 done in {time.perf_counter() - begin:.1f} s", flush=True)
            if "P3" in only:
                begin = time.perf_counter()
                rows += run_p3(bench, n, seconds, repeat)
                print(f"  P3 done in {time.perf_counter() - begin:.1f} s", flush=True)
    finally:
        cluster.stop()
    print()
    print_table(rows)
    if options.json is not None:
        options.json.write_text(
            json.dumps(
                {
                    "environment": environment(server, fsync),
                    "quick": quick,
                    "repeat": repeat,
                    "rows": rows,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
