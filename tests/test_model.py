"""Model-based test: random programs, checked step by step against a model.

A Hypothesis ``RuleBasedStateMachine`` drives four fronts at once: a
TimedScheduler, a QueuedScheduler, a LifoQueuedScheduler and a Manager (of
1-3 schedulers of a random kind), each with a random ``max_tasks`` and served
by ``async with`` or by ``task_group.start(front.run)``. Its rules schedule
jobs in every form (callable and coroutine; delays, ``timedelta``, naive and
aware datetimes in any zone; plenty of ties), cancel tasks (pending, running,
done, foreign, twice; through the task, the front, a manager's scheduler or
another front), advance virtual time, ``join`` and ``aclose``. Jobs return,
raise, sleep, cancel themselves or schedule further jobs, on any front.

Driving an event loop from a synchronous state machine: every example runs
its event loop (``anyio.run`` with the path's backend and virtual clock) in
a thread of its own, which executes one step at a time. Between steps the
loop thread is *blocked* in ``queue.get()``: nothing runs and virtual time
cannot move. A step ends when every task is blocked again ("settled").
Whatever happens is appended, in the order it happens and with the loop
time, to a trace: scheduling calls and what they returned or raised, job
starts and ends, cancels and what they returned, ``on_error`` calls, and the
beginning and end of ``join``, ``aclose``, exits and time advances.

After each step the model replays the trace and checks every event against
the contract: exactly once (no job starts twice, or after being cancelled),
never early, never late (whenever time moves on, nothing due before then may
still be outstanding), order (Queued in scheduling order, Lifo newest first,
one at a time; Timed ties in scheduling order on asyncio, where start order
is observable), routing (a Manager call goes to a least loaded scheduler),
``max_tasks``, refusals once closed, return values of ``cancel``, each
terminal state and its result or exception, ``on_error`` called once per
failure, ``join`` returning as soon as its front is idle, ``aclose`` not
letting time pass, and normal exits waiting for every job. At the end
every job must have ended, and the counts must add up.

Hypothesis settings come from the ``aioscheduler-model`` profile (bounded,
for the default run); ``AIOSCHEDULER_MODEL_PROFILE=aioscheduler-model-long``
runs many more, longer examples.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import queue
import sys
import threading
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar

import anyio
import anyio.lowlevel
import pytest
from anyio.abc import TaskGroup
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from aioscheduler import (
    LifoQueuedScheduler,
    Manager,
    QueuedScheduler,
    SchedulerClosed,
    SchedulerError,
    Task,
    TaskCancelled,
    TaskLimitReached,
    TimedScheduler,
)
from tests.conftest import backend_options, steady_wall_clock

settings.register_profile(
    "aioscheduler-model",
    max_examples=200,
    stateful_step_count=30,
    # The same programs every run: the coverage check below must not depend
    # on a lucky draw (a random run once made no tie in 200 programs). The
    # long profile explores afresh each time.
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile(
    "aioscheduler-model-long",
    max_examples=2000,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
PROFILE = os.environ.get("AIOSCHEDULER_MODEL_PROFILE", "aioscheduler-model")

FRONTS = ("timed", "queued", "lifo", "manager")
KINDS: dict[str, type[Any]] = {
    "timed": TimedScheduler,
    "queued": QueuedScheduler,
    "lifo": LifoQueuedScheduler,
}
# Loop times are compared with this slack: looptime keeps whole microseconds.
EPS = 1e-5
# Datetime jobs are this much further ahead, so that "in the past" (judged
# against the real wall clock) can never apply to them.
DATETIME_LEAD = 30.0
ZONES = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
EPOCH_AWARE = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_NAIVE = datetime(1970, 1, 1)
# A step taking this long in virtual time is hung (jobs are all finite).
GUARD = 1e6
# ...and this long in real time (the whole loop is stuck).
REAL_TIMEOUT = 30.0

Op = Callable[[], Awaitable[None]]


class Boom(Exception):
    """What jobs that fail raise."""


# -- what a job does ---------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """A job: where it goes, how it is scheduled, and what its body does."""

    front: str
    form: str  # call | coro | timedelta | aware | naive (queued: call | coro)
    delay: float
    dur: float | None  # None: never awaits; 0: one checkpoint
    outcome: str  # return | raise | self_cancel
    zone: int = 0
    children: tuple[Spec, ...] = ()  # scheduled by the body when it starts


def _specs(children: st.SearchStrategy[tuple[Spec, ...]]) -> st.SearchStrategy[Spec]:
    return st.builds(
        Spec,
        front=st.sampled_from(FRONTS),
        form=st.sampled_from(["call", "call", "coro", "timedelta", "aware", "naive"]),
        delay=st.sampled_from([0, 0, 1, 1, 2, 3, 5, 2.5]),
        dur=st.sampled_from([None, 0, 0, 1, 2, 4]),
        outcome=st.sampled_from(["return", "return", "raise", "self_cancel"]),
        zone=st.integers(0, len(ZONES) - 1),
        children=children,
    )


SPECS = st.recursive(
    _specs(st.just(())),
    lambda inner: _specs(st.lists(inner, min_size=1, max_size=2).map(tuple)),
    max_leaves=4,
)


@dataclass(frozen=True)
class Config:
    manager_kind: str
    manager_n: int
    max_tasks: dict[str, int | None]
    modes: dict[str, str]  # with | run


CONFIGS = st.builds(
    Config,
    manager_kind=st.sampled_from(["timed", "queued", "lifo"]),
    manager_n=st.integers(1, 3),
    max_tasks=st.fixed_dictionaries(
        {name: st.one_of(st.none(), st.none(), st.integers(1, 6)) for name in FRONTS}
    ),
    modes=st.fixed_dictionaries(
        {name: st.sampled_from(["with", "run"]) for name in FRONTS}
    ),
)


@dataclass(eq=False)
class Job:
    """One job: its spec, its Task, and the model's view of it."""

    jid: int
    spec: Spec
    parent: Job | None
    task: Task[Any] | None = None
    # -- the model ---------------------------------------------------------
    state: str = "new"  # pending running finished failed cancelled | refused
    sched: MSched | None = None
    seq: int = 0
    d_lo: float = 0.0  # its deadline is in [d_lo, d_hi] (timed)
    d_hi: float = 0.0
    key: tuple[str, float] | None = None  # equal keys: a tie, exactly
    started: float | None = None
    end_by: float | None = None
    cancel_requested: bool = False
    cancel_delivered: bool = False
    refusal: SchedulerError | None = None  # what scheduling its child raised
    value: Any = None  # its result, or its exception
    reported: int = 0
    final_checked: bool = False

    def __repr__(self) -> str:
        s = self.spec
        return (
            f"<job {self.jid} on {s.front} {s.form} delay={s.delay} dur={s.dur} "
            f"{s.outcome} kids={len(s.children)} {self.state}>"
        )


