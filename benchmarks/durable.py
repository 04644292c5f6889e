"""Durable jobs in the embedded SQLite store, against raw ``sqlite3`` floors.

    python -m benchmarks.durable [--quick] [--backend asyncio|trio]
                                 [--repeat R] [--json out.json] [--only D1,D3]

Every workload has a floor measured in the same run: the least the work
costs in raw ``sqlite3`` from this process, on a file made by a fresh
:class:`SQLiteStore` (so the same schema and indexes), with the same file
settings (WAL, ``synchronous=FULL``):

D1. Durable adds per second, one at a time (``await durable_start_after``
    in a loop); floor: one ``INSERT`` and ``COMMIT`` per job.
D2. Durable adds per second, batched by group commit: many tasks adding
    at once (1,000 tasks x N adds each); floor: ``executemany`` in one
    transaction per batch, the batches as big as the ones observed in our
    run (their median size).
D3. Claims and completions per second at 1M pending: 1M jobs due in the
    future plus 100k due now; a scheduler (``durable_concurrency=1024``)
    runs the 100k (first start to scheduler closed, which records the last
    outcomes); floor: a raw claim(256)+delete loop, one transaction each.
D4. Start to the first overdue job at 1M pending (the D3 runs: from
    entering ``async with TimedScheduler(store=...)`` to the first job's
    start); floor: connect, set up, claim 256 rows, commit.
D5. Peak RSS (``VmHWM``; else ``getrusage``) of a child process that
    opens a scheduler on a file of 1M / 10M pending jobs and runs for a few
    seconds (adding and running 1,000 jobs); floor: a child that imports
    the same modules and reads the same file with raw ``sqlite3``.

The prefilled files (raw ``executemany``, ``synchronous=OFF`` for the
prefill only) are built once in ``benchmarks/results/tmp/`` and reused.
Real time on a shared machine: read medians of several runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio

import aioscheduler
from aioscheduler import SQLiteStore, TimedScheduler, durable
from aioscheduler.stores._interface import AddResult, NewJob

from ._common import peak_rss_bytes

Result = dict[str, Any]

TMP = Path(__file__).parent / "results" / "tmp"
FUNCTION = "benchmarks.durable:job"
INSERT = (
    "INSERT INTO aioscheduler_jobs (key, function, arguments, due, ready, state, "
    "delivery, misfire_grace, schedule_id, created) "
    "VALUES (?, ?, ?, ?, ?, 'pending', 'at_least_once', NULL, NULL, ?)"
)
CLAIM = (
    "UPDATE aioscheduler_jobs SET state = 'running', lease_owner = ?, "
    "lease_until = ?, attempt = attempt + 1 WHERE id IN (SELECT id FROM "
    "aioscheduler_jobs WHERE state = 'pending' AND ready <= ? "
    "ORDER BY ready, id LIMIT ?) RETURNING id, key, function, arguments, "
    "due, ready, attempt, delivery, misfire_grace, schedule_id"
)
DELETE_FENCED = (
    "DELETE FROM aioscheduler_jobs WHERE id = ? AND lease_owner = ? "
    "AND attempt = ? AND state = 'running'"
)
#: Pending jobs of the prefilled files are due from this far ahead on (µs),
#: so a file stays usable for weeks.
FUTURE_US = 400 * 86400 * 1_000_000
DAY_US = 86400 * 1_000_000


# -- what the jobs run ----------------------------------------------------------


class _Counter:
    target = 0
    count = 0
    first = 0.0
    last = 0.0
    done: anyio.Event | None = None


counter = _Counter()


@durable(FUNCTION)
async def job(i: int) -> None:
    """The durable job of every workload: count, note the first start."""
    c = counter
    if not c.count:
        c.first = time.perf_counter()
    c.count += 1
    if c.count == c.target:
        c.last = time.perf_counter()
        if c.done is not None:
            c.done.set()


def _reset(target: int) -> anyio.Event:
    counter.target = target
    counter.count = 0
    counter.first = counter.last = 0.0
    counter.done = anyio.Event()
    return counter.done


class CountingStore(SQLiteStore):
    """A SQLite store that notes the size of every add batch (group commit)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path)
        self.batches: list[int] = []

    async def add(self, jobs: Sequence[NewJob]) -> list[AddResult]:
        self.batches.append(len(jobs))
        return await super().add(jobs)


