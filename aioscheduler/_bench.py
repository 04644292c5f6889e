"""``python -m aioscheduler bench``: one benchmark workload, live.

    python -m aioscheduler bench --workload W2 --size 100000 --backend trio

Runs one workload of the benchmark suite (W1-W7, see :data:`WORKLOADS`) on
aioscheduler itself, in this process, with a live progress line and a
summary table. The full suite (``benchmarks/`` in the source tree, run by
``nox -s bench``) runs every workload in fresh subprocesses, repeatedly,
against the event loops' own floors, aiojobs and aioscheduler 1.4.2; it
imports the measuring code from here, so both measure the same way.

Every job is the issue's ``async def job(i): counter += 1``, plus whatever
the workload must record (a start time, a run count); the floors in
``benchmarks/`` use the same job bodies from :class:`Tally`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import math
import os
import random
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeAlias, TypeVar

import anyio

from ._manager import Manager
from ._queued import QueuedScheduler
from ._task import Task
from ._timed import TimedScheduler
from ._version import __version__

__all__ = [
    "BACKENDS",
    "METRICS",
    "WORKLOADS",
    "Progress",
    "Result",
    "Tally",
    "Workload",
    "burst_lead",
    "far_offsets",
    "job_clock",
    "lateness_stats",
    "main",
    "peak_rss_bytes",
    "rss_bytes",
    "run",
    "steady_lead",
    "w1_low_seconds",
]

T = TypeVar("T")
Result: TypeAlias = dict[str, Any]
Job: TypeAlias = Callable[[int], Coroutine[Any, Any, None]]

#: ``uvloop`` means asyncio on uvloop's event loop.
BACKENDS = ("asyncio", "uvloop", "trio")


@dataclass(frozen=True)
class Workload:
    """One workload of issue 3: what it does, its sizes and its variants."""

    id: str
    title: str
    #: the sizes issue 3 asks for
    sizes: tuple[int, ...]
    #: small sizes for development (``--quick``)
    quick: tuple[int, ...]
    variants: tuple[str, ...]


WORKLOADS: dict[str, Workload] = {
    w.id: w
    for w in (
        Workload(
            "W1",
            "schedule N timed jobs at random times 10 s-1 h ahead",
            (10_000, 100_000, 1_000_000, 10_000_000),
            (10_000, 100_000),
            ("start_at", "schedule", "start_after"),
        ),
        Workload(
            "W2",
            "burst: N jobs all due at the same instant",
            (10_000, 100_000),
            (10_000,),
            ("burst",),
        ),
        Workload(
            "W3",
            "steady: N jobs spread evenly over 5 s",
            (50_000, 200_000),
            (20_000,),
            ("steady",),
        ),
        Workload(
            "W4",
            "cancel 10% of N pending jobs",
            (100_000, 1_000_000),
            (10_000, 100_000),
            ("cancel",),
        ),
        Workload(
            "W5",
            "N jobs through a QueuedScheduler / a Manager of 8",
            (100_000,),
            (20_000,),
            ("serial", "manager8"),
        ),
        Workload(
            "W6",
            "Manager(20) holding N pending jobs, then a window coming due",
            (10_000_000,),
            (200_000,),
            ("manager20",),
        ),
        Workload(
            "W7",
            "completion: N jobs running at once, then all released",
            (2_000, 8_000),
            (2_000, 8_000),
            ("release",),
        ),
    )
}

#: metric key -> (label, unit, format); what the summary tables show.
METRICS: dict[str, tuple[str, str, str]] = {
    "us_per_call": ("scheduling call", "µs", "{:.3f}"),
    "rss_per_job": ("RSS per pending job", "B", "{:.0f}"),
    "tm_per_job": ("tracemalloc per pending job", "B", "{:.0f}"),
    "first_ms": ("first job start after due", "ms", "{:.2f}"),
    "all_ms": ("all jobs finished after due", "ms", "{:.1f}"),
    "jobs_per_s": ("throughput", "jobs/s", "{:,.0f}"),
    "p50_ms": ("lateness p50", "ms", "{:.3f}"),
    "p99_ms": ("lateness p99", "ms", "{:.3f}"),
    "max_ms": ("lateness max", "ms", "{:.3f}"),
    "never_run": ("jobs never run", "", "{:.0f}"),
    "early": ("jobs started early", "", "{:.0f}"),
    "us_per_cancel": ("cancel", "µs", "{:.3f}"),
    "wrong_runs": ("cancelled that ran + live that did not", "", "{:.0f}"),
    "order_ok": ("order kept", "", "{}"),
    "schedule_s": ("scheduling all jobs", "s", "{:.2f}"),
    "peak_rss_mb": ("peak RSS", "MB", "{:,.0f}"),
    "lost": ("due jobs not run exactly once", "", "{:.0f}"),
    "far_ran": ("far jobs run (must be 0)", "", "{:.0f}"),
    "us_per_completion": ("completion", "µs", "{:.2f}"),
}

# -- sizes of the set-ups -------------------------------------------------------

#: W1/W4/W6 pick deadlines from this many random values (a power of two), so
#: that 10M jobs need no 10M datetimes; every implementation gets the same.
POOL_SIZE = 1 << 16
#: W1 measures tracemalloc (which slows allocation 2-3x) at most at this size.
TRACEMALLOC_CAP = 100_000
#: W3: the jobs' deadlines are spread over this many seconds.
SPREAD_S = 5.0
#: W6: the window of jobs coming due, and the seconds it is spread over.
WINDOW_MAX = 50_000
WINDOW_S = 2.0
#: W6: how far ahead of scheduling the window begins. With 10M pending, a
#: full garbage collection can stop the loop for seconds while the window's
#: 50,000 jobs are being scheduled; their times must still be ahead then.
WINDOW_LEAD_S = 5.0


def w1_low_seconds(n: int) -> float:
    """The earliest deadline of W1, in seconds ahead: 10 s, plus room for big N.

    Scheduling 10M jobs takes longer than 10 s, and a job whose time has
    passed cannot be scheduled; 10 µs per job keeps every one in the future.
    """
    return 10.0 + n * 10e-6


def burst_lead(n: int, per_job: float = 10e-6) -> float:
    """Seconds from the W2 set-up to the due instant: room to schedule *n*.

    A baseline whose set-up costs more than 10 µs a job passes its own
    *per_job*; ``setup_overran`` in the figures tells if it was not enough.
    """
    return 0.25 + n * per_job


def steady_lead(n: int, per_job: float = 10e-6) -> float:
    """Seconds from the W3/W4 set-up to the first deadline (see :func:`burst_lead`)."""
    return 0.5 + n * per_job


def far_offsets(rng: random.Random, low: float, high: float = 3600.0) -> list[float]:
    """Return :data:`POOL_SIZE` random offsets in seconds, in ``[low, high)``."""
    return [rng.uniform(low, high) for _ in range(POOL_SIZE)]


# -- measuring ------------------------------------------------------------------

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """Return this process's resident set size now (Linux; else the peak)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE
    except OSError:
        return peak_rss_bytes()


