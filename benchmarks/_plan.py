"""Which runs make up a benchmark: the full plan and --quick.

A :class:`Case` is one workload at one size on one implementation and
backend; each of its repetitions runs in a fresh process.

Where the full plan runs fewer repetitions or smaller sizes than the rest,
:data:`REDUCTIONS` says so, and the report repeats it: the whole suite must
finish in under :data:`SUITE_MINUTES` minutes on the 2-core benchmark machine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from ._workloads import WORKLOADS

AIOSCHEDULER = "aioscheduler"
PORTABLE = "aioscheduler-anyio"  # asyncio on the portable engine (backends._PORTABLE)
LEGACY = "aioscheduler-1.4.2"
ASYNCIO_FLOOR = "asyncio-floor"
TRIO_FLOOR = "trio-floor"
TRIO_HEAP = "trio-heap"
AIOJOBS = "aiojobs"
APSCHEDULER = "apscheduler"

#: impl -> what the report calls it
IMPL_LABELS = {
    AIOSCHEDULER: "aioscheduler 2",
    PORTABLE: "aioscheduler 2 (AnyIO engine)",
    ASYNCIO_FLOOR: "asyncio floor",
    TRIO_FLOOR: "trio floor",
    TRIO_HEAP: "trio floor (one-task heap)",
    AIOJOBS: "aiojobs",
    LEGACY: "aioscheduler 1.4.2",
    APSCHEDULER: "APScheduler 3.11",
}

#: what each baseline is, for the report
IMPL_NOTES = {
    ASYNCIO_FLOOR: "W1-W4: `loop.call_at(deadline, spawn, i)` with `spawn` doing "
    "`loop.create_task(job(i))`; W5: an `asyncio.Queue` drained by one task "
    "awaiting each job; W7: one `create_task` per job, timed until every job "
    "has ended and its task is released",
    TRIO_FLOOR: "W1-W4: one `nursery.start_soon` per job sleeping until its "
    "deadline (W4: inside its own `CancelScope`); W5: a memory channel drained "
    "by one task; W7: one `start_soon` per job",
    TRIO_HEAP: "a minimal one-task heap that `start_soon`s due jobs (W1: only "
    "the `heappush`, which is all it does per pending job; W4: cancel marks "
    "a flag)",
    AIOJOBS: "W2: one task sleeps until the due instant, then `await "
    "scheduler.spawn(job(i))` for every job (`limit=None`); W5: "
    "`Scheduler(limit=1)` (serial) and `limit=8` (against the Manager of 8)",
    LEGACY: "from PyPI into `benchmarks/.baselines/`, run on Python 3.10 (its "
    "TimedScheduler fails on 3.11+), asyncio only, coroutine form only; "
    "lateness on the wall clock (it schedules by `datetime.utcnow()`)",
    APSCHEDULER: "3.x, `AsyncIOScheduler(timezone=UTC)` with its memory job "
    "store and `AsyncIOExecutor` (a coroutine job is a task on the loop), "
    "asyncio only; one `add_job(job, 'date', run_date=..., args=(i,))` per "
    "job on the running scheduler (W7: `add_job(job, args=(i,))`, run now). "
    "Job defaults `misfire_grace_time=None` (its default, 1 s, drops a job "
    "started more than 1 s late: all 100k of W2's burst), `coalesce=False`, "
    "`max_instances=N`. W1: `us_per_call` is the calls alone; each also "
    "queues a wake-up of the scheduler, run before the RSS is read; W4: "
    "`job.remove()`, the survivors due over 1 s and all run; W7: until the "
    "executor has recorded every job's end. Lateness on the wall clock (it "
    "decides what is due by `datetime.now(tz)`). No W5 (no serial queue) "
    "and no W6 (no Manager)",
}


@dataclass(frozen=True)
class Case:
    """One workload, size, implementation and backend; run *reps* times."""

    workload: str
    variant: str
    size: int
    impl: str
    backend: str
    reps: int
    tracemalloc: bool = False
    #: run beside a seeded CPU-bound busy loop on the same core
    #: (``benchmarks/_contend.py``); the floors it is compared with too
    contended: bool = False

    @property
    def key(self) -> tuple[Any, ...]:
        return (
            self.workload,
            self.variant,
            self.size,
            self.impl,
            self.backend,
            self.tracemalloc,
            self.contended,
        )

    @property
    def label(self) -> str:
        """The variant as tables show it: ``random (contended)``."""
        return self.variant + (" (contended)" if self.contended else "")

    def spec(self, rep: int) -> dict[str, Any]:
        """The JSON a worker gets for repetition *rep*."""
        spec = asdict(self)
        del spec["reps"]
        spec["seed"] = rep
        return spec


#: The trio start_soon floor holds a task per pending job (~3 KB each, and
#: ~40 µs of set-up); above this size it would dominate the suite's time.
TRIO_FLOOR_MAX = 100_000

#: What the full suite's wall time must stay under, in minutes.
SUITE_MINUTES = 25

#: W2 also runs once at this size (aioscheduler, asyncio and trio), to show how
#: the first job after due scales (issue #13, item 3).
W2_SCALE = 1_000_000

#: Where the full plan departs from "every size, 3+ repetitions".
REDUCTIONS = [
    "Secondary figures run once (marked ¹): baselines that no target compares "
    "with (W2's trio start_soon floor and aiojobs at 100k, every W4 baseline "
    "but the trio start_soon floor at 100k, which a Trio target compares with), "
    "the 1M `schedule` and `start_after` forms (their target is memory), and "
    "aioscheduler 1.4.2 at its slow sizes.",
    "W1 at 10M: aioscheduler `start_at` on asyncio, once (~40 s; W6 holds 10M "
    "jobs on the other backends). No baseline at 10M: the ratios are taken "
    "at 1M.",
    "W1 tracemalloc bytes/job: once at N=100k on asyncio (tracemalloc is "
    "deterministic here, the same on every backend, and slows allocation "
    "2-3x); RSS bytes/job is measured in every timing run.",
    "The trio start_soon floor (a task per pending job, ~3 KB and ~40 µs of "
    "set-up each) runs up to 100k in W1 and W4 (its per-job figures are flat; "
    "1M would take ~40 s and ~3 GB a run); in W4 it is checked on state, its "
    "set-up outlasting any near deadline.",
    "W3 (every run takes 6-15 s): 3 runs of aioscheduler at 200k, the target "
    "size; the baselines once at 200k; at 50k aioscheduler once. W3 random "
    "only at 200k: 3 runs of aioscheduler and of the floors, idle and "
    "contended (the targets compare with the floors' p99); aioscheduler 1.4.2 "
    "once, idle.",
    "Contended runs (a busy loop pinned beside the run) only where a target "
    "asks: W2 at 100k (aioscheduler and the floors the W2 targets compare "
    "with), W3 random at 200k, and W7 at 8k on Trio (aioscheduler and the "
    "trio floor).",
    "W2 at 1M: aioscheduler on asyncio and trio, once, idle: how the first "
    "job after due scales with the burst (no baseline).",
    "W4 at 1M: the 900k surviving jobs are far ahead, so the check is on state "
    "(cancelled flags, pending count); at 100k every survivor runs and every "
    "cancelled job is checked not to. aioscheduler 1.4.2 only at 100k, and it "
    "stops cancelling after 3 s (its cancel scans the heap): the figure is "
    "the mean of the cancels done.",
    "W6 at 10M: once on asyncio and trio (~1 min a run today; uvloop changes "
    "nothing in a scheduling loop); aioscheduler 1.4.2 at 200k (its Manager "
    "sorts its schedulers on every call: 10M would take minutes).",
    "APScheduler (asyncio only) up to 100k jobs: its memory job store keeps "
    "a sorted list, so each `add_job`, removal and due job moves the list's "
    "tail (~50 µs per `add_job` at 100k, and its leads allow 120 µs a job; "
    "1M would take many minutes). W1 at 10k and 100k (tracemalloc at 10k: "
    "100k takes ~30 s); W2 at 10k, and once at 100k; W3 once at 50k (200k "
    "would add ~40 s); W4 once at 100k; W7 at 2k and 8k.",
]


def _backends_of(impl: str, backends: tuple[str, ...]) -> tuple[str, ...]:
    native = {
        AIOSCHEDULER: ("asyncio", "uvloop", "trio"),
        PORTABLE: ("asyncio",),
        ASYNCIO_FLOOR: ("asyncio", "uvloop"),
        AIOJOBS: ("asyncio", "uvloop"),
        TRIO_FLOOR: ("trio",),
        TRIO_HEAP: ("trio",),
        LEGACY: ("asyncio",),
        APSCHEDULER: ("asyncio",),
    }[impl]
    return tuple(b for b in native if b in backends)


def build(
    *,
    quick: bool,
    reps: int,
    backends: tuple[str, ...],
    workloads: tuple[str, ...],
    impls: tuple[str, ...],
    idle_only: bool = False,
    contended_only: bool = False,
) -> list[Case]:
    """Return the cases of a run, in the order they run.

    *idle_only* leaves out the contended cases; *contended_only* keeps only
    them.
    """
    cases: list[Case] = []

    def add(
        workload: str,
        variant: str,
        size: int,
        impl: str,
        times: int = reps,
        tracemalloc: bool = False,
        only: tuple[str, ...] | None = None,
        contended: bool = False,
    ) -> None:
        if impl not in impls or workload not in workloads:
            return
        if (idle_only and contended) or (contended_only and not contended):
            return
        for backend in _backends_of(impl, backends):
            if only is None or backend in only:
                case = Case(workload, variant, size, impl, backend, times, tracemalloc)
                if contended:
                    case = replace(case, contended=True)
                cases.append(case)

    sizes = {w.id: (w.quick if quick else w.sizes) for w in WORKLOADS.values()}
    big = 1_000_000
    few = 1  # secondary figures (see REDUCTIONS)

    # W1: scheduling cost and memory per pending job.
    for size in sizes["W1"]:
        if size > big:  # 10M: aioscheduler on asyncio, once (W6 has 10M too)
            add("W1", "start_at", size, AIOSCHEDULER, 1, only=("asyncio",))
            continue
        add("W1", "start_at", size, AIOSCHEDULER)
        add("W1", "schedule", size, AIOSCHEDULER, few if size >= big else reps)
        if size == big or (quick and size == sizes["W1"][-1]):
            add("W1", "start_after", size, AIOSCHEDULER, few)
        add("W1", "call_at", size, ASYNCIO_FLOOR)
        add("W1", "heappush", size, TRIO_HEAP)
        if size <= TRIO_FLOOR_MAX:
            add("W1", "start_soon", size, TRIO_FLOOR)
        add("W1", "schedule", size, LEGACY, few if size >= big else reps)
    tm_size = min(100_000, max(sizes["W1"]))
    for form in ("start_at", "schedule", "start_after"):
        add("W1", form, tm_size, AIOSCHEDULER, 1, True, only=("asyncio",))
    add("W1", "call_at", tm_size, ASYNCIO_FLOOR, 1, True, only=("asyncio",))
    add("W1", "start_soon", tm_size, TRIO_FLOOR, 1, True)
    add("W1", "heappush", tm_size, TRIO_HEAP, 1, True)
    add("W1", "schedule", tm_size, LEGACY, 1, True)

    # W2: a burst all due at once. The targets compare with the asyncio
    # floor and the trio heap; the other baselines run once at 100k.
    for size in sizes["W2"]:
        large = size >= 100_000
        for impl in (AIOSCHEDULER, PORTABLE, ASYNCIO_FLOOR, TRIO_HEAP):
            add("W2", "burst", size, impl)
        for impl in (TRIO_FLOOR, AIOJOBS, LEGACY):
            add("W2", "burst", size, impl, few if large else reps)
    # Contended, at the target size: aioscheduler and the floors the W2
    # targets compare with. And how the first job after due scales: 1M once.
    for impl in (AIOSCHEDULER, ASYNCIO_FLOOR, TRIO_HEAP):
        add("W2", "burst", sizes["W2"][-1], impl, contended=True)
    if not quick:
        add("W2", "burst", W2_SCALE, AIOSCHEDULER, 1, only=("asyncio", "trio"))

    # W3: steady load over 5 s (each run takes 6-15 s): the 200k target
    # size gets the repetitions, for aioscheduler.
    for size in sizes["W3"]:
        target = size == sizes["W3"][-1]
        add("W3", "steady", size, AIOSCHEDULER, reps if target else few)
        add("W3", "steady", size, PORTABLE, reps if target else few)
        if target or quick:
            for impl in (ASYNCIO_FLOOR, TRIO_FLOOR, TRIO_HEAP, LEGACY):
                add("W3", "steady", size, impl, few)
        if target:
            # Random arrivals, idle and contended: the targets compare with
            # the floors' p99, so the floors get the repetitions too.
            for contended in (False, True):
                for impl in (AIOSCHEDULER, ASYNCIO_FLOOR, TRIO_HEAP, TRIO_FLOOR):
                    add("W3", "random", size, impl, contended=contended)
            add("W3", "random", size, LEGACY, few)

    # W4: cancelling 10% of the pending jobs.
    for size in sizes["W4"]:
        add("W4", "cancel", size, AIOSCHEDULER)
        add("W4", "cancel", size, ASYNCIO_FLOOR, few)
        add("W4", "cancel", size, TRIO_HEAP, few)
        if size <= TRIO_FLOOR_MAX:
            # The floor of the Trio target (a real cancellable Trio job).
            add("W4", "cancel", size, TRIO_FLOOR)
            add("W4", "cancel", size, LEGACY, 1)

    # W5: queues.
    for size in sizes["W5"]:
        for variant in ("serial", "manager8"):
            add("W5", variant, size, AIOSCHEDULER)
            add("W5", variant, size, PORTABLE)
            if variant == "serial":
                add("W5", variant, size, ASYNCIO_FLOOR)
                add("W5", variant, size, TRIO_FLOOR)
            add("W5", variant, size, AIOJOBS)
            add("W5", variant, size, LEGACY, few)

    # W6: Manager(20) with millions pending (~1 min a run at 10M today).
    for size in sizes["W6"]:
        if size > big:
            add("W6", "manager20", size, AIOSCHEDULER, 1, only=("asyncio", "trio"))
        else:
            add("W6", "manager20", size, AIOSCHEDULER)
        add("W6", "manager20", min(size, 200_000), LEGACY, 1)

    # W7: completion cost with many jobs running.
    for size in sizes["W7"]:
        for impl in (AIOSCHEDULER, PORTABLE, ASYNCIO_FLOOR, TRIO_FLOOR):
            add("W7", "release", size, impl)
        add("W7", "release", size, LEGACY, 1 if size > 2_000 else reps)
    # Contended: the Trio engine against its floor, at the larger size.
    for impl in (AIOSCHEDULER, TRIO_FLOOR):
        add("W7", "release", sizes["W7"][-1], impl, only=("trio",), contended=True)

    _add_apscheduler(add, sizes, reps, few)
    return cases


#: APScheduler's largest size (see REDUCTIONS); tracemalloc at the smallest.
APSCHEDULER_MAX = 100_000
APSCHEDULER_TRACEMALLOC = 10_000


def _add_apscheduler(
    add: Callable[..., None], sizes: dict[str, tuple[int, ...]], reps: int, few: int
) -> None:
    """APScheduler 3.x's cases, sizes capped (~1.5 min in the full plan)."""
    for size in sizes["W1"]:
        if size <= APSCHEDULER_MAX:
            add("W1", "add_job", size, APSCHEDULER)
    add("W1", "add_job", APSCHEDULER_TRACEMALLOC, APSCHEDULER, 1, True)
    for size in sizes["W2"]:
        add("W2", "burst", size, APSCHEDULER, few if size >= 100_000 else reps)
    for size in sizes["W3"]:
        if size <= 50_000:
            add("W3", "steady", size, APSCHEDULER, few)
    for size in sizes["W4"]:
        if size <= APSCHEDULER_MAX:
            add("W4", "cancel", size, APSCHEDULER, few)
    for size in sizes["W7"]:
        add("W7", "release", size, APSCHEDULER)