# -- files ----------------------------------------------------------------------


def _now_us() -> int:
    return time.time_ns() // 1000


def new_store_file(path: Path) -> Path:
    """Create *path* with the store's own schema (a fresh SQLiteStore)."""

    async def create() -> None:
        store = SQLiteStore(path)
        await store.open()
        await store.close()

    anyio.run(create)
    return path


def raw_connect(path: Path, synchronous: str = "FULL") -> sqlite3.Connection:
    """A raw connection with the store's file settings."""
    con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(f"PRAGMA synchronous={synchronous}")
    return con


def _rows(
    n: int, prefix: str, due0: int, step: int, created: int
) -> Iterator[tuple[Any, ...]]:
    for i in range(n):
        due = due0 + i * step
        yield (f"{prefix}{i:09d}", FUNCTION, f"[[{i}]]", due, due, created)


def prefill(path: Path, n: int, prefix: str, due0: int, step: int) -> None:
    """Insert *n* pending jobs with raw ``executemany`` (``synchronous=OFF``)."""
    con = raw_connect(path, "OFF")
    con.execute("PRAGMA cache_size=-262144")
    now = _now_us()
    chunk = 500_000
    for start in range(0, n, chunk):
        size = min(chunk, n - start)
        con.execute("BEGIN")
        con.executemany(
            INSERT, _rows(size, f"{prefix}{start:09d}-", due0 + start * step, step, now)
        )
        con.execute("COMMIT")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def pending_file(n: int) -> Path:
    """A file of *n* jobs due from 400 days ahead on, built once and reused."""
    TMP.mkdir(parents=True, exist_ok=True)
    path = TMP / f"pending-{n}.db"
    if path.exists():
        with sqlite3.connect(path) as con:
            low = con.execute(
                "SELECT MIN(ready), COUNT(*) FROM aioscheduler_jobs "
                "WHERE state = 'pending'"
            ).fetchone()
        con.close()
        if low[1] == n and low[0] > _now_us() + 30 * DAY_US:
            return path
        path.unlink()
    build = path.with_suffix(".building")
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(f"{build}{suffix}").unlink(missing_ok=True)
    begin = time.perf_counter()
    new_store_file(build)
    prefill(build, n, "future-", _now_us() + FUTURE_US, 1_000_000)
    build.rename(path)
    for suffix in ("-wal", "-shm", ".lock"):
        Path(f"{build}{suffix}").unlink(missing_ok=True)
    print(
        f"  (built {path.name}: {n:,} pending in {time.perf_counter() - begin:.1f} s,"
        f" {path.stat().st_size / 1e6:,.0f} MB)",
        flush=True,
    )
    return path


def due_copy(base: Path, into: Path, due: int) -> Path:
    """Copy *base* and add *due* jobs that are due now (overdue by 1 s)."""
    path = into / f"run-{uuid.uuid4().hex[:8]}.db"
    shutil.copyfile(base, path)
    os.chmod(path, 0o600)
    prefill(path, due, "due-", _now_us() - 1_000_000 - due, 1)
    return path


# -- D1 / D2: adds ----------------------------------------------------------------


async def _adds_one_at_a_time(
    path: Path, floor_path: Path, n: int
) -> tuple[float, float]:
    """Sequential adds, ours and the floor's alternating in blocks of 50.

    One commit waits for one fsync, whose cost on a shared disk drifts by
    2x within seconds: alternating puts both under the same conditions.
    Returns (our adds/s, the floor's adds/s).
    """
    con = raw_connect(floor_path)
    ours = floor = 0.0
    block = 50
    async with TimedScheduler(store=path) as s:
        for start in range(0, n, block):
            stop = min(n, start + block)
            begin = time.perf_counter()
            for i in range(start, stop):
                await s.durable_start_after(3600, job, i)
            middle = time.perf_counter()
            now = _now_us()
            due = now + 3600_000_000
            for i in range(start, stop):
                con.execute("BEGIN IMMEDIATE")
                con.execute(
                    INSERT, (uuid.uuid4().hex, FUNCTION, f"[[{i}]]", due, due, now)
                )
                con.execute("COMMIT")
            ours += middle - begin
            floor += time.perf_counter() - middle
        await s.aclose()
    con.close()
    return n / ours, n / floor


