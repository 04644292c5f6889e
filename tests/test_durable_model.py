"""Random programs of durable-job operations, restarts included, checked
against the contract.

Hypothesis draws a program of steps: durable adds (a few keys, so keys
collide; each ``on_conflict``; at-least-once and at-most-once functions;
jobs that take time, so restarts interrupt them), cancels, time passing,
and **restarts**: the scheduler is closed without draining (running jobs are
cancelled, as a process that stops) and a new one opens the same store. It
runs on every path in virtual time. Afterwards, for every add that
committed a job:

- it ran (to its end) exactly once, unless it was cancelled or replaced
  while pending (a running job is never replaced: the add raises
  ``JobConflict``);
- before each add and cancel, the store holds exactly the live jobs the
  model expects;
- no run started before the job's due time;
- an at-most-once job never started twice, and one interrupted by a
  restart is recorded as lost and not run again;
- an at-least-once job started again only after a restart interrupted it,
  with its attempt number raised each time.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aioscheduler import JobConflict, TimedScheduler, current_job, durable
from aioscheduler.stores._fires import from_micros
from tests._stores import InlineSQLiteStore
from tests.conftest import steady_wall_clock


@dataclass
class Version:
    """One committed add: what the program expects of its job."""

    key: str
    due: float  # scheduler wall time, seconds
    delivery: str
    work: float
    scheduled: datetime | None = None  # as the store recorded it
    starts: list[tuple[float, int]] = field(default_factory=list)  # (time, attempt)
    ends: int = 0
    interrupted: int = 0  # runs cut by a restart, at-least-once
    lost: bool = False  # an at-most-once run cut by a restart
    dropped: bool = False  # cancelled or replaced while pending

    @property
    def running(self) -> bool:
        return len(self.starts) > self.ends + self.interrupted and not self.lost

    @property
    def live(self) -> bool:
        """Pending or running, as the store sees it."""
        return not (self.ends or self.dropped or self.lost)


# version id -> Version, for the running program (the jobs report here).
VERSIONS: dict[int, Version] = {}


async def _body(version_id: int) -> None:
    version = VERSIONS[version_id]
    job = current_job()
    # Its own view: started and scheduled, by the scheduler's wall clock.
    assert job.scheduled == version.scheduled, (job, version)
    version.starts.append((job.started.timestamp(), job.attempt))
    if version.work:
        await anyio.sleep(version.work)
    version.ends += 1


@durable("tests.durable_model.at_least_once")
async def at_least_once(version_id: int) -> None:
    await _body(version_id)


@durable("tests.durable_model.at_most_once", delivery="at_most_once")
async def at_most_once(version_id: int) -> None:
    await _body(version_id)


ADD = st.tuples(
    st.just("add"),
    st.fixed_dictionaries(
        {
            "key": st.sampled_from(["a", "b", "c", None]),
            "delay": st.sampled_from([0, 0.1, 0.5, 1.5, 3, 10, 60]),
            "delivery": st.sampled_from(["at_least_once", "at_most_once"]),
            "work": st.sampled_from([0, 2, 30]),
            "on_conflict": st.sampled_from(["error", "keep", "replace"]),
        }
    ),
)
STEP = st.one_of(
    ADD,
    st.tuples(st.just("sleep"), st.sampled_from([0.25, 1, 5, 40])),
    st.tuples(st.just("cancel"), st.sampled_from(["a", "b", "c"])),
    st.tuples(st.just("restart"), st.just(None)),
)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,  # the same programs on every run: a failure reproduces
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(STEP, max_size=16))
async def test_random_durable_programs_keep_the_contract(
    steps: list[tuple[str, Any]],
) -> None:
    VERSIONS.clear()
    path = Path(tempfile.mkdtemp()) / "jobs.db"
    live: dict[str, int] = {}  # key -> version id of its live job
    restarts: list[float] = []
    next_id = 0

    async def serve_until(steps_left: list[tuple[str, Any]]) -> bool:
        """Run steps on one scheduler; return True if a restart ended it."""
        nonlocal next_id
        # A wall clock that never slews: the model compares wall times
        # read at different moments (see conftest.steady_wall_clock).
        async with TimedScheduler(
            store=InlineSQLiteStore(path), wall_clock=steady_wall_clock
        ) as s:
            while steps_left:
                op, arg = steps_left.pop(0)
                if op == "restart":
                    restarts.append(s.now().timestamp())
                    await s.aclose()  # without draining: running jobs cancelled
                    for v in VERSIONS.values():
                        if v.running and v.delivery == "at_most_once":
                            v.lost = True
                        elif v.running:
                            v.interrupted += 1
                    return True
                if op == "sleep":
                    await anyio.sleep(arg)
                elif op == "cancel":
                    vid = live.get(arg)
                    state = await store_state(s, arg)
                    assert (state is not None) == (
                        vid is not None and VERSIONS[vid].live
                    ), (arg, state, vid and VERSIONS[vid])
                    pending = state == "pending"
                    assert await s.cancel_durable(arg) == pending, (arg, vid)
                    if pending:
                        assert vid is not None
                        VERSIONS[vid].dropped = True
                else:
                    await add(s, arg)
            # The end of the program: let every job finish.
            await anyio.sleep(200)
        return False

    async def add(s: TimedScheduler, arg: dict[str, Any]) -> None:
        nonlocal next_id
        next_id += 1
        vid = next_id
        fn = at_least_once if arg["delivery"] == "at_least_once" else at_most_once
        version = Version(
            arg["key"] or f"k{vid}",
            s.now().timestamp() + arg["delay"],
            arg["delivery"],
            arg["work"],
        )
        old = live.get(version.key)
        old_live = old is not None and VERSIONS[old].live
        state = await store_state(s, version.key)
        assert (state is not None) == old_live, (version.key, state, old)
        conflict = arg["on_conflict"]
        VERSIONS[vid] = version
        try:
            await s.durable_start_after(
                arg["delay"], fn, vid, key=version.key, on_conflict=conflict
            )
        except JobConflict:
            assert old_live, (version, old)
            # A running job is never replaced.
            assert conflict == "error" or state == "running", (version, state)
            del VERSIONS[vid]
            return
        assert not (old_live and conflict == "error"), "no JobConflict"
        assert not (state == "running" and conflict == "replace"), "replaced"
        if old_live and conflict == "keep":
            del VERSIONS[vid]
            return
        if old_live:
            assert old is not None
            VERSIONS[old].dropped = True  # it was pending
        live[version.key] = vid
        assert s.store is not None
        record = await s.store.get_job(version.key)
        assert record is not None
        version.scheduled = from_micros(record.due)
        assert abs(version.scheduled.timestamp() - version.due) < 1e-5, record
        version.due = version.scheduled.timestamp()

    async def store_state(s: TimedScheduler, key: str) -> str | None:
        """The live state of *key* in the store (pending/running), or None."""
        assert s.store is not None
        record = await s.store.get_job(key)
        if record is None or record.state not in ("pending", "running"):
            return None
        return str(record.state)

    remaining = list(steps)
    while await serve_until(remaining):
        pass

    for vid, v in VERSIONS.items():
        starts = [t for t, _ in v.starts]
        assert all(t >= v.due for t in starts), (
            f"{v.key} (#{vid}) started early: due {v.due}, started {starts}"
        )
        attempts = [a for _, a in v.starts]
        assert attempts == list(range(1, len(attempts) + 1)), f"{v.key}: {v.starts}"
        if v.dropped:
            assert not v.starts, f"{v.key} (#{vid}) ran after it was dropped"
        elif v.delivery == "at_most_once":
            assert len(v.starts) == 1, f"{v.key} (#{vid}): {v}"
            assert v.ends == (0 if v.lost else 1), v
        else:
            # Started again once per restart that cut it, and ended once.
            assert v.ends == 1, f"{v.key} (#{vid}) ended {v.ends} times: {v}"
            assert len(v.starts) == 1 + v.interrupted, v