# -- the trace -------------------------------------------------------------------


@dataclass
class Scheduled:
    job: Job
    t: float
    owner: int | None  # index of the scheduler that took it (None: refused)
    error: SchedulerError | None
    when: datetime | None


@dataclass
class Started:
    job: Job
    t: float


@dataclass
class Ended:
    job: Job
    t: float
    how: str  # return | raise | cancelled | survived
    value: Any


@dataclass
class CancelCall:
    job: Job
    via: str  # task | self | front | sub | other
    target: str  # the front cancel() was called on (via front/sub/other)
    index: int  # the manager's scheduler (via sub)
    t: float
    returned: bool


@dataclass
class Reported:
    task: Task[Any]
    exc: Exception
    t: float


@dataclass
class Mark:
    what: str  # join/aclose/exit/advance + _begin/_done
    front: str
    t: float
    dt: float = 0.0


Event = Scheduled | Started | Ended | CancelCall | Reported | Mark


# -- the loop side -----------------------------------------------------------------


async def job_body(world: World, job: Job) -> int:
    """Every job runs this; it records what it does in the trace."""
    spec = job.spec
    world.trace.append(Started(job, anyio.current_time()))
    try:
        for child in spec.children:
            world.submit(world.new_job(child, job))  # SchedulerError: we fail
        if spec.dur is not None:
            await anyio.sleep(spec.dur)
        if spec.outcome == "self_cancel":
            world.cancel(job, "self", 0)
            await anyio.lowlevel.checkpoint()
            world.trace.append(Ended(job, anyio.current_time(), "survived", None))
            return job.jid
        if spec.outcome == "raise":
            exc = Boom(job.jid)
            world.trace.append(Ended(job, anyio.current_time(), "raise", exc))
            raise exc
    except SchedulerError as exc:
        world.trace.append(Ended(job, anyio.current_time(), "raise", exc))
        raise
    except world.cancelled_exc:
        world.trace.append(Ended(job, anyio.current_time(), "cancelled", None))
        raise
    world.trace.append(Ended(job, anyio.current_time(), "return", job.jid))
    return job.jid


