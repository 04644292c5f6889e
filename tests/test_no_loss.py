"""No job is ever lost: a seeded random workload with every kind of ending.

Thousands of jobs with random delays (0-600 s of virtual time, many ties),
about 10% cancelled while pending, 10% cancelled while running, 10% failing
and 10% scheduling one more job. At the end every task is done in exactly
the terminal state its story calls for, jobs cancelled while pending never
ran, no timed job started before its deadline, and the counts add up.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from aioscheduler import (
    LifoQueuedScheduler,
    Manager,
    QueuedScheduler,
    Task,
    TimedScheduler,
)
from tests.conftest import steady_wall_clock

JOBS = 3000
SEED = 20240601
MAX_DELAY = 600
# Fractions of a second added to some delays: deadlines off any clock grid
# (1000.2 + 0.1 is not 1000.3 in floating point), as real code makes them.
FRACTIONS = [0, 0, 0, 0, 0.1, 0.3, 0.5, 0.7]
# asyncio runs a timer when it is due within the clock's resolution, so a job
# may start this much (a nanosecond) before a deadline that is off the grid.
CLOCK_RESOLUTION = 1e-9
# datetime deadlines also go through the wall-to-loop clock offset, whose
# float rounding (looptime keeps whole microseconds) adds a little more.
DATETIME_SLACK = 1e-5
# datetime jobs are due at least this long after the wall clock read before
# scheduling them all: as long as the test may take in real time (its
# timeout), so it can never see one refused as "in the past".
DATETIME_LEAD = 30

KINDS = ["timed", "queued", "lifo", "manager-timed", "manager-queued"]
PLANS = ["ok"] * 6 + ["cancel_pending", "cancel_running", "fail", "spawn"]


class Boom(Exception):
    """What failing jobs raise."""


@dataclass(eq=False)
class Job:
    index: int
    plan: str
    delay: float  # seconds after scheduling (timed kinds)
    duration: float  # how long the body sleeps
    form: str = "after"  # after | timedelta | at | coro (timed); soon | coro
    cancel_at: float | None = None  # when to cancel a "cancel_pending" job
    child: Job | None = None  # the job a "spawn" job schedules
    parent: Job | None = None
    task: Task[Any] | None = None
    earliest: float | None = None  # loop time it may start at, exactly
    wall_when: float | None = None  # POSIX time it may start at (datetime forms)
    starts: int = 0
    started_at: float | None = None
    completed: bool = False
    interrupted: bool = False
    cancelled_pending: bool = False
    notes: list[str] = field(default_factory=list)


class Workload:
    def __init__(self, kind: str, rng: random.Random) -> None:
        self.kind = kind
        self.timed = kind.endswith("timed")
        self.rng = rng
        self.failures: list[tuple[Task[Any], Exception]] = []
        self.jobs: list[Job] = []
        self.group: Any = None
        self.wall_offset = 0.0
        self.target: Any = None
        for index in range(JOBS):
            self.jobs.append(self._plan(index, rng.choice(PLANS)))

    def _plan(self, index: int, plan: str) -> Job:
        rng = self.rng
        if self.timed:
            delay = self._delay()
            duration = rng.choice([0, 0, 0.5, 0.1, rng.randrange(60)])
            form = rng.choice(["after", "after", "timedelta", "at", "coro"])
            if form in ("at", "coro") and delay < DATETIME_LEAD:
                # The wall clock runs on while the 3000 jobs are scheduled:
                # "soon" in wall time could already be the past by then.
                delay += DATETIME_LEAD
        else:
            delay = 0
            duration = rng.choice([0, 0, 0.5, 0.1, rng.randrange(4)])
            form = rng.choice(["soon", "soon", "coro"])
        job = Job(index, plan, delay, duration, form)
        if plan == "cancel_pending":
            if self.timed:
                # Well before its deadline, or at once.
                job.cancel_at = rng.choice([None, delay * rng.uniform(0, 0.99)])
            else:
                job.cancel_at = rng.choice([None, rng.uniform(0, JOBS / 2)])
        elif plan == "spawn":
            child = Job(-index - 1, "ok", self._delay(), duration)
            child.form = "after" if self.timed else "soon"
            child.parent = job
            job.child = child
        return job

    def _delay(self) -> float:
        return self.rng.randrange(MAX_DELAY + 1) + self.rng.choice(FRACTIONS)

    # -- the job body ---------------------------------------------------------

    async def body(self, job: Job) -> int:
        job.starts += 1
        job.started_at = anyio.current_time()
        if job.plan == "cancel_running":
            self.group.start_soon(self.cancel_running, job)
            try:
                await anyio.sleep_forever()
            finally:
                job.interrupted = True
        await anyio.sleep(job.duration)
        if job.plan == "fail":
            raise Boom(job.index)
        if job.child is not None:
            self.schedule(job.child)
        job.completed = True
        return job.index

    # -- scheduling -------------------------------------------------------------

    def schedule(self, job: Job) -> None:
        target = self.target
        if self.timed:
            now = anyio.current_time()
            if job.form == "after":
                job.earliest = now + job.delay
                job.task = target.start_after(job.delay, self.body, job)
            elif job.form == "timedelta":
                job.earliest = now + job.delay
                job.task = target.start_after(
                    timedelta(seconds=job.delay), self.body, job
                )
            else:
                when = self.wall_base + timedelta(seconds=job.delay)
                job.wall_when = when.timestamp()
                if job.form == "at":
                    job.task = target.start_at(when, self.body, job)
                else:  # 1.x form: coroutine and naive UTC datetime
                    naive = when.astimezone(UTC).replace(tzinfo=None)
                    job.task = target.schedule(self.body(job), naive)
        elif job.form == "soon":
            job.task = target.start_soon(self.body, job)
        else:
            job.task = target.schedule(self.body(job))

    def on_error(self, task: Task[Any], exc: Exception) -> None:
        self.failures.append((task, exc))

    def make_target(self) -> Any:
        kinds: dict[str, Any] = {
            "timed": TimedScheduler,
            "queued": QueuedScheduler,
            "lifo": LifoQueuedScheduler,
        }
        # A wall clock that does not slew: see conftest.steady_wall_clock.
        options: dict[str, Any] = {"on_error": self.on_error}
        if self.kind.endswith("timed"):
            options["wall_clock"] = steady_wall_clock
        if self.kind.startswith("manager-"):
            cls = kinds[self.kind.removeprefix("manager-")]
            return Manager(4, None, cls, **options)
        return kinds[self.kind](**options)

    # -- cancellers ---------------------------------------------------------------

    async def cancel_running(self, job: Job) -> None:
        assert job.task is not None
        if job.task.cancel() is not True:
            job.notes.append("cancel of a running job returned False")

    def cancel_pending_now(self, job: Job) -> None:
        assert job.task is not None
        if job.starts:
            return  # too late: it will simply run to its end
        if job.task.cancel() is not True:
            job.notes.append("cancel of a pending job returned False")
        job.cancelled_pending = True

    async def cancel_pending_later(self, base: float) -> None:
        timed = sorted(
            (job for job in self.jobs if job.cancel_at is not None),
            key=lambda job: (job.cancel_at, job.index),
        )
        for job in timed:
            assert job.cancel_at is not None
            await anyio.sleep_until(base + job.cancel_at)
            self.cancel_pending_now(job)

    # -- the run --------------------------------------------------------------------

    async def run(self) -> None:
        async with anyio.create_task_group() as group:
            self.group = group
            async with self.make_target() as target:
                self.target = target
                # Measured after the schedulers bound to the loop, so this
                # wall-to-loop offset is >= theirs: a datetime job started
                # on time satisfies started_at + offset >= its timestamp.
                base = anyio.current_time()
                self.wall_offset = steady_wall_clock() - base
                self.wall_base = datetime.fromtimestamp(
                    steady_wall_clock(), UTC
                ) + timedelta(milliseconds=1)
                for job in self.jobs:
                    self.schedule(job)
                for job in self.jobs:
                    if job.plan == "cancel_pending" and job.cancel_at is None:
                        self.cancel_pending_now(job)
                group.start_soon(self.cancel_pending_later, base)

    # -- the verdict ----------------------------------------------------------------

    def all_jobs(self) -> list[Job]:
        children = [job.child for job in self.jobs if job.child is not None]
        return self.jobs + [child for child in children if child.task is not None]

    def check(self) -> dict[str, int]:
        jobs = self.all_jobs()
        problems: list[str] = []
        counts = {"finished": 0, "failed": 0, "cancelled": 0}
        failures = {id(task): exc for task, exc in self.failures}
        assert len(failures) == len(self.failures), "on_error called twice"
        tasks = [job.task for job in jobs]
        assert len({id(task) for task in tasks}) == len(tasks)
        for job in jobs:
            task = job.task
            assert task is not None
            where = f"job {job.index} ({job.plan}, {job.form})"
            problems.extend(f"{where}: {note}" for note in job.notes)
            if not task.done():
                problems.append(f"{where}: not done")
                continue
            if job.starts > 1:
                problems.append(f"{where}: started {job.starts} times")
            if task.cancelled():
                state = "cancelled"
            elif task.exception() is not None:
                state = "failed"
            else:
                state = "finished"
            counts[state] += 1
            if job.cancelled_pending:
                expected = "cancelled"
                if job.starts:
                    problems.append(f"{where}: ran after being cancelled pending")
            elif job.plan == "cancel_running":
                expected = "cancelled"
                if not (job.starts == 1 and job.interrupted):
                    problems.append(f"{where}: not cancelled while running")
            elif job.plan == "fail":
                expected = "failed"
                exc = task.exception() if state == "failed" else None
                if not (isinstance(exc, Boom) and exc.args == (job.index,)):
                    problems.append(f"{where}: wrong exception {exc!r}")
                if failures.get(id(task)) is not exc:
                    problems.append(f"{where}: on_error not called with it")
            else:
                expected = "finished"
                if state == "finished" and task.result() != job.index:
                    problems.append(f"{where}: result {task.result()!r}")
                if not job.completed:
                    problems.append(f"{where}: body did not complete")
            if state != expected:
                problems.append(f"{where}: {state}, expected {expected}")
            if job.starts and job.started_at is not None:
                if (
                    job.earliest is not None
                    and job.started_at < job.earliest - CLOCK_RESOLUTION
                ):
                    problems.append(
                        f"{where}: started at {job.started_at}, "
                        f"before its deadline {job.earliest}"
                    )
                if job.wall_when is not None and (
                    job.started_at + self.wall_offset < job.wall_when - DATETIME_SLACK
                ):
                    problems.append(f"{where}: started before its datetime")
        assert problems == [], problems[:20]
        spawned = [job for job in self.jobs if job.plan == "spawn"]
        assert all(job.child is not None and job.child.task for job in spawned)
        assert len(jobs) == JOBS + len(spawned)
        assert sum(counts.values()) == len(jobs)
        assert counts["failed"] == len(self.failures)
        assert counts["failed"] == sum(job.plan == "fail" for job in jobs)
        assert counts["cancelled"] == sum(
            job.cancelled_pending or job.plan == "cancel_running" for job in jobs
        )
        return counts


@pytest.mark.timeout(DATETIME_LEAD)
@pytest.mark.parametrize("kind", KINDS)
async def test_no_job_is_lost(kind: str) -> None:
    seed = SEED + KINDS.index(kind)
    workload = Workload(kind, random.Random(seed))
    # Far more virtual time than the workload needs: if a job were lost, the
    # schedulers would never be idle; this turns that hang into a report.
    with anyio.move_on_after(10**6) as scope:
        await workload.run()
    counts = workload.check()
    assert not scope.cancelled_caught, "the workload never finished"
    # The workload really did exercise every ending.
    assert counts["finished"] > JOBS // 2
    assert counts["failed"] > JOBS // 20
    assert counts["cancelled"] > JOBS // 10
    pending_cancels = sum(job.cancelled_pending for job in workload.jobs)
    assert pending_cancels > JOBS // 20
    if workload.timed:
        delays = [job.delay for job in workload.jobs]
        assert len(delays) - len(set(delays)) > JOBS // 10  # plenty of ties


class TestDeadlinesOffTheClockGrid:
    """Float deadlines that sit a hair above a tick of the loop's clock.

    ``1000.0 + 5.0000000000001`` is a deadline 1e-13 s past a whole
    microsecond. Loops fire timers that are due within their clock's
    resolution, and test clocks (looptime) advance in whole ticks; a job due
    there must still run once, not be re-armed forever.
    """

    @pytest.mark.timeout(10)
    @pytest.mark.parametrize(
        "delay", [5.0000000000001, 0.1, 0.3, 1 / 3, 1e-7, 123.456789]
    )
    async def test_job_at_float_deadline_runs_once(self, delay: float) -> None:
        starts: list[float] = []

        async def job() -> None:
            starts.append(anyio.current_time())
            await anyio.lowlevel.checkpoint()

        async with TimedScheduler() as scheduler:
            await anyio.sleep(0.2)  # the clock off its start value
            deadline = anyio.current_time() + delay
            task = scheduler.start_after(delay, job)
        assert task.done()
        assert len(starts) == 1
        assert starts[0] >= deadline - CLOCK_RESOLUTION