def peak_rss_bytes() -> int:
    """Return this process's peak resident set size."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _percentile(ordered: Sequence[float], q: float) -> float:
    """Return the *q*-quantile (0..1) of sorted values, nearest rank."""
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


def lateness_stats(late: Sequence[float]) -> Result:
    """Summarise start-minus-due times in seconds; NaN marks a job never run."""
    ran = sorted(x for x in late if x == x)
    result: Result = {
        "never_run": len(late) - len(ran),
        "early": sum(1 for x in ran if x < 0),
    }
    if ran:
        result["p50_ms"] = _percentile(ran, 0.50) * 1e3
        result["p99_ms"] = _percentile(ran, 0.99) * 1e3
        result["max_ms"] = ran[-1] * 1e3
        result["min_ms"] = ran[0] * 1e3
    return result


class Tally:
    """Counts job runs; its ``*_job`` methods make the workloads' jobs.

    Each job is ``counter += 1`` plus what its workload records; the one that
    brings the count to *target* notes the time and calls *on_done*.
    """

    __slots__ = ("clock", "count", "first", "last", "on_done", "started", "target")

    def __init__(
        self, target: int, clock: Callable[[], float], on_done: Callable[[], object]
    ) -> None:
        self.target = target
        self.clock = clock
        self.on_done = on_done
        self.count = 0
        self.started = 0
        self.first = math.nan
        self.last = math.nan

    def burst_job(self) -> Job:
        """W2: count, and note when the first starts and the last finishes."""
        clock = self.clock
        target = self.target

        async def job(i: int) -> None:
            count = self.count = self.count + 1
            if count == 1:
                self.first = clock()
            if count == target:
                self.last = clock()
                self.on_done()

        return job

    def steady_job(self, late: list[float], due: Sequence[float]) -> Job:
        """W3/W6: record ``start - due`` of job *i*, and count."""
        clock = self.clock
        target = self.target

        async def job(i: int) -> None:
            late[i] = clock() - due[i]
            count = self.count = self.count + 1
            if count == target:
                self.last = clock()
                self.on_done()

        return job

    def marking_job(self, runs: bytearray) -> Job:
        """W4/W6: count the runs of job *i*, and count."""
        target = self.target

        async def job(i: int) -> None:
            runs[i] += 1
            count = self.count = self.count + 1
            if count == target:
                self.on_done()

        return job

    def ordered_job(self, order: list[int]) -> Job:
        """W5: append *i* to the run order, and count."""
        target = self.target
        clock = self.clock

        async def job(i: int) -> None:
            order.append(i)
            count = self.count = self.count + 1
            if count == target:
                self.last = clock()
                self.on_done()

        return job

    def gated_job(
        self, wait: Callable[[], Awaitable[object]], all_started: Callable[[], object]
    ) -> Job:
        """W7: count the start, wait on the gate, then count the finish."""
        target = self.target
        clock = self.clock

        async def job(i: int) -> None:
            started = self.started = self.started + 1
            if started == target:
                all_started()
            await wait()
            count = self.count = self.count + 1
            if count == target:
                self.last = clock()
                self.on_done()

        return job


async def _never(i: int) -> None:
    """The job of W1: it is never due within the run."""


class Progress:
    """A live one-line progress report on stderr (a line per phase if no TTY)."""

    def __init__(self, label: str, enabled: bool = True) -> None:
        self._label = label
        self._enabled = enabled
        self._live = enabled and sys.stderr.isatty()
        self._last = ""

    @property
    def live(self) -> bool:
        """``True`` if updates overwrite one line (worth sending often)."""
        return self._live

    def update(self, text: str) -> None:
        """Show *text* as the current state."""
        if not self._enabled or text == self._last:
            return
        self._last = text
        if self._live:
            sys.stderr.write(f"\r\x1b[K{self._label}: {text}")
            sys.stderr.flush()
        elif not text[-1:].isdigit():  # phase changes only, not counters
            sys.stderr.write(f"{self._label}: {text}\n")

    def close(self) -> None:
        """End the live line."""
        if self._live and self._last:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


# -- running on a backend ---------------------------------------------------------


def run_on(backend: str, fn: Callable[[], Awaitable[T]]) -> T:
    """Run ``fn()`` under AnyIO on *backend* (``asyncio``, ``uvloop``, ``trio``)."""
    if backend == "trio":
        return anyio.run(fn, backend="trio")
    if backend not in ("asyncio", "uvloop"):
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    options = {"use_uvloop": backend == "uvloop"}
    return anyio.run(fn, backend="asyncio", backend_options=options)


def job_clock(backend: str) -> Callable[[], float]:
    """Return the clock jobs read their start time from, in the loop's time base.

    asyncio's loop clock is :func:`time.monotonic`; uvloop's is the same clock
    truncated to milliseconds and read once per loop iteration, too coarse
    for lateness, so jobs read :func:`time.monotonic` there too. Trio's
    :func:`trio.current_time` is exact.
    """
    if backend == "trio":
        import trio

        return trio.current_time
    return time.monotonic


class _Gate(Protocol):
    def set(self) -> None: ...

    async def wait(self) -> Any: ...


def _native_event(backend: str) -> _Gate:
    """The loop's own event, as a floor job would wait on."""
    if backend == "trio":
        import trio

        return trio.Event()
    return asyncio.Event()