class World:
    """The real schedulers, on the loop thread; everything they do goes to the trace."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.trace: list[Event] = []
        self.jobs: list[Job] = []
        self.fronts: dict[str, Any] = {}
        self.timed = {
            name: (
                name == "timed" or (name == "manager" and cfg.manager_kind == "timed")
            )
            for name in FRONTS
        }
        self.entered: list[str] = []  # fronts entered with `async with`, in order
        self.run_group: TaskGroup | None = None
        self.offset_lo = self.offset_hi = 0.0
        self.cancelled_exc: type[BaseException] = BaseException

    def take_trace(self) -> list[Event]:
        events, self.trace = self.trace, []
        return events

    def new_job(self, spec: Spec, parent: Job | None) -> Job:
        job = Job(len(self.jobs), spec, parent)
        self.jobs.append(job)
        return job

    def on_error(self, task: Task[Any], exc: Exception) -> None:
        self.trace.append(Reported(task, exc, anyio.current_time()))

    def mark(self, what: str, front: str = "", dt: float = 0.0) -> None:
        self.trace.append(Mark(what, front, anyio.current_time(), dt))

    # -- ops ---------------------------------------------------------------------

    async def open(self) -> None:
        cfg = self.cfg
        self.cancelled_exc = anyio.get_cancelled_exc_class()
        # Each scheduler reads its wall-to-loop offset when it starts; ours
        # are taken before and after, while the virtual clock stands still.
        self.offset_lo = steady_wall_clock() - anyio.current_time()
        mt = cfg.max_tasks
        manager_options: dict[str, Any] = {}
        if KINDS[cfg.manager_kind] is TimedScheduler:
            manager_options["wall_clock"] = steady_wall_clock
        self.fronts = {
            "timed": TimedScheduler(
                mt["timed"], on_error=self.on_error, wall_clock=steady_wall_clock
            ),
            "queued": QueuedScheduler(mt["queued"], on_error=self.on_error),
            "lifo": LifoQueuedScheduler(mt["lifo"], on_error=self.on_error),
            "manager": Manager(
                cfg.manager_n,
                mt["manager"],
                KINDS[cfg.manager_kind],
                on_error=self.on_error,
                **manager_options,
            ),
        }
        self.run_group = anyio.create_task_group()
        await self.run_group.__aenter__()
        for name in FRONTS:
            front = self.fronts[name]
            if cfg.modes[name] == "with":
                await front.__aenter__()
                self.entered.append(name)
            else:
                await self.run_group.start(front.run)
        self.offset_hi = steady_wall_clock() - anyio.current_time()

    async def schedule(self, job: Job) -> None:
        # A refusal is in the trace; the model says whether it should have been.
        with contextlib.suppress(SchedulerError):
            self.submit(job)

    async def cancel_op(self, job: Job, via: str, index: int) -> None:
        self.cancel(job, via, index)

    async def advance(self, dt: float) -> None:
        self.mark("advance_begin", dt=dt)
        await anyio.sleep(dt)
        self.mark("advance_done")

    async def join(self, name: str) -> None:
        self.mark("join_begin", name)
        await self.fronts[name].join()
        self.mark("join_done", name)

    async def aclose(self, name: str) -> None:
        self.mark("aclose_begin", name)
        await self.fronts[name].aclose()
        self.mark("aclose_done", name)

    async def close_all(self) -> None:
        """End of the example: leave every block normally, stop every run()."""
        while self.entered:
            name = self.entered.pop()
            self.mark("exit_begin", name)
            await self.fronts[name].__aexit__(None, None, None)
            self.mark("exit_done", name)
        for name in FRONTS:
            if self.cfg.modes[name] == "run":
                await self.join(name)
                await self.aclose(name)
        assert self.run_group is not None
        group, self.run_group = self.run_group, None
        await group.__aexit__(None, None, None)

    async def abort(self) -> None:
        """After a failure: cancel everything, whatever state it is in."""
        while self.entered:
            front = self.fronts[self.entered.pop()]
            with contextlib.suppress(Exception):
                await front.__aexit__(RuntimeError, RuntimeError("abort"), None)
        group, self.run_group = self.run_group, None
        if group is not None:
            group.cancel_scope.cancel()
            with contextlib.suppress(Exception):
                await group.__aexit__(None, None, None)

    # -- calls made by ops and by jobs --------------------------------------

    def submit(self, job: Job) -> None:
        """Schedule *job* on its front with its form; trace what happened."""
        spec = job.spec
        front = self.fronts[spec.front]
        now = anyio.current_time()
        when: datetime | None = None
        try:
            if not self.timed[spec.front]:
                if spec.form == "coro":
                    task = front.schedule(job_body(self, job))
                else:
                    task = front.start_soon(job_body, self, job)
            elif spec.form in ("aware", "naive", "coro"):
                stamp = now + spec.delay + DATETIME_LEAD + self.offset_hi
                utc = datetime.fromtimestamp(stamp, UTC)
                if spec.form == "aware":
                    when = utc.astimezone(ZONES[spec.zone])
                    task = front.start_at(when, job_body, self, job)
                elif spec.form == "naive":
                    when = utc.replace(tzinfo=None)
                    task = front.start_at(when, job_body, self, job)
                else:
                    when = utc.replace(tzinfo=None)
                    task = front.schedule(job_body(self, job), when)
            elif spec.form == "timedelta":
                delay = timedelta(seconds=spec.delay)
                task = front.start_after(delay, job_body, self, job)
            else:
                task = front.start_after(spec.delay, job_body, self, job)
        except SchedulerError as exc:
            self.trace.append(Scheduled(job, now, None, exc, when))
            raise
        job.task = task
        self.trace.append(
            Scheduled(job, now, self.owner_index(front, task), None, when)
        )

    @staticmethod
    def owner_index(front: Any, task: Task[Any]) -> int:
        if not isinstance(front, Manager):
            return 0
        # Which scheduler a Manager picked is not public; the test reads it
        # (read only) to check the routing and to model each queue.
        owners = [i for i, s in enumerate(front.schedulers) if s is task._owner]
        assert len(owners) == 1
        return owners[0]

    def cancel(self, job: Job, via: str, index: int) -> None:
        task = job.task
        assert task is not None
        target = ""
        if via in ("task", "self"):
            returned = task.cancel()
        elif via == "front":
            target = job.spec.front
            returned = self.fronts[target].cancel(task)
        elif via == "sub":
            target = "manager"
            schedulers = self.fronts["manager"].schedulers
            index %= len(schedulers)
            returned = schedulers[index].cancel(task)
        else:
            others = [name for name in FRONTS if name != job.spec.front]
            target = others[index % len(others)]
            returned = self.fronts[target].cancel(task)
        now = anyio.current_time()
        self.trace.append(CancelCall(job, via, target, index, now, returned))


# -- running a loop one step at a time, in a thread --------------------------------


async def settle(backend: str) -> None:
    """Return once every other task is blocked, without letting time move."""
    if backend == "trio":
        # Trio wakes this before it would autojump the MockClock.
        await anyio.wait_all_tasks_blocked()
        return
    loop = asyncio.get_running_loop()
    me = asyncio.current_task()
    calm = 0
    while calm < 2:
        # Always ready again at once, so looptime never jumps meanwhile.
        await asyncio.sleep(0)
        calm = calm + 1 if _asyncio_idle(loop, me) else 0


def _asyncio_idle(loop: asyncio.AbstractEventLoop, me: object) -> bool:
    if loop._ready:  # type: ignore[attr-defined]
        return False
    now = loop.time()
    for handle in loop._scheduled:  # type: ignore[attr-defined]
        if not handle.cancelled() and handle.when() <= now:
            return False
    for task in asyncio.all_tasks(loop):
        if task is me:
            continue
        waiter = task._fut_waiter  # type: ignore[attr-defined]
        if waiter is None or waiter.done():
            return False
    return True


class LoopThread:
    """An event loop in a thread of its own, frozen between steps."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self._inbox: queue.SimpleQueue[Op | None] = queue.SimpleQueue()
        self._outbox: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()
        self._deadline = math.inf
        self._thread = threading.Thread(
            target=self._main, name="model-loop", daemon=True
        )
        self._thread.start()

    def _main(self) -> None:
        try:
            anyio.run(
                self._serve,
                backend=self.backend,
                backend_options=backend_options(self.backend),
            )
        except BaseException as exc:
            self._outbox.put((False, exc))
        else:
            self._outbox.put((False, RuntimeError("the event loop has stopped")))

    async def _serve(self) -> None:
        self._deadline = anyio.current_time() + GUARD
        async with anyio.create_task_group() as group:
            group.start_soon(self._watchdog, group.cancel_scope)
            # Blocking the loop thread here is the point: between steps
            # nothing runs, so virtual time stands still.
            while (op := self._inbox.get()) is not None:
                self._deadline = anyio.current_time() + GUARD
                try:
                    await op()
                    await settle(self.backend)
                except Exception as exc:
                    self._outbox.put((False, exc))
                else:
                    self._outbox.put((True, anyio.current_time()))
            group.cancel_scope.cancel()

    async def _watchdog(self, scope: anyio.CancelScope) -> None:
        # Each step pushes the deadline on; it passes only if a step hangs.
        while anyio.current_time() < self._deadline:  # noqa: ASYNC110
            await anyio.sleep_until(self._deadline)
        self._outbox.put(
            (False, AssertionError(f"a step ran {GUARD} s of virtual time: hung"))
        )
        scope.cancel()

    def call(self, op: Op) -> float:
        """Run *op* on the loop, let it settle; return the loop time then."""
        if not self._thread.is_alive() and self._outbox.empty():
            raise RuntimeError("the event loop thread has ended")
        self._inbox.put(op)
        try:
            ok, value = self._outbox.get(timeout=REAL_TIMEOUT)
        except queue.Empty:
            frame = sys._current_frames().get(self._thread.ident or 0)
            stack = "".join(traceback.format_stack(frame)) if frame else "(gone)"
            raise AssertionError(
                f"a step took over {REAL_TIMEOUT} s; the loop thread is at:\n{stack}"
            ) from None
        if not ok:
            raise value
        assert isinstance(value, float)
        return value

    def stop(self) -> None:
        self._inbox.put(None)
        self._thread.join(REAL_TIMEOUT)
        assert not self._thread.is_alive(), "the event loop thread did not stop"