async def _adds_batched(path: Path, tasks: int, each: int) -> tuple[float, list[int]]:
    store = CountingStore(path)
    async with TimedScheduler(store=store) as s:

        async def adder(t: int) -> None:
            for i in range(each):
                await s.durable_start_after(3600, job, t * each + i)

        begin = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for t in range(tasks):
                tg.start_soon(adder, t)
        seconds = time.perf_counter() - begin
        await s.aclose()
    return tasks * each / seconds, store.batches


def _floor_batched(path: Path, n: int, batch: int) -> float:
    con = raw_connect(path)
    now = _now_us()
    due = now + 3600_000_000
    begin = time.perf_counter()
    for start in range(0, n, batch):
        size = min(batch, n - start)
        con.execute("BEGIN IMMEDIATE")
        con.executemany(
            INSERT,
            [
                (uuid.uuid4().hex, FUNCTION, f"[[{i}]]", due, due, now)
                for i in range(start, start + size)
            ],
        )
        con.execute("COMMIT")
    seconds = time.perf_counter() - begin
    con.close()
    return n / seconds


async def _adds_batch_api(path: Path, n: int, batch: int) -> float:
    """Adds through ``durable_batch()``: each job checked at its call, one
    commit per *batch* jobs."""
    async with TimedScheduler(store=path) as s:
        begin = time.perf_counter()
        for start in range(0, n, batch):
            async with s.durable_batch() as b:
                for i in range(start, min(n, start + batch)):
                    b.start_after(3600, job, i)
        seconds = time.perf_counter() - begin
        await s.aclose()
    return n / seconds


# -- D3 / D4: claims and completions at 1M pending ----------------------------------


async def _run_due(path: Path, due: int) -> tuple[float, float]:
    """Run the *due* overdue jobs; return (jobs/s, seconds to the first)."""
    done = _reset(due)
    begin = time.perf_counter()
    async with TimedScheduler(store=path, durable_concurrency=1024) as s:
        with anyio.fail_after(max(60.0, due / 1000)):
            await done.wait()
        await s.aclose()
    end = time.perf_counter()
    assert counter.count == due, (counter.count, due)
    return due / (end - counter.first), counter.first - begin


def _check_drained(path: Path, pending: int) -> None:
    with sqlite3.connect(path) as con:
        rows = con.execute(
            "SELECT state, COUNT(*) FROM aioscheduler_jobs GROUP BY state"
        ).fetchall()
    con.close()
    if rows != [("pending", pending)]:
        raise AssertionError(f"left in the store: {rows}, not {pending} pending")


def _floor_claims(path: Path, due: int) -> tuple[float, float]:
    """Raw claim(256)+delete loop; return (jobs/s, seconds to the first claim)."""
    begin = time.perf_counter()
    con = raw_connect(path)
    owner = "floor"
    held: list[tuple[int, str, int]] = []
    first = 0.0
    count = 0
    while True:
        now = _now_us()
        con.execute("BEGIN IMMEDIATE")
        if held:
            con.executemany(DELETE_FENCED, held)
            count += len(held)
        rows = con.execute(CLAIM, (owner, now + 30_000_000, now, 256)).fetchall()
        con.execute("COMMIT")
        if not first:
            first = time.perf_counter()
        if not rows:
            break
        held = [(row[0], owner, row[6]) for row in rows]
    end = time.perf_counter()
    con.close()
    assert count == due, (count, due)
    return due / (end - first), first - begin


# -- D5: RSS in a child -------------------------------------------------------------


async def _child_serve(path: Path, seconds: float, jobs: int) -> None:
    done = _reset(jobs)
    begin = time.perf_counter()
    async with TimedScheduler(store=path, durable_concurrency=1024) as s:
        async with anyio.create_task_group() as tg:
            for i in range(jobs):
                tg.start_soon(s.durable_start_after, 0.2, job, i)
        with anyio.move_on_after(seconds):
            await done.wait()
        await anyio.sleep(max(0.0, seconds - (time.perf_counter() - begin)))
        await s.aclose()
    assert counter.count == jobs, (counter.count, jobs)