@dataclass
class _Run:
    """What one workload run knows: its parameters and where results go."""

    size: int
    backend: str
    variant: str
    passes: tuple[str, ...]
    progress: Progress
    seed: int
    on_measured: Callable[[Result], None] | None

    def measured(self, result: Result) -> None:
        """Hand over the figures before tearing down (a worker may exit here)."""
        if self.on_measured is not None:
            self.on_measured(result)


async def _wait_done(done: anyio.Event, limit: float) -> bool:
    """Wait for *done*, at most *limit* seconds; ``True`` if it came."""
    with anyio.move_on_after(limit):
        await done.wait()
        return True
    return False


async def _watch(
    progress: Progress, tally: Tally, done: anyio.Event, what: str = "run"
) -> None:
    """Show ``count/target jobs run`` until *done*."""
    if not progress.live:
        return
    while not done.is_set():
        progress.update(f"{tally.count:,}/{tally.target:,} jobs {what}")
        await anyio.sleep(0.2)


def _deadline(task: Task[Any]) -> float:
    """The loop-clock deadline the scheduler gave a timed *task*."""
    deadline = task._deadline
    assert deadline is not None
    return deadline


# -- W1: schedule N timed jobs --------------------------------------------------


@dataclass(frozen=True)
class _FarPool:
    """W1's deadlines in each form's terms: seconds ahead, aware and naive UTC."""

    offsets: list[float]
    aware: list[datetime]
    naive: list[datetime]

    @classmethod
    def make(cls, n: int, seed: int) -> _FarPool:
        offsets = far_offsets(random.Random(seed), w1_low_seconds(n))
        now = datetime.now(UTC)
        aware = [now + timedelta(seconds=s) for s in offsets]
        naive = [when.replace(tzinfo=None) for when in aware]  # 1.x: utcnow() + ...
        return cls(offsets, aware, naive)