# -- the model ------------------------------------------------------------------------


class MSched:
    """One scheduler as the model sees it."""

    def __init__(self, front: MFront, index: int, kind: str) -> None:
        self.front = front
        self.index = index
        self.kind = kind  # timed | queued | lifo
        self.pending: dict[int, Job] = {}
        self.running: dict[int, Job] = {}
        self.serving = True
        self.next_seq = 0

    def load(self) -> int:
        return len(self.pending) + len(self.running)

    def __repr__(self) -> str:
        return f"{self.front.name}[{self.index}]"


class MFront:
    def __init__(
        self, name: str, kind: str, n: int, max_tasks: int | None, real: Any
    ) -> None:
        self.name = name
        self.real = real
        self.scheds = [MSched(self, i, kind) for i in range(n)]
        self.max_tasks = max_tasks
        self.closed = False
        self.exiting = False
        self.joins = 0
        self.jobs: list[Job] = []
        self.aclose_began = 0.0

    def load(self) -> int:
        return sum(s.load() for s in self.scheds)


class ModelError(AssertionError):
    pass


class Model:
    """Replays the trace and checks each event against the contract."""

    def __init__(
        self, world: World, backend: str, now: float, coverage: Counter[str]
    ) -> None:
        self.world = world
        self.now = now
        self.coverage = coverage
        # Jobs tied on one scheduler start in scheduling order; on Trio,
        # tasks started together then run in a random order.
        self.tie_order = backend == "asyncio"
        cfg = world.cfg
        self.fronts = {
            name: MFront(
                name,
                cfg.manager_kind if name == "manager" else name,
                cfg.manager_n if name == "manager" else 1,
                cfg.max_tasks[name],
                world.fronts[name],
            )
            for name in FRONTS
        }
        self.by_task: dict[int, Job] = {}
        self.advance_from = 0.0
        self.advance_by = 0.0
        self.last: list[Event] = []

    def fail(self, message: str) -> None:
        recent = "\n  ".join(repr(e) for e in self.last[-12:])
        raise ModelError(
            f"{message}\n(at loop time {self.now}; last events:\n  {recent})"
        )

    # -- time ------------------------------------------------------------------

    def time_to(self, t: float) -> None:
        if t < self.now - EPS:
            self.fail(f"loop time went back from {self.now} to {t}")
        if t > self.now + EPS:
            self.overdue(before=t)
        self.now = max(self.now, t)

    def overdue(self, before: float) -> None:
        """Fail if anything due before *before* is still outstanding."""
        for front in self.fronts.values():
            if front.joins and front.load() == 0:
                self.fail(f"join({front.name}) did not return once it was idle")
            for s in front.scheds:
                if not s.serving:
                    continue
                if s.kind == "timed":
                    for job in s.pending.values():
                        if job.d_hi < before - EPS:
                            self.fail(
                                f"{job} due by {job.d_hi} on {s} has not started by "
                                f"{before}: late or lost"
                            )
                elif s.pending and not s.running:
                    self.fail(f"{s} sits idle with {list(s.pending.values())} pending")
                for job in s.running.values():
                    if job.end_by is not None and job.end_by < before - EPS:
                        self.fail(f"{job} should have ended by {job.end_by} on {s}")

    # -- events -----------------------------------------------------------------------

    def replay(self, events: list[Event]) -> None:
        for event in events:
            self.last.append(event)
            del self.last[:-40]
            if isinstance(event, Scheduled):
                self.scheduled(event)
            elif isinstance(event, Started):
                self.started(event)
            elif isinstance(event, Ended):
                self.ended(event)
            elif isinstance(event, CancelCall):
                self.cancel_call(event)
            elif isinstance(event, Reported):
                self.reported(event)
            else:
                self.mark(event)

    def scheduled(self, e: Scheduled) -> None:
        job = e.job
        self.time_to(e.t)
        front = self.fronts[job.spec.front]
        parent = job.parent
        if parent is not None:
            self.coverage["spawn"] += 1
            if parent.state != "running":
                self.fail(f"{parent} scheduled {job} while {parent.state}")
        expected: type[SchedulerError] | None = None
        if front.closed:
            expected = SchedulerClosed
        elif front.max_tasks is not None and front.load() >= front.max_tasks:
            expected = TaskLimitReached
        got = None if e.error is None else type(e.error)
        if front.exiting and got is SchedulerClosed and front.load() == 0:
            # Leaving `async with` normally: once idle, it may shut its door.
            expected = SchedulerClosed
        if got is not expected:
            self.fail(
                f"scheduling {job} on {front.name} (load {front.load()}, max_tasks "
                f"{front.max_tasks}, closed {front.closed}) gave {e.error!r}, "
                f"expected {expected.__name__ if expected else 'a task'}"
            )
        if e.error is not None:
            self.coverage[f"refused-{type(e.error).__name__}"] += 1
            job.state = "refused"
            if parent is not None:
                parent.refusal = e.error
                parent.end_by = e.t
            return
        assert e.owner is not None
        assert job.task is not None
        s = front.scheds[e.owner]
        least = min(x.load() for x in front.scheds)
        if s.load() != least:
            self.fail(
                f"{job} went to {s} with load {s.load()}, not the least ({least})"
            )
        if len(front.scheds) > 1:
            self.coverage["routed"] += 1
        job.sched = s
        job.seq = s.next_seq
        s.next_seq += 1
        s.pending[job.jid] = job
        job.state = "pending"
        front.jobs.append(job)
        self.by_task[id(job.task)] = job
        if s.kind == "timed":
            if e.when is None:
                job.d_lo = job.d_hi = e.t + float(job.spec.delay)
                job.key = ("loop", job.d_lo)
            else:
                self.coverage["datetime"] += 1
                if e.when.tzinfo is None:
                    stamp = (e.when - EPOCH_NAIVE).total_seconds()
                else:
                    stamp = (e.when - EPOCH_AWARE).total_seconds()
                job.d_lo = stamp - self.world.offset_hi
                job.d_hi = stamp - self.world.offset_lo
                job.key = ("wall", stamp)

    def started(self, e: Started) -> None:
        job = e.job
        self.time_to(e.t)
        if job.state != "pending":
            self.fail(f"{job} started while {job.state}: ran twice, or after cancel")
        s = job.sched
        assert s is not None
        if not s.serving:
            self.fail(f"{job} started on {s}, which no longer serves")
        if s.kind == "timed":
            if e.t < job.d_lo - EPS:
                self.fail(f"{job} started at {e.t}, before its deadline {job.d_lo}")
            ties = [
                other
                for other in s.pending.values()
                if other is not job and other.key == job.key
            ]
            if ties:
                self.coverage["tie"] += 1
            if self.tie_order and any(other.seq < job.seq for other in ties):
                self.fail(f"{job} started before {ties}, tied and scheduled earlier")
        else:
            if s.running:
                self.fail(f"{job} started while {list(s.running.values())} runs on {s}")
            seqs = [other.seq for other in s.pending.values()]
            head = min(seqs) if s.kind == "queued" else max(seqs)
            if job.seq != head:
                self.fail(f"{job} started out of order on {s} ({s.kind})")
            if len(seqs) > 1:
                self.coverage[f"order-{s.kind}"] += 1
        del s.pending[job.jid]
        s.running[job.jid] = job
        job.state = "running"
        job.started = e.t
        job.end_by = e.t + (job.spec.dur or 0)

    def ended(self, e: Ended) -> None:
        job = e.job
        self.time_to(e.t)
        if job.state != "running":
            self.fail(f"{job} ended while {job.state}")
        assert job.sched is not None
        assert job.end_by is not None
        if job.cancel_delivered:
            expected = "cancelled"
        elif job.refusal is not None:
            expected = "raise"
        elif job.spec.outcome == "self_cancel":
            expected = "cancelled"  # self-cancel is always delivered
        else:
            expected = job.spec.outcome
        if e.how != expected:
            self.fail(f"{job} ended by {e.how} ({e.value!r}), expected {expected}")
        if not job.cancel_delivered and e.t < job.end_by - EPS:
            self.fail(f"{job} ended at {e.t}, before {job.end_by}")
        if e.how == "return":
            if e.value != job.jid:
                self.fail(f"{job} returned {e.value!r}")
            job.state, job.value = "finished", job.jid
        elif e.how == "raise":
            if job.refusal is not None:
                if e.value is not job.refusal:
                    self.fail(f"{job} raised {e.value!r}, not {job.refusal!r}")
            elif not (isinstance(e.value, Boom) and e.value.args == (job.jid,)):
                self.fail(f"{job} raised {e.value!r}")
            job.state, job.value = "failed", e.value
            self.coverage["failed"] += 1
        else:
            job.state = "cancelled"
        del job.sched.running[job.jid]

    def cancel_call(self, e: CancelCall) -> None:
        job = e.job
        self.time_to(e.t)
        live = job.state in ("pending", "running")
        assert job.sched is not None
        if e.via in ("task", "self", "front"):
            owns = True
        elif e.via == "sub":
            owns = job.spec.front == "manager" and job.sched.index == e.index
        else:
            owns = False
        expected = live and owns
        if e.returned is not expected:
            self.fail(
                f"cancel of {job} via {e.via} {e.target}[{e.index}] returned "
                f"{e.returned}, expected {expected}"
            )
        self.coverage[f"cancel-{job.state}"] += 1
        self.coverage[f"cancel-via-{e.via}"] += 1
        if not expected:
            return
        job.cancel_requested = True
        if job.state == "pending":
            del job.sched.pending[job.jid]
            job.state = "cancelled"
        else:
            job.cancel_delivered = True
            job.end_by = e.t

    def reported(self, e: Reported) -> None:
        self.time_to(e.t)
        job = self.by_task.get(id(e.task))
        if job is None or job.task is not e.task:
            self.fail(f"on_error called with a task the model does not know: {e.task}")
            return
        if job.state != "failed" or e.exc is not job.value:
            self.fail(
                f"on_error({job}, {e.exc!r}) but it {job.state} with {job.value!r}"
            )
        job.reported += 1
        if job.reported > 1:
            self.fail(f"on_error called {job.reported} times for {job}")

    def mark(self, e: Mark) -> None:
        self.time_to(e.t)
        front = self.fronts.get(e.front)
        what = e.what
        if what == "advance_begin":
            self.advance_from = e.t
            self.advance_by = e.dt
        elif what == "advance_done":
            if abs(e.t - (self.advance_from + self.advance_by)) > EPS:
                self.fail(
                    f"sleep({self.advance_by}) from {self.advance_from} ended at {e.t}"
                )
        elif front is None:
            self.fail(f"unknown mark {e}")
        elif what == "join_begin":
            front.joins += 1
        elif what == "join_done":
            front.joins -= 1
            if front.load():
                self.fail(f"join({front.name}) returned with {front.load()} jobs left")
            self.coverage["join"] += 1
        elif what == "aclose_begin":
            front.aclose_began = e.t
            front.closed = True
            for s in front.scheds:
                for job in s.pending.values():
                    job.state = "cancelled"
                    job.cancel_requested = True
                s.pending.clear()
                for job in s.running.values():
                    job.cancel_requested = job.cancel_delivered = True
                    job.end_by = e.t
                    self.coverage["aclose-running"] += 1
        elif what == "aclose_done":
            if e.t > front.aclose_began + EPS:
                self.fail(
                    f"aclose({front.name}) let time pass: {front.aclose_began}->{e.t}"
                )
            self.closed(front, "aclose")
        elif what == "exit_begin":
            front.exiting = True
        elif what == "exit_done":
            self.closed(front, "a normal exit")
        else:
            self.fail(f"unknown mark {e}")

    def closed(self, front: MFront, how: str) -> None:
        front.closed = True
        for s in front.scheds:
            s.serving = False
        for job in front.jobs:
            if job.state in ("pending", "running"):
                self.fail(f"after {how} of {front.name}, {job} has not ended")
            if job.state == "cancelled" and not job.cancel_requested:
                self.fail(f"{job} was cancelled by {how} of {front.name}")

    # -- after each step ------------------------------------------------------------

    def check_settled(self, now: float) -> None:
        self.time_to(now)
        self.overdue(before=now)
        for front in self.fronts.values():
            if front.real.is_started is front.closed:
                self.fail(f"{front.name}.is_started is {front.real.is_started}")
        for job in self.world.jobs:
            if not job.final_checked:
                self.check_task(job)

    def check_task(self, job: Job) -> None:
        task = job.task
        state = job.state
        if state in ("new", "refused"):
            return
        assert task is not None
        if state in ("pending", "running"):
            if task.done():
                self.fail(f"{job}: task is done already ({task!r})")
            return
        if not task.done():
            self.fail(f"{job}: task is not done ({task!r})")
        if state == "finished":
            ok = not task.cancelled() and task.exception() is None
            if not ok or task.result() != job.jid:
                self.fail(f"{job}: task {task!r} should have finished with {job.jid}")
        elif state == "failed":
            if task.cancelled() or task.exception() is not job.value:
                self.fail(f"{job}: task {task!r} should have failed with {job.value!r}")
            with pytest.raises(type(job.value)) as info:
                task.result()
            assert info.value is job.value
        else:
            if not task.cancelled():
                self.fail(f"{job}: task {task!r} should be cancelled")
            with pytest.raises(TaskCancelled):
                task.result()
            with pytest.raises(TaskCancelled):
                task.exception()
        if job.reported != (state == "failed"):
            self.fail(f"{job}: on_error called {job.reported} times")
        job.final_checked = True

    def check_final(self) -> None:
        counts: Counter[str] = Counter()
        for job in self.world.jobs:
            if job.state in ("new", "pending", "running"):
                self.fail(f"{job} never ended: lost")
            job.final_checked = False
            self.check_task(job)
            counts[job.state] += 1
        tasks = [job.task for job in self.world.jobs if job.task is not None]
        seen = Counter(
            "cancelled"
            if task.cancelled()
            else "failed"
            if task.exception() is not None
            else "finished"
            for task in tasks
        )
        assert seen == counts - Counter({"refused": counts["refused"]})
        reports = sum(job.reported for job in self.world.jobs)
        assert reports == counts["failed"]
        for front in self.fronts.values():
            assert front.real.is_started is False
        for state, n in counts.items():
            self.coverage[state] += n


