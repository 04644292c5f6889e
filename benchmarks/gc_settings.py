"""Millions of pending jobs and CPython's cyclic garbage collector.

    python -m benchmarks.gc_settings [--size N] [--repeat R]
                                     [--backends asyncio,trio]
                                     [--configs default,disable,...]
                                     [--big N] [--json out.json] [--quick]

What the collector costs while N never-due jobs are scheduled, and what the
opt-in, application-level settings buy (aioscheduler itself never changes
them). Every figure is measured in a fresh process (so no run inherits
another's heap or collector state), the configurations taken in turn in
every round, and shown as the median of ``--repeat`` runs.

Cases, each on asyncio and Trio (``anyio.run``):

``start_at``
    one :class:`TimedScheduler`, ``start_at(when, job, i)`` N times (W1's
    form and deadlines);
``manager``
    ``Manager(20).start_at`` N times (W6's route);
``heapq``
    the floor: ``heapq.heappush`` of N plain floats, which allocates nothing
    the collector tracks, so the ratio of a case to it shows the share the
    collector takes.

Configurations (``--configs``):

``default``
    the interpreter's settings;
``disable``
    ``gc.disable()`` before the N calls, ``gc.enable()`` after;
``freeze``
    default settings, then ``gc.freeze()`` once the N jobs are scheduled;
``disable-freeze``
    ``gc.disable()``, the N calls, ``gc.freeze()``, ``gc.enable()``;
``threshold``
    ``gc.set_threshold(50_000)`` (the youngest generation's threshold, 700
    by default) before the N calls, kept after.

Figures per run: µs per call for the N calls; the collector's own time
during them (from :data:`gc.callbacks`), its full (oldest-generation)
collections and its longest single collection (how long the event loop
stood still at once); then, with the configuration in force, the time of one full
``gc.collect()`` with the N jobs pending, and the µs per call of a
following ``--follow`` calls (default N/2, enough to bring on a full
collection under the default settings).

``--count`` adds what each scheduling form leaves the collector per pending
job: GC allocations per call (``gc.get_count()``, collector off), tracked
objects per job before and after a collection (``gc.get_objects()``).
``--big`` adds one run at that size (e.g. 10,000,000) of ``start_at`` and
``manager`` under ``default`` and ``disable-freeze``, asyncio only.
"""

from __future__ import annotations

import argparse
import gc
import heapq
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio

from aioscheduler import Manager, TimedScheduler

from ._common import MASK, far_offsets, w1_low_seconds

Result = dict[str, Any]

CASES = ("start_at", "manager", "heapq")
CONFIGS = ("default", "disable", "freeze", "disable-freeze", "threshold")
COUNT_FORMS = ("start_at", "start_after", "schedule", "manager start_at")
#: The larger youngest-generation threshold of the ``threshold`` configuration.
THRESHOLD0 = 50_000
#: How many schedulers the ``manager`` case routes over (W6's Manager).
MANAGER_SIZE = 20
RESULTS = Path(__file__).parent / "results"


async def _never(i: int) -> None:
    """The job: never due within the run."""


_Report = Callable[[Result], None]


class _GcClock:
    """Time spent in the collector, and its full collections, via gc.callbacks."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.full = 0
        # The longest collection: how long the event loop stood still once.
        self.longest = 0.0
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            pause = time.perf_counter() - self._began
            self.seconds += pause
            self.longest = max(self.longest, pause)
            if info["generation"] == 2:
                self.full += 1

    def __enter__(self) -> _GcClock:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


def _before(config: str) -> None:
    """Apply the part of *config* that comes before the bulk scheduling."""
    if config in ("disable", "disable-freeze"):
        gc.disable()
    elif config == "threshold":
        gc.set_threshold(THRESHOLD0, *gc.get_threshold()[1:])


def _after(config: str) -> None:
    """Apply the part of *config* that comes once the jobs are scheduled."""
    if config in ("freeze", "disable-freeze"):
        gc.freeze()
    if config in ("disable", "disable-freeze"):
        gc.enable()


def _timed(calls: Callable[[int, int], None], low: int, high: int) -> Result:
    """Run ``calls(low, high)``; its µs per call and the collector's share."""
    with _GcClock() as clock:
        begin = time.perf_counter()
        calls(low, high)
        elapsed = time.perf_counter() - begin
    n = high - low
    return {
        "us_per_call": elapsed / n * 1e6,
        "gc_us_per_call": clock.seconds / n * 1e6,
        "full_collections": clock.full,
        "longest_gc_ms": clock.longest * 1e3,
    }


def _measure(
    config: str, calls: Callable[[int, int], None], n: int, follow: int
) -> Result:
    """The figures of one run: bulk, one full collection, the follow-up."""
    gc.collect()
    _before(config)
    result = _timed(calls, 0, n)
    _after(config)
    begin = time.perf_counter()
    gc.collect()
    result["collect_ms"] = (time.perf_counter() - begin) * 1e3
    if follow:
        later = _timed(calls, n, n + follow)
        result["follow_us_per_call"] = later["us_per_call"]
        result["follow_gc_us_per_call"] = later["gc_us_per_call"]
        result["follow_full_collections"] = later["full_collections"]
        result["follow_longest_gc_ms"] = later["longest_gc_ms"]
    result["tracked_after"] = len(gc.get_objects())
    return result