def _child_floor(path: Path, seconds: float) -> None:
    con = raw_connect(path)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        now = _now_us()
        con.execute("BEGIN IMMEDIATE")
        con.execute(CLAIM, ("floor", now + 30_000_000, now, 256)).fetchall()
        con.execute(
            "SELECT MIN(ready) FROM aioscheduler_jobs WHERE state = 'pending'"
        ).fetchone()
        con.execute("COMMIT")
        time.sleep(0.05)
    con.close()


def _child(kind: str, path: Path, backend: str, seconds: float) -> None:
    if kind == "ours":
        anyio.run(_child_serve, path, seconds, 1000, backend=backend)
    else:
        _child_floor(path, seconds)
    print(json.dumps({"peak_rss": _peak_rss_own()}))


def _peak_rss_own() -> int:
    """This process's peak RSS since its ``exec``.

    ``getrusage``'s ``ru_maxrss`` carries the parent's peak over a
    fork+exec on Linux (the child reports whatever the parent had, 60+ MB
    after the prefills here); ``VmHWM`` in ``/proc/self/status`` belongs to
    the new program alone. Elsewhere, ``getrusage``.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return peak_rss_bytes()


def _rss_in_child(kind: str, path: Path, backend: str, seconds: float) -> int:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.durable",
            "--child",
            kind,
            str(path),
            "--backend",
            backend,
            "--seconds",
            str(seconds),
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    return int(json.loads(out.stdout.splitlines()[-1])["peak_rss"])


# -- the runs -------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _fmt_rate(value: float) -> str:
    return f"{value:,.0f}/s"


def _row(
    workload: str,
    backend: str,
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
        "backend": backend,
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


def run_d1(tmp: Path, backend: str, n: int, repeat: int) -> Result:
    ours, floor = [], []
    for r in range(repeat):
        o, f = anyio.run(
            _adds_one_at_a_time,
            new_store_file(tmp / f"d1-{r}.db"),
            new_store_file(tmp / f"d1f-{r}.db"),
            n,
            backend=backend,
        )
        ours.append(o)
        floor.append(f)
    return _row("D1 adds, one at a time", backend, ours, floor, "adds/s", "—", None)


def run_d2(tmp: Path, backend: str, tasks: int, each: int, repeat: int) -> Result:
    ours, floor, sizes = [], [], []
    for r in range(repeat):
        rate, batches = anyio.run(
            _adds_batched,
            new_store_file(tmp / f"d2-{r}.db"),
            tasks,
            each,
            backend=backend,
        )
        ours.append(rate)
        batch = max(1, round(_median(batches)))
        sizes.append(batch)
        floor.append(
            _floor_batched(new_store_file(tmp / f"d2f-{r}.db"), tasks * each, batch)
        )
    row = _row(
        f"D2 adds, {tasks:,} tasks x {each}",
        backend,
        ours,
        floor,
        "adds/s",
        "≥ 50,000/s",
        _median(ours) >= 50_000,
    )
    row["batch_sizes"] = sizes
    return row


def run_d2b(tmp: Path, backend: str, n: int, batch: int, repeat: int) -> Result:
    ours, floor = [], []
    for r in range(repeat):
        ours.append(
            anyio.run(
                _adds_batch_api,
                new_store_file(tmp / f"d2b-{r}.db"),
                n,
                batch,
                backend=backend,
            )
        )
        floor.append(_floor_batched(new_store_file(tmp / f"d2bf-{r}.db"), n, batch))
    return _row(
        f"D2b adds, durable_batch() ({batch:,} per commit)",
        backend,
        ours,
        floor,
        "adds/s",
        "≥ 50,000/s",
        _median(ours) >= 50_000,
    )


def run_d3_d4(
    tmp: Path, backend: str, pending: int, due: int, repeat: int
) -> list[Result]:
    base = pending_file(pending)
    rate, first, frate, ffirst = [], [], [], []
    for _ in range(repeat):
        path = due_copy(base, tmp, due)
        r, f = anyio.run(_run_due, path, due, backend=backend)
        _check_drained(path, pending)
        rate.append(r)
        first.append(f)
        _remove(path)
        path = due_copy(base, tmp, due)
        r, f = _floor_claims(path, due)
        _check_drained(path, pending)
        frate.append(r)
        ffirst.append(f)
        _remove(path)
    size = f"{pending // 1_000_000}M" if pending >= 1_000_000 else f"{pending:,}"
    return [
        _row(
            f"D3 claim+complete, {due:,} due, {size} pending",
            backend,
            rate,
            frate,
            "jobs/s",
            "≥ 20,000/s",
            _median(rate) >= 20_000,
        ),
        _row(
            f"D4 start to first overdue, {size} pending",
            backend,
            first,
            ffirst,
            "s",
            "≤ 1 s",
            _median(first) <= 1.0,
            higher_is_better=False,
        ),
    ]


def run_d5(backend: str, sizes: Sequence[int], seconds: float) -> list[Result]:
    rows = []
    for n in sizes:
        path = pending_file(n)
        ours = _rss_in_child("ours", path, backend, seconds) / 1e6
        floor = _rss_in_child("floor", path, backend, seconds) / 1e6
        label = f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n:,}"
        target = "≤ 300 MB" if n >= 10_000_000 else "—"
        rows.append(
            _row(
                f"D5 peak RSS, {label} pending",
                backend,
                [ours],
                [floor],
                "MB",
                target,
                ours <= 300 if n >= 10_000_000 else None,
                higher_is_better=False,
            )
        )
    return rows


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _show(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value * 1e3:,.0f} ms"
    if unit == "MB":
        return f"{value:,.0f} MB"
    return _fmt_rate(value)


def print_table(rows: Sequence[Result]) -> None:
    header = ("workload", "backend", "ours", "floor", "ratio", "target", "met?")
    table = [header]
    for row in rows:
        met = row["met"]
        table.append(
            (
                row["workload"],
                row["backend"],
                _show(row["ours"], row["unit"]),
                _show(row["floor"], row["unit"]),
                f"{row['ratio']:.2f}x",
                row["target"],
                "—" if met is None else ("yes" if met else "NO"),
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for k, r in enumerate(table):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
        if k == 0:
            print("  ".join("-" * w for w in widths))


def environment() -> Result:
    return {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
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
    parser = argparse.ArgumentParser(prog="python -m benchmarks.durable")
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument(
        "--backend", "-b", choices=["asyncio", "trio"], default="asyncio"
    )
    parser.add_argument("--repeat", "-r", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--only", default="D1,D2,D2B,D3,D4,D5")
    parser.add_argument("--seconds", type=float, default=3.0, help=argparse.SUPPRESS)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.child:
        _child(
            options.child[0], Path(options.child[1]), options.backend, options.seconds
        )
        return
    only = {w.strip().upper() for w in options.only.split(",")}
    quick, backend, repeat = options.quick, options.backend, options.repeat
    d1_n = 300 if quick else 2_000
    d2_tasks, d2_each = (1_000, 5) if quick else (1_000, 50)
    pending, due = (100_000, 10_000) if quick else (1_000_000, 100_000)
    d5_sizes = [100_000] if quick else [1_000_000, 10_000_000]
    print(
        f"durable store on {backend}, medians of {repeat} runs"
        f"{' (quick sizes)' if quick else ''}",
        flush=True,
    )
    rows: list[Result] = []
    TMP.mkdir(parents=True, exist_ok=True)
    steps: list[tuple[str, Callable[[Path], list[Result]]]] = [
        ("D1", lambda tmp: [run_d1(tmp, backend, d1_n, repeat)]),
        ("D2", lambda tmp: [run_d2(tmp, backend, d2_tasks, d2_each, repeat)]),
        ("D2B", lambda tmp: [run_d2b(tmp, backend, d2_tasks * d2_each, 1000, repeat)]),
        ("D3", lambda tmp: run_d3_d4(tmp, backend, pending, due, repeat)),
        ("D5", lambda tmp: run_d5(backend, d5_sizes, options.seconds)),
    ]
    with tempfile.TemporaryDirectory(dir=TMP) as tmp_name:
        for name, step in steps:
            if name in only or (name == "D3" and "D4" in only):
                begin = time.perf_counter()
                got = step(Path(tmp_name))
                print(
                    f"  {name} done in {time.perf_counter() - begin:.1f} s", flush=True
                )
                rows += got
    print()
    print_table(rows)
    if options.json is not None:
        options.json.write_text(
            json.dumps(
                {
                    "environment": environment(),
                    "quick": quick,
                    "repeat": repeat,
                    "rows": rows,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