# -- the state machine ------------------------------------------------------------


class SchedulerMachine(RuleBasedStateMachine):
    backend: ClassVar[str] = "asyncio"
    coverage: ClassVar[Counter[str]] = Counter()

    def __init__(self) -> None:
        super().__init__()
        self.loop: LoopThread | None = None
        self.world: World | None = None
        self.model: Model | None = None
        self.broken = False
        self.schedules = 0  # preconditions must not depend on what the loop did

    def _step(self, op: Op) -> None:
        assert self.loop is not None
        assert self.world is not None
        try:
            now = self.loop.call(op)
            if self.model is None:
                self.model = Model(self.world, self.backend, now, self.coverage)
            self.model.replay(self.world.take_trace())
            self.model.check_settled(now)
        except BaseException:
            self.broken = True
            raise

    @property
    def w(self) -> World:
        assert self.world is not None
        return self.world

    @initialize(cfg=CONFIGS)
    def open(self, cfg: Config) -> None:
        self.loop = LoopThread(self.backend)
        self.world = World(cfg)
        self._step(self.world.open)

    @rule(spec=SPECS)
    def schedule(self, spec: Spec) -> None:
        self.schedules += 1
        job = self.w.new_job(spec, None)
        self._step(lambda: self.w.schedule(job))

    @rule(spec=SPECS)
    def schedule_more(self, spec: Spec) -> None:
        self.schedule(spec)

    @precondition(lambda self: self.schedules > 0)
    @rule(
        pick=st.integers(0, 2**16),
        via=st.sampled_from(["task", "front", "front", "sub", "other"]),
        index=st.integers(0, 5),
    )
    def cancel(self, pick: int, via: str, index: int) -> None:
        jobs = [job for job in self.w.jobs if job.task is not None]
        if not jobs:
            return  # every call so far was refused
        # Favour live jobs; done ones are picked too (cancel twice, late).
        live = [job for job in jobs if job.task is not None and not job.task.done()]
        pool = live if live and pick % 4 else jobs
        job = pool[pick % len(pool)]
        self._step(lambda: self.w.cancel_op(job, via, index))

    @rule(dt=st.sampled_from([0, 1, 1, 2, 3, 7, 45]))
    def advance(self, dt: float) -> None:
        self._step(lambda: self.w.advance(dt))

    @rule(front=st.sampled_from(FRONTS))
    def join(self, front: str) -> None:
        self._step(lambda: self.w.join(front))

    @rule(front=st.sampled_from(FRONTS))
    def aclose(self, front: str) -> None:
        self._step(lambda: self.w.aclose(front))

    def teardown(self) -> None:
        loop, world = self.loop, self.world
        if loop is None or world is None:
            return
        try:
            if not self.broken:
                self._step(world.close_all)
                assert self.model is not None
                self.model.check_final()
        finally:
            if self.broken:
                with contextlib.suppress(BaseException):
                    loop.call(world.abort)
            loop.stop()


@pytest.mark.timeout(600)  # room to shrink a failure; a pass takes seconds
def test_model(anyio_backend: tuple[str, dict[str, Any]]) -> None:
    name = anyio_backend[0]
    coverage: Counter[str] = Counter()
    machine = type(
        f"SchedulerMachine_{name}",
        (SchedulerMachine,),
        {"backend": name, "coverage": coverage},
    )
    profile = settings.get_profile(PROFILE)
    if name == "trio":
        # Trio runs tasks woken together in a random order, so a failing
        # example may not fail again: shrinking would mostly chase that.
        # A failure is reported as found (and saved for replay).
        phases = [phase for phase in profile.phases if phase is not Phase.shrink]
        profile = settings(profile, phases=phases)
    run_state_machine_as_test(machine, settings=profile)
    # The examples did exercise what the model checks.
    wanted = [
        "finished",
        "failed",
        "cancelled",
        "spawn",
        "datetime",
        "tie",
        "order-queued",
        "order-lifo",
        "join",
        "refused-SchedulerClosed",
        "cancel-pending",
        "cancel-running",
        "cancel-finished",
        "cancel-via-other",
        "cancel-via-sub",
    ]
    missing = [what for what in wanted if not coverage[what]]
    assert not missing, (missing, coverage)