def _schedule_far(
    scheduler: TimedScheduler | Manager[TimedScheduler],
    form: str,
    n: int,
    pool: _FarPool,
    progress: Progress,
) -> float:
    """Schedule *n* never-due jobs the *form* way; return the seconds it took."""
    offsets, aware, naive = pool.offsets, pool.aware, pool.naive
    mask = POOL_SIZE - 1
    chunk = max(1, n // 50) if progress.live else n
    start_at = scheduler.start_at
    start_after = scheduler.start_after
    schedule = scheduler.schedule
    progress.update(f"scheduling {n:,} jobs ({form})")
    begin = time.perf_counter()
    for low in range(0, n, chunk):
        high = min(n, low + chunk)
        if form == "start_at":
            for i in range(low, high):
                start_at(aware[i & mask], _never, i)
        elif form == "schedule":
            for i in range(low, high):
                schedule(_never(i), naive[i & mask])
        elif form == "start_after":
            for i in range(low, high):
                start_after(offsets[i & mask], _never, i)
        else:
            raise ValueError(f"unknown W1 form {form!r}")
        if chunk < n:
            progress.update(f"scheduling {form}: {high:,}/{n:,}")
    return time.perf_counter() - begin


async def _w1(run: _Run) -> Result:
    n = run.size
    result: Result = {}
    if "time" in run.passes:
        async with TimedScheduler() as scheduler:
            pool = _FarPool.make(n, run.seed)
            gc.collect()
            rss_before = rss_bytes()
            elapsed = _schedule_far(scheduler, run.variant, n, pool, run.progress)
            rss_after = rss_bytes()
            result["us_per_call"] = elapsed / n * 1e6
            result["rss_per_job"] = (rss_after - rss_before) / n
            result["pending"] = len(scheduler._pending)
            result["peak_rss_mb"] = peak_rss_bytes() / 1e6
            run.measured(result)
            run.progress.update(f"cancelling {n:,} pending jobs")
            await scheduler.aclose()
    if "tracemalloc" in run.passes:
        size = min(n, TRACEMALLOC_CAP)
        async with TimedScheduler() as scheduler:
            scheduler.start_after(3600, _never, -1)  # bind to the loop first
            pool = _FarPool.make(size, run.seed)
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            _schedule_far(scheduler, run.variant, size, pool, run.progress)
            after = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            result["tm_per_job"] = (after - before) / size
            result["tm_size"] = size
            run.measured(result)
            await scheduler.aclose()
    return result


# -- W2: burst --------------------------------------------------------------------


async def _w2(run: _Run) -> Result:
    n = run.size
    done = anyio.Event()
    tally = Tally(n, job_clock(run.backend), done.set)
    job = tally.burst_job()
    lead = burst_lead(n)
    async with TimedScheduler() as scheduler, anyio.create_task_group() as watch:
        run.progress.update(f"scheduling {n:,} jobs due in {lead:.2f} s")
        when = datetime.now(UTC) + timedelta(seconds=lead)
        start_at = scheduler.start_at
        first = start_at(when, job, 0)
        for i in range(1, n):
            start_at(when, job, i)
        due = _deadline(first)
        overran = tally.clock() >= due
        watch.start_soon(_watch, run.progress, tally, done)
        finished = await _wait_done(done, lead + 60 + n * 1e-4)
    all_s = tally.last - due
    result: Result = {
        "first_ms": (tally.first - due) * 1e3,
        "all_ms": all_s * 1e3,
        "jobs_per_s": n / all_s if finished else 0.0,
        "never_run": n - tally.count,
        "setup_overran": overran,
    }
    run.measured(result)
    return result


# -- W3: steady -------------------------------------------------------------------


async def _w3(run: _Run) -> Result:
    n = run.size
    done = anyio.Event()
    late = [math.nan] * n
    due = [0.0] * n
    tally = Tally(n, job_clock(run.backend), done.set)
    job = tally.steady_job(late, due)
    lead = steady_lead(n)
    async with TimedScheduler() as scheduler, anyio.create_task_group() as watch:
        run.progress.update(f"scheduling {n:,} jobs over {SPREAD_S:g} s")
        base = datetime.now(UTC) + timedelta(seconds=lead)
        step = timedelta(seconds=SPREAD_S / n)
        start_at = scheduler.start_at
        tasks = [start_at(base + step * i, job, i) for i in range(n)]
        for i, task in enumerate(tasks):
            due[i] = _deadline(task)
        overran = tally.clock() >= due[0]
        del tasks
        watch.start_soon(_watch, run.progress, tally, done)
        await _wait_done(done, lead + SPREAD_S + 60)
        scheduler._request_close()  # whatever is left over never runs
    result = lateness_stats(late)
    result["setup_overran"] = overran
    run.measured(result)
    return result


# -- W4: cancel -------------------------------------------------------------------


def verify_runs(runs: bytearray, victims: Sequence[int]) -> int:
    """Count the wrong outcomes: a cancelled job that ran, a live one that did not."""
    wrong = sum(1 for i in victims if runs[i])
    for i in victims:
        runs[i] = 1
    return wrong + runs.count(0) + sum(1 for b in runs if b > 1)


def cancel_victims(n: int, seed: int) -> list[int]:
    """The 10% of *n* jobs W4 cancels, in random order."""
    return random.Random(seed + 4).sample(range(n), n // 10)


#: W4 runs the surviving jobs (to check that they all run) up to this size;
#: above it, it checks the pending count and the cancelled flags instead.
W4_RUN_LIMIT = 100_000


async def _w4(run: _Run) -> Result:
    n = run.size
    victims = cancel_victims(n, run.seed)
    done = anyio.Event()
    runs = bytearray(n)
    tally = Tally(n - len(victims), job_clock(run.backend), done.set)
    job = tally.marking_job(runs)
    check_by_running = n <= W4_RUN_LIMIT
    result: Result = {}
    async with TimedScheduler() as scheduler, anyio.create_task_group() as watch:
        run.progress.update(f"scheduling {n:,} jobs")
        start_after = scheduler.start_after
        if check_by_running:
            # Due soon, one second apart in total: the survivors then run.
            lead = steady_lead(n)
            tasks = [start_after(lead + i / n, job, i) for i in range(n)]
        else:
            offsets = far_offsets(random.Random(run.seed), w1_low_seconds(n))
            mask = POOL_SIZE - 1
            tasks = [start_after(offsets[i & mask], job, i) for i in range(n)]
        chosen = [tasks[i] for i in victims]
        cancel = scheduler.cancel
        run.progress.update(f"cancelling {len(chosen):,} of {n:,}")
        gc.collect()
        begin = time.perf_counter()
        for task in chosen:
            cancel(task)
        elapsed = time.perf_counter() - begin
        result["us_per_cancel"] = elapsed / len(chosen) * 1e6
        if check_by_running:
            result["setup_overran"] = tally.clock() >= _deadline(tasks[0])
        del chosen
        if check_by_running:
            watch.start_soon(_watch, run.progress, tally, done)
            await _wait_done(done, steady_lead(n) + 60)
            await anyio.sleep(0.05)  # room for a cancelled job to run, wrongly
            result["wrong_runs"] = verify_runs(runs, victims)
            result["checked"] = "run"
        else:
            wrong = sum(1 for i in victims if not tasks[i].cancelled())
            wrong += abs(len(scheduler._pending) - (n - len(victims)))
            result["wrong_runs"] = wrong
            result["checked"] = "state"
            run.measured(result)
        del tasks
        run.progress.update("closing")
        scheduler._request_close()
    run.measured(result)
    return result


# -- W5: queue --------------------------------------------------------------------


def order_kept(order: Sequence[int], slots: Sequence[int] | None = None) -> bool:
    """``True`` if jobs ran in scheduling order (per queue, given the queues)."""
    if slots is None:
        return all(a < b for a, b in itertools.pairwise(order))
    last: dict[int, int] = {}
    for i in order:
        slot = slots[i]
        if last.get(slot, -1) > i:
            return False
        last[slot] = i
    return True


async def _w5(run: _Run) -> Result:
    n = run.size
    done = anyio.Event()
    order: list[int] = []
    tally = Tally(n, job_clock(run.backend), done.set)
    job = tally.ordered_job(order)
    queue: QueuedScheduler | Manager[QueuedScheduler]
    if run.variant == "serial":
        queue = QueuedScheduler()
    elif run.variant == "manager8":
        queue = Manager(8, cls=QueuedScheduler)
    else:
        raise ValueError(f"unknown W5 variant {run.variant!r}")
    async with queue, anyio.create_task_group() as watch:
        watch.start_soon(_watch, run.progress, tally, done)
        begin = tally.clock()
        start_soon = queue.start_soon
        tasks = [start_soon(job, i) for i in range(n)]
        finished = await _wait_done(done, 120)
    elapsed = tally.last - begin
    slots = None
    if isinstance(queue, Manager):
        owners = {id(s): k for k, s in enumerate(queue.schedulers)}
        slots = [owners[id(task._owner)] for task in tasks]
    result: Result = {
        "jobs_per_s": n / elapsed if finished else 0.0,
        "order_ok": order_kept(order, slots),
        "never_run": n - tally.count,
    }
    run.measured(result)
    return result


# -- W6: Manager(20) with N pending -------------------------------------------------


def window_size(n: int) -> int:
    """W6: how many of the *n* jobs come due during the run."""
    return min(WINDOW_MAX, max(1, n // 20))


async def _w6(run: _Run) -> Result:
    n = run.size
    window = window_size(n)
    far = n - window
    done = anyio.Event()
    late = [math.nan] * window
    due = [0.0] * window
    tally = Tally(window, job_clock(run.backend), done.set)
    window_job = tally.steady_job(late, due)
    far_ran = 0

    async def far_job(i: int) -> None:  # never due within the run
        nonlocal far_ran
        far_ran += 1

    offsets = far_offsets(random.Random(run.seed), 120 + w1_low_seconds(n))
    mask = POOL_SIZE - 1
    steps = [timedelta(seconds=WINDOW_S * k / window) for k in range(window)]
    gc.collect()
    rss_before = rss_bytes()
    manager: Manager[TimedScheduler] = Manager(20)
    async with manager, anyio.create_task_group() as watch:
        start_at = manager.start_at
        chunk = max(1, far // 50) if run.progress.live else far
        now = datetime.now(UTC)
        pool = [now + timedelta(seconds=s) for s in offsets]
        begin = time.perf_counter()
        for low in range(0, far, chunk):
            for i in range(low, min(far, low + chunk)):
                start_at(pool[i & mask], far_job, i)
            run.progress.update(f"scheduling: {min(far, low + chunk):,}/{n:,}")
        base = datetime.now(UTC) + timedelta(seconds=WINDOW_LEAD_S)
        tasks = [start_at(base + step, window_job, k) for k, step in enumerate(steps)]
        schedule_s = time.perf_counter() - begin
        for k, task in enumerate(tasks):
            due[k] = _deadline(task)
        del tasks
        rss_after = rss_bytes()
        watch.start_soon(_watch, run.progress, tally, done)
        await _wait_done(done, WINDOW_LEAD_S + WINDOW_S + 60)
        await anyio.sleep(0.05)  # room for a duplicate run to show
        stats = lateness_stats(late)
        result: Result = {
            "schedule_s": schedule_s,
            "us_per_call": schedule_s / n * 1e6,
            "rss_per_job": (rss_after - rss_before) / n,
            "peak_rss_mb": peak_rss_bytes() / 1e6,
            **stats,
            "lost": stats["never_run"] + (tally.count - window),
            "far_ran": far_ran,
            "window": window,
        }
        run.measured(result)
        run.progress.update(f"cancelling {far:,} pending jobs")
        await manager.aclose()
    return result


# -- W7: completion cost ------------------------------------------------------------


async def _w7(run: _Run) -> Result:
    n = run.size
    done = anyio.Event()
    all_started = anyio.Event()
    gate = _native_event(run.backend)
    tally = Tally(n, job_clock(run.backend), done.set)
    job = tally.gated_job(gate.wait, all_started.set)
    async with TimedScheduler() as scheduler:
        run.progress.update(f"starting {n:,} jobs")
        start_after = scheduler.start_after
        for i in range(n):
            start_after(0, job, i)
        await _wait_done(all_started, 60)
        run.progress.update(f"releasing {n:,} running jobs")
        begin = tally.clock()
        gate.set()
        with anyio.move_on_after(60):
            await scheduler.join()
        elapsed = tally.clock() - begin
    result: Result = {
        "us_per_completion": elapsed / n * 1e6,
        "never_run": n - tally.count,
    }
    run.measured(result)
    return result


_RUNNERS: dict[str, Callable[[_Run], Awaitable[Result]]] = {
    "W1": _w1,
    "W2": _w2,
    "W3": _w3,
    "W4": _w4,
    "W5": _w5,
    "W6": _w6,
    "W7": _w7,
}


def run(
    workload: str,
    size: int,
    backend: str = "asyncio",
    *,
    variant: str | None = None,
    passes: tuple[str, ...] = ("time", "tracemalloc"),
    progress: Progress | None = None,
    seed: int = 0,
    on_measured: Callable[[Result], None] | None = None,
) -> Result:
    """Run *workload* once on aioscheduler at *size* on *backend*; return figures.

    :param variant: the workload's variant (W1 form, W5 queue kind); default
        its first
    :param passes: W1 only: ``"time"`` (µs per call and RSS) and/or
        ``"tracemalloc"`` (bytes per job, at most at :data:`TRACEMALLOC_CAP`)
    :param on_measured: called with the figures as soon as they are known,
        before the (possibly long) tear-down of millions of pending jobs
    """
    spec = WORKLOADS[workload]
    chosen = variant or spec.variants[0]
    if chosen not in spec.variants:
        raise ValueError(f"{workload} has variants {spec.variants}, not {chosen!r}")
    state = _Run(
        size=size,
        backend=backend,
        variant=chosen,
        passes=passes,
        progress=progress or Progress("", enabled=False),
        seed=seed,
        on_measured=on_measured,
    )
    runner = _RUNNERS[workload]

    async def main() -> Result:
        return await runner(state)

    return run_on(backend, main)


# -- the command line ---------------------------------------------------------------


def _summarise(values: Sequence[Any], fmt: str) -> str:
    texts = [fmt.format(v) for v in values]
    if len(set(texts)) == 1:
        return texts[0]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return ", ".join(texts)
    low, high = min(values), max(values)
    return (
        f"{fmt.format(statistics.median(values))}"
        f" ({fmt.format(low)}-{fmt.format(high)})"
    )


def _table(results: Sequence[Result]) -> list[str]:
    rows: list[tuple[str, str]] = []
    for key, (label, unit, fmt) in METRICS.items():
        values = [r[key] for r in results if key in r]
        if len(values) == len(results):
            text = _summarise(values, fmt)
            rows.append((label, f"{text} {unit}".rstrip()))
    width = max(len(label) for label, _ in rows) if rows else 0
    return [f"  {label:<{width}}  {value}" for label, value in rows]


def main(argv: list[str]) -> int:
    """Parse *argv*, run one workload, print a summary table; return exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m aioscheduler bench",
        description="Run one benchmark workload on aioscheduler, in this process. "
        + "; ".join(f"{w.id}: {w.title}" for w in WORKLOADS.values())
        + ". The full suite with baselines is `nox -s bench` in the source tree.",
    )
    parser.add_argument(
        "--workload", "-w", choices=sorted(WORKLOADS), default="W2", type=str.upper
    )
    parser.add_argument(
        "--size",
        "-n",
        type=lambda s: int(s.replace("_", "").replace(",", "")),
        help="number of jobs (default: the workload's smallest size in issue 3)",
    )
    parser.add_argument("--backend", "-b", choices=BACKENDS, default="asyncio")
    parser.add_argument(
        "--variant",
        help="W1: start_at (default), schedule or start_after; W5: serial "
        "(default) or manager8",
    )
    parser.add_argument(
        "--engine",
        choices=["native", "anyio"],
        default=None,
        help="asyncio engine: native (default) or the portable AnyIO one "
        "(the same as AIOSCHEDULER_ENGINE=anyio)",
    )
    parser.add_argument("--repeat", "-r", type=int, default=1, help="runs (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args(argv)

    spec = WORKLOADS[options.workload]
    size: int = options.size or spec.sizes[0]
    variant: str = options.variant or spec.variants[0]
    if variant not in spec.variants:
        parser.error(f"{spec.id} has variants {', '.join(spec.variants)}")
    if size < 10 or options.repeat < 1:
        parser.error("--size must be at least 10 and --repeat at least 1")
    if options.engine is not None:
        os.environ["AIOSCHEDULER_ENGINE"] = "anyio" if options.engine == "anyio" else ""
    engine = "anyio" if os.environ.get("AIOSCHEDULER_ENGINE") == "anyio" else "native"
    if options.backend == "trio":
        try:
            import trio  # noqa: F401
        except ImportError:
            parser.error("--backend trio needs trio: pip install aioscheduler[trio]")

    title = f"{spec.id} {variant} N={size:,} {options.backend}"
    results: list[Result] = []
    for rep in range(options.repeat):
        label = (
            title if options.repeat == 1 else f"{title} [{rep + 1}/{options.repeat}]"
        )
        progress = Progress(label)
        try:
            results.append(
                run(
                    spec.id,
                    size,
                    options.backend,
                    variant=variant,
                    progress=progress,
                    seed=options.seed + rep,
                )
            )
        finally:
            progress.close()

    python = sys.version.split()[0]
    print(f"aioscheduler {__version__} bench: {spec.id} - {spec.title}")
    print(
        f"  N={size:,}  variant={variant}  backend={options.backend}"
        f" ({engine} engine)  Python {python}  runs={options.repeat}"
        + ("  (median, min-max)" if options.repeat > 1 else "")
    )
    for line in _table(results):
        print(line)
    if any(r.get("setup_overran") for r in results):
        print("  warning: scheduling overran the first deadline; figures are biased")
    bad = any(
        r.get("never_run") or r.get("wrong_runs") or r.get("lost") or r.get("far_ran")
        for r in results
    ) or not all(r.get("order_ok", True) for r in results)
    return 1 if bad else 0