def _pool(seed: int, n: int) -> list[datetime]:
    """W1's deadlines: aware datetimes, never due within the run."""
    offsets = far_offsets(random.Random(seed), w1_low_seconds(n))
    now = datetime.now(UTC)
    return [now + timedelta(seconds=s) for s in offsets]


async def _run_case(
    case: str, config: str, n: int, follow: int, seed: int, report: _Report
) -> None:
    """Measure one run and hand its figures to *report* (which may exit)."""
    pool = _pool(seed, n + follow)
    mask = MASK
    if case == "heapq":
        heap: list[float] = []
        push = heapq.heappush
        base = time.monotonic()
        offsets = [when.timestamp() - time.time() for when in pool]

        def floor_calls(low: int, high: int) -> None:
            for i in range(low, high):
                push(heap, base + offsets[i & mask])

        report(_measure(config, floor_calls, n, follow))
        return
    front: TimedScheduler | Manager[TimedScheduler]
    front = Manager(MANAGER_SIZE) if case == "manager" else TimedScheduler()
    async with front:
        start_at = front.start_at
        start_at(pool[0], _never, -1)  # bind to the loop first

        def calls(low: int, high: int) -> None:
            for i in range(low, high):
                start_at(pool[i & mask], _never, i)

        report(_measure(config, calls, n, follow))
        front._request_close()


# -- what each form leaves the collector -------------------------------------------


async def _count(form: str, n: int) -> Result:
    when = datetime.now(UTC) + timedelta(hours=1)
    naive = when.replace(tzinfo=None)
    front: TimedScheduler | Manager[TimedScheduler]
    front = Manager(MANAGER_SIZE) if form.startswith("manager") else TimedScheduler()
    async with front:
        front.start_after(3600, _never, -1)  # bind to the loop first
        gc.collect()
        gc.disable()
        objects = len(gc.get_objects())
        allocations = gc.get_count()[0]
        if form == "start_after":
            for i in range(n):
                front.start_after(3600.0, _never, i)
        elif form == "schedule":
            for i in range(n):
                front.schedule(_never(i), naive)
        else:
            for i in range(n):
                front.start_at(when, _never, i)
        allocated = gc.get_count()[0] - allocations
        tracked = len(gc.get_objects()) - objects
        gc.collect()
        kept = len(gc.get_objects()) - objects
        gc.enable()
        front._request_close()
    return {
        "form": form,
        "gc_allocations_per_job": allocated / n,
        "tracked_per_job": tracked / n,
        "tracked_per_job_after_collect": kept / n,
    }


# -- running it ---------------------------------------------------------------------


def _child(spec: Result) -> None:
    """Run one measurement (in a fresh process) and print its JSON."""
    backend = spec["backend"]

    def report(result: Result) -> None:
        print(json.dumps({**spec, **result}), flush=True)
        # Cancelling millions of pending jobs is not what is measured: the
        # process ends with them.
        os._exit(0)

    if spec["kind"] == "count":
        report(anyio.run(_count, spec["form"], spec["size"], backend=backend))
    anyio.run(
        _run_case,
        spec["case"],
        spec["config"],
        spec["size"],
        spec["follow"],
        spec["seed"],
        report,
        backend=backend,
    )


def _spawn(spec: Result, python: str) -> Result:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent.parent))
    out = subprocess.run(
        [python, "-m", "benchmarks.gc_settings", "--child", json.dumps(spec)],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent,
        env=env,
    )
    result: Result = json.loads(out.stdout.splitlines()[-1])
    return result


def _median_rows(runs: Sequence[Result]) -> list[Result]:
    """One row per (case, backend, config): the median of every figure."""
    groups: dict[tuple[str, str, str, int], list[Result]] = {}
    for run in runs:
        key = (run["case"], run["backend"], run["config"], run["size"])
        groups.setdefault(key, []).append(run)
    rows = []
    for (case, backend, config, size), group in groups.items():
        row: Result = {
            "case": case,
            "backend": backend,
            "config": config,
            "size": size,
            "runs": len(group),
        }
        for name, value in group[0].items():
            if isinstance(value, int | float) and name not in row and name != "seed":
                row[name] = statistics.median(g[name] for g in group)
        row["us_per_call_all"] = [g["us_per_call"] for g in group]
        rows.append(row)
    floors = {
        (r["backend"], r["config"], r["size"]): r["us_per_call"]
        for r in rows
        if r["case"] == "heapq"
    }
    for row in rows:
        floor = floors.get((row["backend"], row["config"], row["size"]))
        if floor:
            row["x_floor"] = row["us_per_call"] / floor
    return rows


def _cell(row: Result, key: str, fmt: str) -> str:
    value = row.get(key)
    return "—" if value is None else format(value, fmt)


