"""Random programs of schedule operations, checked against the contract.

Hypothesis draws a program: schedules added (``Every`` and ``Cron``, with
random ``coalesce``, ``overlap``, ``misfire_grace`` and ``max_runs``), then
steps that pause, resume (with or without catch-up), remove, ``run_now``,
let virtual time pass, block the loop, and step the wall clock forwards and
backwards (a suspend looks like a forward step). It runs on every path in
virtual time. Afterwards, for every schedule:

- wall-clock triggers: no fire time ran twice, and runs of one schedule
  came in fire-time order, across any clock steps;
- wall-clock triggers: no run started before its fire time (by the
  scheduler's wall time), across any clock steps;
- ``pause()`` and ``remove()`` leave no run of theirs waiting to start;
- never more runs than ``max_runs``; ``finished`` once removed;
- ``overlap="skip"``: no two runs of a schedule overlapped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import anyio
import anyio.lowlevel
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aioscheduler import Cron, Every, Schedule, TimedScheduler
from tests.conftest import block_the_loop

TRIGGERS = st.one_of(
    st.builds(Every, st.sampled_from([1, 5, 7.5, 60, 3600])),
    st.sampled_from(
        [
            Cron("* * * * *"),
            Cron("*/5 * * * *"),
            Cron("*/20 * * * * *"),
            Cron("0 * * * *"),
        ]
    ),
)

ADD = st.fixed_dictionaries(
    {
        "trigger": TRIGGERS,
        "coalesce": st.sampled_from(["latest", "earliest", "all"]),
        "overlap": st.sampled_from(["skip", "buffer_one", "buffer_all", "allow"]),
        "misfire_grace": st.sampled_from([None, 0, 5, 600]),
        "max_runs": st.sampled_from([None, 1, 3, 50]),
        "max_catchup": st.sampled_from([1, 3, 100]),
        "work": st.sampled_from([0, 0.5, 30, 400]),
    }
)

STEP = st.one_of(
    st.tuples(st.just("sleep"), st.sampled_from([0.5, 3, 30, 61, 600, 3601])),
    st.tuples(st.just("block"), st.sampled_from([2, 90, 700])),
    st.tuples(st.just("jump"), st.sampled_from([-3600, -30, 45, 600, 86400])),
    st.tuples(st.just("pause"), st.integers(0, 5)),
    st.tuples(st.just("resume"), st.integers(0, 5)),
    st.tuples(st.just("resume_catch_up"), st.integers(0, 5)),
    st.tuples(st.just("remove"), st.integers(0, 5)),
    st.tuples(st.just("run_now"), st.integers(0, 5)),
)


@dataclass
class Seen:
    """What one schedule's runs did."""

    tasks: list[Any] = field(default_factory=list)  # every run, as created
    started: dict[int, datetime] = field(default_factory=dict)  # id(task) -> now
    overlaps: int = 0
    running: int = 0


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,  # the same programs on every run: a failure reproduces
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(adds=st.lists(ADD, min_size=1, max_size=4), steps=st.lists(STEP, max_size=14))
async def test_random_schedule_programs_keep_the_contract(
    adds: list[dict[str, Any]], steps: list[tuple[str, Any]]
) -> None:
    shift = [0.0]
    scheduler = TimedScheduler(wall_clock=lambda: time.time() + shift[0], wall_poll=10)
    schedules: list[Schedule] = []
    options_of: list[dict[str, Any]] = []
    seen: list[Seen] = []
    run_now_tasks: set[int] = set()

    # Record every run a schedule creates (its task's when is its fire time).
    push_run = scheduler._push_run

    def recording_push_run(
        runner: Any,
        args: tuple[Any, ...],
        fire: datetime,
        key: float,
        elapsed: bool,
    ) -> Any:
        task = push_run(runner, args, fire, key, elapsed)
        seen[args[0]].tasks.append(task)
        return task

    scheduler._push_run = recording_push_run  # type: ignore[method-assign]

    async def job(i: int, work: float) -> None:
        record = seen[i]
        now = scheduler.now()
        mine = [t for t in record.tasks if t.running() and id(t) not in record.started]
        assert mine, "a run started that no schedule created"
        task = min(mine, key=lambda t: t.when)
        record.started[id(task)] = now
        record.running += 1
        if record.running > 1 and options_of[i]["overlap"] == "skip":
            record.overlaps += 1
        try:
            if work:
                await anyio.sleep(work)
        finally:
            record.running -= 1

    async with scheduler:
        for i, drawn in enumerate(adds):
            options = dict(drawn)
            work = options.pop("work")
            trigger = options.pop("trigger")
            options_of.append(options)
            seen.append(Seen())
            schedules.append(scheduler.add_schedule(trigger, job, i, work, **options))
        for op, arg in steps:
            if op == "sleep":
                await anyio.sleep(arg)
            elif op == "block":
                block_the_loop(arg)
                await anyio.lowlevel.checkpoint()
            elif op == "jump":
                # Let runs already dispatched take their first step first:
                # the never-early check reads the wall time there.
                for _ in range(5):
                    await anyio.lowlevel.checkpoint()
                shift[0] += arg
                await anyio.lowlevel.checkpoint()
            else:
                i = arg % len(schedules)
                schedule = schedules[i]
                was_finished = schedule.finished  # then both do nothing
                was_paused = schedule.paused
                if op == "pause":
                    schedule.pause()
                    # A run not started by now never starts while paused.
                    # (run_now() while paused runs: it was asked for.)
                    if not was_finished and not was_paused:
                        assert not any(t.pending() for t in seen[i].tasks)
                elif op == "resume":
                    schedule.resume()
                elif op == "resume_catch_up":
                    schedule.resume(catch_up=True)
                elif op == "remove":
                    assert schedule.remove() is not was_finished
                    assert schedule.finished
                    if not was_finished:
                        assert not any(t.pending() for t in seen[i].tasks)
                elif op == "run_now":
                    task = schedule.run_now()
                    if task is not None:
                        run_now_tasks.add(id(task))
        await anyio.sleep(1)
        await scheduler.aclose()

    for i, schedule in enumerate(schedules):
        record, options = seen[i], options_of[i]
        assert record.overlaps == 0, f"schedule {i} overlapped with overlap='skip'"
        if options["max_runs"] is not None:
            assert schedule.runs <= options["max_runs"]
        assert schedule.runs == len(record.tasks)
        assert schedule.finished
        fires = [t.when for t in record.tasks if id(t) not in run_now_tasks]
        if not schedule.trigger.elapsed:
            # Wall-clock triggers keep a high-water mark: across any clock
            # steps, each fire time at most once, in order. (Every's fire
            # times are elapsed time; their wall instants follow the steps.)
            assert len(set(fires)) == len(fires), f"{i}: a fire time ran twice"
            assert fires == sorted(fires), f"schedule {i}: fire times out of order"
        for task in record.tasks:
            at = record.started.get(id(task))
            if at is None or id(task) in run_now_tasks or schedule.trigger.elapsed:
                continue
            assert at >= task.when, f"schedule {i}: a run started early"