def markdown(rows: Sequence[Result], counts: Sequence[Result]) -> str:
    """The results as markdown tables."""
    lines = [
        "| case | backend | N | GC settings | runs | µs/call | of it GC | "
        "full GCs | longest GC | x heapq | gc.collect() | "
        "next calls: µs/call (GC) | longest GC |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: |",
    ]
    for r in rows:
        follow = _cell(r, "follow_us_per_call", ".2f")
        if "follow_gc_us_per_call" in r:
            follow += f" ({r['follow_gc_us_per_call']:.2f})"
        lines.append(
            f"| {r['case']} | {r['backend']} | {r['size']:,} | {r['config']} | "
            f"{r['runs']} | {r['us_per_call']:.2f} | {r['gc_us_per_call']:.2f} | "
            f"{r['full_collections']:.0f} | {_cell(r, 'longest_gc_ms', ',.0f')} ms | "
            f"{_cell(r, 'x_floor', '.2f')} | {r['collect_ms']:,.0f} ms | {follow} | "
            f"{_cell(r, 'follow_longest_gc_ms', ',.0f')} ms |"
        )
    if counts:
        lines += [
            "",
            "| form | GC allocations per call | tracked per pending job | "
            "after a collection |",
            "| --- | ---: | ---: | ---: |",
        ]
        for c in counts:
            lines.append(
                f"| {c['form']} ({c['backend']}) | {c['gc_allocations_per_job']:.2f} | "
                f"{c['tracked_per_job']:.2f} | "
                f"{c['tracked_per_job_after_collect']:.2f} |"
            )
    return "\n".join(lines)


def environment(python: str) -> Result:
    """The run's environment, free of machine paths."""
    probe = (
        "import platform, gc, anyio; from importlib.metadata import version as v;"
        "print(platform.python_version(), v('anyio'), v('trio'), gc.get_threshold())"
    )
    out = subprocess.run(
        [python, "-c", probe], check=True, capture_output=True, text=True
    ).stdout.split(maxsplit=3)
    return {
        "python": out[0],
        "anyio": out[1],
        "trio": out[2],
        "gc_threshold": out[3].strip(),
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "cpus": os.cpu_count(),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gc_settings",
        description="The cyclic GC's share of scheduling N jobs, and what "
        "application-level GC settings buy (each run a fresh process).",
    )
    parser.add_argument("--size", "-n", type=int, default=1_000_000)
    parser.add_argument("--repeat", "-r", type=int, default=5)
    parser.add_argument("--follow", type=int, default=None, help="default N/2")
    parser.add_argument("--backends", default="asyncio,trio")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument(
        "--big", type=int, default=0, help="also one run at this size (asyncio)"
    )
    parser.add_argument("--count", action="store_true", help="tracked objects per job")
    parser.add_argument(
        "--python", default=sys.executable, help="the interpreter of the runs"
    )
    parser.add_argument("--quick", action="store_true", help="100k, 1 run")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.child:
        _child(json.loads(options.child))
        return
    if options.quick:
        options.size, options.repeat = 100_000, 1
    n = options.size
    follow = n // 2 if options.follow is None else options.follow
    backends = options.backends.split(",")
    cases = options.cases.split(",")
    configs = options.configs.split(",")
    for name, allowed in (("case", CASES), ("config", CONFIGS)):
        for value in cases if name == "case" else configs:
            if value not in allowed:
                parser.error(f"unknown {name} {value!r}; choose from {allowed}")
    env = environment(options.python)
    print(
        f"Python {env['python']}: {n:,} jobs, medians of {options.repeat} runs, "
        "each in a fresh process",
        flush=True,
    )
    specs: list[Result] = []
    for rep in range(options.repeat):
        for backend in backends:
            for case in cases:
                for config in configs:
                    specs.append(
                        {
                            "kind": "case",
                            "case": case,
                            "config": config,
                            "backend": backend,
                            "size": n,
                            "follow": follow,
                            "seed": rep,
                        }
                    )
    if options.big:
        for case in ("start_at", "manager"):
            for config in ("default", "disable-freeze"):
                specs.append(
                    {
                        "kind": "case",
                        "case": case,
                        "config": config,
                        "backend": "asyncio",
                        "size": options.big,
                        "follow": 0,
                        "seed": 0,
                    }
                )
    runs = []
    for k, spec in enumerate(specs, 1):
        run = _spawn(spec, options.python)
        print(
            f"  [{k}/{len(specs)}] {spec['case']} {spec['backend']} {spec['config']} "
            f"N={spec['size']:,}: {run['us_per_call']:.2f} µs/call "
            f"(GC {run['gc_us_per_call']:.2f}), collect {run['collect_ms']:.0f} ms",
            flush=True,
        )
        runs.append(run)
    counts = []
    if options.count:
        for backend in backends:
            for form in COUNT_FORMS:
                spec = {"kind": "count", "form": form, "backend": backend}
                counts.append(_spawn({**spec, "size": 100_000}, options.python))
    rows = _median_rows(runs)
    print()
    print(markdown(rows, counts))
    if options.json is not None:
        options.json.parent.mkdir(parents=True, exist_ok=True)
        options.json.write_text(
            json.dumps(
                {
                    "environment": env,
                    "size": n,
                    "follow": follow,
                    "repeat": options.repeat,
                    "rows": rows,
                    "counts": counts,
                    "runs": runs,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
