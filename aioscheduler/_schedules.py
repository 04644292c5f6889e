"""Recurring schedules: the :class:`Schedule` handle and a scheduler's set of them.

A schedule is one entry in one of two small heaps of its scheduler's
:class:`ScheduleSet` (wall-clock triggers by POSIX timestamp, :class:`Every`
by loop-clock deadline), whatever its trigger: the serving task looks only
at their heads on a wake-up, so 100,000 schedules cost per fire, not per
schedule. A paused schedule has no entry at all.

When an entry is due, :meth:`Schedule._due` works out which fire times are
due (O(1) trigger calls for ``coalesce="latest"``, whatever the gap: the
trigger finds the latest fire at or before now directly), picks the runs by
``coalesce``, drops those ``misfire_grace`` says are too late, and hands
each to ``overlap``. A run is an ordinary timed job (a :class:`Task` whose
``when`` is its fire time) that the scheduler starts at once, or after its
jitter, or, buffered, once the running one has ended.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import math
from collections import deque
from collections.abc import Callable, Coroutine, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from itertools import count
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal

from ._task import PENDING, Task
from ._time import option_seconds, utc_from_timestamp
from ._trigger import Trigger
from ._triggers import Every

if TYPE_CHECKING:
    from ._timed import TimedScheduler

__all__ = ["Schedule", "ScheduleSet", "check_schedule_options", "jitter_delay"]

logger = logging.getLogger("aioscheduler")

Coalesce = Literal["latest", "earliest", "all"]
Overlap = Literal["skip", "buffer_one", "buffer_all", "allow", "cancel_previous"]
OnConflict = Literal["error", "keep", "replace"]

_COALESCE: Final = ("latest", "earliest", "all")
_OVERLAP: Final = ("skip", "buffer_one", "buffer_all", "allow", "cancel_previous")
_ON_CONFLICT: Final = ("error", "keep", "replace")

#: Missed fire times are counted exactly up to this many per catch-up; a
#: larger gap adds this many without enumerating it.
MISSED_COUNT_LIMIT: Final = 10_000

_ONE_MICROSECOND: Final = timedelta(microseconds=1)


def check_schedule_options(
    trigger: object,
    misfire_grace: object,
    coalesce: object,
    max_catchup: object,
    overlap: object,
    jitter: object,
    max_runs: object,
    paused: object,
    on_conflict: object,
    schedule_id: object,
) -> tuple[float | None, float | None]:
    """Check add_schedule's options; return (misfire_grace, jitter) in seconds."""
    if not isinstance(trigger, Trigger):
        raise TypeError(
            "add_schedule() takes a trigger (Every, Cron, Calendar, At or AnyOf) "
            f"first, not {trigger!r}"
        )
    grace = option_seconds(misfire_grace, "misfire_grace")
    jitter_s = option_seconds(jitter, "jitter")
    for name, value, allowed in (
        ("coalesce", coalesce, _COALESCE),
        ("overlap", overlap, _OVERLAP),
        ("on_conflict", on_conflict, _ON_CONFLICT),
    ):
        if value not in allowed:
            raise ValueError(
                f"{name} must be one of {', '.join(map(repr, allowed))}, not {value!r}"
            )
    for name, number in (("max_catchup", max_catchup), ("max_runs", max_runs)):
        if number is None and name == "max_runs":
            continue
        if not isinstance(number, int) or isinstance(number, bool):
            raise TypeError(f"{name} must be an int, not {type(number).__name__}")
        if number < 1:
            raise ValueError(f"{name} must be at least 1, got {number}")
    if not isinstance(paused, bool):
        raise TypeError(f"paused must be True or False, not {paused!r}")
    if schedule_id is not None and not isinstance(schedule_id, str):
        raise TypeError(f"id must be a str or None, not {type(schedule_id).__name__}")
    return grace, jitter_s


def jitter_delay(
    schedule_id: str, fire: datetime, jitter: float, following: datetime | None
) -> float:
    """A run's jitter: the same for the same schedule id and fire time, in
    ``[0, jitter)``, and never reaching the *following* fire time."""
    limit = jitter
    if following is not None:
        limit = min(limit, (following - fire).total_seconds())
    digest = hashlib.blake2b(
        f"{schedule_id}\x00{fire.timestamp()!r}".encode(), digest_size=8
    ).digest()
    fraction = int.from_bytes(digest, "big") / 2**64  # in [0, 1)
    return fraction * limit


class _Runner:
    """The callback of a schedule's runs: the user's function, then bookkeeping.

    Named after the user's function, so a run's task reads as that function
    in reprs and logs. One per run: it knows its task, so that when the run
    ends the schedule can tell it apart from runs still running (the task
    is still marked running while its coroutine unwinds).
    """

    __slots__ = ("__name__", "__qualname__", "schedule", "task")

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.task: Task[Any] | None = None
        fn = schedule._fn
        self.__name__ = getattr(fn, "__name__", "run")
        self.__qualname__ = getattr(fn, "__qualname__", self.__name__)

    def __call__(self, *args: Any) -> Coroutine[Any, Any, Any]:
        return self._run(args)

    async def _run(self, args: tuple[Any, ...]) -> Any:
        schedule = self.schedule
        try:
            return await schedule._fn(*args)
        finally:
            task, self.task = self.task, None
            schedule._run_ended(task)


class Schedule:
    """A recurring schedule: what :meth:`TimedScheduler.add_schedule` returns.

    Its runs are ordinary jobs (each a :class:`Task` whose ``when`` is its
    fire time); the schedule keeps the count of what ran, what was missed
    and what was skipped, and can be paused, resumed, run now or removed.

    Example::

        async with TimedScheduler() as scheduler:
            schedule = scheduler.add_schedule(Every(300), work, 1, max_runs=3)
            schedule.pause()  # fire times now pass without running
            await anyio.sleep(3650)  # 12 fire times pass
            schedule.resume(catch_up=True)  # one run now, for the latest
        assert (schedule.runs, schedule.missed) == (3, 11)

    .. versionadded:: 2.0
    """

    def __init__(
        self,
        owner: TimedScheduler,
        schedule_id: str,
        trigger: Trigger,
        fn: Callable[..., Coroutine[Any, Any, Any]],
        args: tuple[Any, ...],
        *,
        misfire_grace: float | None,
        coalesce: Coalesce,
        max_catchup: int,
        overlap: Overlap,
        jitter: float | None,
        max_runs: int | None,
    ) -> None:
        self._owner = owner
        self._id = schedule_id
        self._trigger = trigger
        self._fn = fn
        self._args = args
        self._misfire_grace = misfire_grace
        self._coalesce: Coalesce = coalesce
        self._max_catchup = max_catchup
        self._overlap: Overlap = overlap
        self._jitter = jitter
        self._max_runs = max_runs
        self._runner = _Runner(self)
        self._runs = 0
        self._missed = 0
        self._skipped = 0
        self._last_task: Task[Any] | None = None
        self._paused = False
        self._finished = False
        # The trigger as this schedule reads it (Every/Calendar anchored to
        # the moment it was added).
        self._anchored: Trigger = trigger
        # Wall triggers: the last fire time dealt with (a high-water mark:
        # nothing at or before it ever runs) and the next one.
        self._hwm: datetime | None = None
        self._next: datetime | None = None
        # Every: fire k is at loop time _origin + k * _period; _k is the
        # next one's k, _end_loop the loop time past which none fires.
        self._origin = 0.0
        self._period = 0.0
        self._k = 0
        self._end_loop = math.inf
        # The heap entry [key, seq, schedule-or-None] while waiting.
        self._entry: list[Any] | None = None
        self._active: list[Task[Any]] = []
        self._buffer: deque[Task[Any]] = deque()
        # coalesce="all": catch-up fire times still to run, oldest first.
        self._chain: deque[datetime] = deque()

    # -- public ---------------------------------------------------------------

    @property
    def id(self) -> str:
        """The schedule's id (generated if none was given)."""
        return self._id

    @property
    def trigger(self) -> Trigger:
        """When it fires."""
        return self._trigger

    @property
    def next_run_time(self) -> datetime | None:
        """The next fire time (aware UTC, before jitter); ``None`` once finished.

        While paused: the next fire time after now, as resuming would use it.
        """
        if self._finished:
            return None
        owner = self._owner
        if self._trigger.elapsed:
            k = self._k
            if self._paused:
                now = owner._clock()
                k = max(k, math.floor((now - self._origin) / self._period) + 1)
            fire = self._origin + k * self._period
            if fire > self._end_loop:
                return None
            return utc_from_timestamp(fire + owner._wall_offset)
        following = self._next
        if self._paused and following is not None:
            wall_now = utc_from_timestamp(owner._clock() + owner._read_wall_offset())
            if following <= wall_now:
                following = self._anchored._next_after(wall_now)
        return None if following is None else following.astimezone(UTC)

    @property
    def paused(self) -> bool:
        """``True`` between :meth:`pause` and :meth:`resume`."""
        return self._paused

    @property
    def finished(self) -> bool:
        """``True`` once it will never run again (ended, removed or closed)."""
        return self._finished

    @property
    def runs(self) -> int:
        """How many runs it started or buffered (``run_now`` included)."""
        return self._runs

    @property
    def missed(self) -> int:
        """Fire times that did not run: coalesced away, too late for
        ``misfire_grace``, or refused by ``max_tasks``."""
        return self._missed

    @property
    def skipped(self) -> int:
        """Fire times skipped by ``overlap`` because a run was still running."""
        return self._skipped

    @property
    def last_task(self) -> Task[Any] | None:
        """The task of the latest run started or buffered, or ``None``."""
        return self._last_task

    def pause(self) -> None:
        """Stop firing until :meth:`resume`; runs not started yet (buffered,
        or waiting for their jitter) are cancelled.

        A paused schedule costs nothing while idle (it has no heap entry).
        A running run is not cancelled.
        """
        if self._finished or self._paused:
            return
        self._paused = True
        self._owner._schedule_set()._unlist(self)
        self._drop_buffered()
        self._drop_unstarted()

    def resume(self, *, catch_up: bool = False) -> None:
        """Fire again.

        :param catch_up: without it, fire times that passed while paused do
            not run (nor count as missed); with it, they run as ``coalesce``
            says, from the last fire time that was dealt with
        """
        if self._finished or not self._paused:
            return
        self._paused = False
        owner = self._owner
        if not catch_up:
            self._skip_to_now(owner._clock(), owner._read_wall_offset())
        owner._schedule_set()._list(self)

    def run_now(self) -> Task[Any] | None:
        """Run once more now, obeying ``overlap`` (``jitter`` does not apply).

        :return: the run's task (started, or buffered), or ``None`` if
            ``overlap`` skipped it. It counts in :attr:`runs` and toward
            ``max_runs``; :attr:`next_run_time` does not change.
        """
        if self._finished:
            return None
        owner = self._owner
        if owner._current_loop() != owner._loop:
            owner._bind()
        if owner._closed:
            owner._check_open()
        # Now means now: no jitter.
        return self._offer(owner.now(), from_chain=False, jitter=False)

    def remove(self) -> bool:
        """Stop the schedule for good; runs not started yet are cancelled, a
        running one is not.

        :return: ``True`` if it was not finished already
        """
        if self._finished:
            return False
        self._finish()
        self._drop_buffered()
        self._drop_unstarted()
        return True

    def __repr__(self) -> str:
        state = "finished" if self._finished else "paused" if self._paused else ""
        nxt = self.next_run_time
        when = "" if nxt is None else f" next={nxt.isoformat(timespec='seconds')}"
        return (
            f"<Schedule {self._id!r} {self._runner.__qualname__} "
            f"{self._trigger!r}{' ' + state if state else ''}{when}>"
        )

    # -- placement ------------------------------------------------------------

    def _begin(self, now: float, offset: float) -> None:
        """Work out the first fire time, as of loop time *now*."""
        wall_now = utc_from_timestamp(now + offset)
        trigger = self._trigger
        self._anchored = anchored = trigger._anchored(wall_now)
        if trigger.elapsed:
            assert isinstance(anchored, Every)
            self._period = anchored.period_seconds
            start = anchored.start
            assert start is not None  # anchored
            end = anchored.end
            self._origin = start.timestamp() - offset
            self._end_loop = math.inf if end is None else end.timestamp() - offset
            # A start already past: the first start + k * period after now;
            # the earlier ones neither run nor count as missed.
            self._k = max(0, math.floor((now - self._origin) / self._period) + 1)
            if self._origin + self._k * self._period <= now:
                self._k += 1
        else:
            self._hwm = wall_now
            self._next = anchored._next_after(wall_now)

    def _skip_to_now(self, now: float, offset: float) -> None:
        """Forget the fire times up to now (resume without catch-up)."""
        if self._trigger.elapsed:
            k = math.floor((now - self._origin) / self._period) + 1
            self._k = max(self._k, k)
        else:
            wall_now = utc_from_timestamp(now + offset)
            if self._hwm is None or wall_now > self._hwm:
                self._hwm = wall_now
            self._next = self._anchored._next_after(self._hwm)

    def _key(self, offset: float) -> float | None:
        """Return when the next fire is due: loop time (Every) or a timestamp."""
        if self._trigger.elapsed:
            fire = self._origin + self._k * self._period
            return None if fire > self._end_loop else fire
        return None if self._next is None else self._next.timestamp()

    def _take_progress(self, old: Schedule) -> None:
        """Continue where *old* (same trigger) was: no fire time runs twice."""
        self._anchored = old._anchored
        self._hwm, self._next = old._hwm, old._next
        self._origin, self._period = old._origin, old._period
        self._k, self._end_loop = old._k, old._end_loop
        self._runs, self._missed, self._skipped = old._runs, old._missed, old._skipped
        self._last_task = old._last_task
        self._active = list(old._active)

    # -- firing ---------------------------------------------------------------

    def _due(self, now: float, offset: float) -> None:
        """The entry came due at loop time *now*: pick and offer the runs."""
        wall_now = utc_from_timestamp(now + offset)
        picked: list[datetime]
        if self._trigger.elapsed:
            picked, due = self._due_elapsed(now, offset)
        else:
            picked, due = self._due_wall(wall_now)
        # The fire times that do not run: exactly up to MISSED_COUNT_LIMIT,
        # and that many for a larger gap (counted no further).
        self._missed += min(max(0, due - len(picked)), MISSED_COUNT_LIMIT)
        if self._buffer or self._chain:
            self._pump(wall_now)  # a run they waited for may have been cancelled
        if self._coalesce == "all" and len(picked) > 1:
            self._chain.extend(picked)
            self._pump(wall_now)
        else:
            for fire in picked:
                if self._too_late(fire, wall_now):
                    continue
                self._offer(fire, from_chain=False)
        if self._key(offset) is None:
            self._finish()

    def _due_wall(self, wall_now: datetime) -> tuple[list[datetime], int]:
        trigger = self._anchored
        first = self._next
        assert first is not None
        assert self._hwm is not None
        latest = trigger._last_at_or_before(wall_now)
        if latest is None or latest < first:
            latest = first
        picked = self._pick(first, latest, self._hwm)
        if latest == first:
            due = 1
        else:
            # One more than can be reported: tells "more than the limit".
            limit = MISSED_COUNT_LIMIT + len(picked)
            due = trigger._count_between(self._hwm, latest, limit)
        self._hwm = latest
        self._next = trigger._next_after(latest)
        return picked, max(due, len(picked))

    def _due_elapsed(self, now: float, offset: float) -> tuple[list[datetime], int]:
        origin, period = self._origin, self._period
        first_k = self._k
        last_k = max(first_k, math.floor((now - origin) / period))
        if self._end_loop != math.inf:
            last_k = min(last_k, math.floor((self._end_loop - origin) / period))
        due = last_k - first_k + 1

        def fire(k: int) -> datetime:
            return utc_from_timestamp(origin + k * period + offset)

        coalesce = self._coalesce
        if coalesce == "latest" or first_k == last_k:
            picked = [fire(last_k)]
        elif coalesce == "earliest":
            picked = [fire(first_k)]
        else:
            ks = range(max(first_k, last_k - self._max_catchup + 1), last_k + 1)
            picked = [fire(k) for k in ks]
        self._k = last_k + 1
        return picked, due

    def _pick(self, first: datetime, latest: datetime, hwm: datetime) -> list[datetime]:
        """Return the fire times to run among those in (hwm, latest]."""
        if first == latest or self._coalesce == "latest":
            return [latest]
        if self._coalesce == "earliest":
            return [first]
        # "all": the latest max_catchup of them, found backwards from the
        # latest (never more trigger calls than runs).
        fires = [latest]
        trigger = self._anchored
        while len(fires) < self._max_catchup:
            before = trigger._last_at_or_before(fires[-1] - _ONE_MICROSECOND)
            if before is None or before <= hwm:
                break
            fires.append(before)
        fires.reverse()
        return fires

    def _too_late(self, fire: datetime, wall_now: datetime) -> bool:
        grace = self._misfire_grace
        # Both instants come from floats rounded to microseconds: allow for it.
        if grace is None or (wall_now - fire).total_seconds() <= grace + 2e-6:
            return False
        self._missed += 1
        logger.warning(
            "schedule %r: the run for %s could only start %.3f s late, past "
            "misfire_grace=%s s; it does not run",
            self._id,
            fire.isoformat(),
            (wall_now - fire).total_seconds(),
            grace,
        )
        return True

    def _offer(
        self, fire: datetime, *, from_chain: bool, jitter: bool = True
    ) -> Task[Any] | None:
        """A fire time wants a run: start, buffer or skip it by ``overlap``."""
        if self._max_runs is not None and self._runs >= self._max_runs:
            return None
        overlap = self._overlap
        if from_chain or overlap == "allow" or not self._busy(None):
            return self._make_run(fire, buffered=False, jitter=jitter)
        if overlap == "skip":
            self._skipped += 1
            return None
        if overlap == "cancel_previous":
            self._drop_buffered(skipped=True)
            for task in self._active:
                task.cancel()
            if not self._busy(None):
                # Nothing was running (a jittered run not started yet): the
                # cancel ended it at once.
                return self._make_run(fire, buffered=False, jitter=jitter)
        elif overlap == "buffer_one" and any(
            task._state == PENDING for task in self._buffer
        ):
            self._skipped += 1
            return None
        return self._make_run(fire, buffered=True, jitter=False)

    def _busy(self, ending: Task[Any] | None) -> bool:
        """Whether a run (other than *ending*) is running or about to start.

        A buffered run waiting for its turn does not count; a jittered one
        that has not started yet does.
        """
        self._active = active = [task for task in self._active if not task.done()]
        buffer = self._buffer
        return any(
            task is not ending and not (task._state == PENDING and task in buffer)
            for task in active
        )

    def _make_run(
        self, fire: datetime, *, buffered: bool, jitter: bool
    ) -> Task[Any] | None:
        owner = self._owner
        if owner._closed:
            return None
        loads = owner._loads
        max_tasks = owner._max_tasks
        load = loads[owner._slot]
        manager = owner._manager
        if manager is not None and manager._max_tasks is not None:
            # A Manager's max_tasks bounds the total across its schedulers.
            max_tasks, load = manager._max_tasks, sum(loads)
        if max_tasks is not None and load >= max_tasks:
            self._missed += 1
            logger.warning(
                "schedule %r: the run for %s does not run: max_tasks=%d jobs "
                "are pending or running",
                self._id,
                fire.isoformat(),
                max_tasks,
            )
            return None
        delay = self._jitter_for(fire) if jitter else 0.0
        elapsed = self._trigger.elapsed
        # Buffered: waits in the heap, never due by itself, until started.
        # Every's runs wait on the loop clock (elapsed time), the others on
        # the wall clock.
        if buffered:
            key = math.inf
        elif elapsed:
            key = fire.timestamp() - owner._wall_offset + delay
        else:
            key = fire.timestamp() + delay
        runner = _Runner(self)
        task = owner._push_run(runner, self._args, fire, key, elapsed)
        runner.task = task
        self._runs += 1
        self._last_task = task
        self._active.append(task)
        if buffered:
            self._buffer.append(task)
        if self._max_runs is not None and self._runs >= self._max_runs:
            self._finish()
        return task

    def _jitter_for(self, fire: datetime) -> float:
        """The run's delay: the same for the same id and fire time, in
        ``[0, jitter)`` and never reaching the next fire time."""
        jitter = self._jitter
        if not jitter:
            return 0.0
        return jitter_delay(self._id, fire, jitter, self._following(fire))

    def _following(self, fire: datetime) -> datetime | None:
        if self._trigger.elapsed:
            return fire + timedelta(seconds=self._period)
        return self._anchored._next_after(fire)

    def _run_ended(self, task: Task[Any] | None) -> None:
        """A run ended: start what waits for it (a buffered run, the chain)."""
        if self._buffer or self._chain:
            self._pump(None, ending=task)

    def _pump(self, wall_now: datetime | None, ending: Task[Any] | None = None) -> None:
        """Start the next buffered or catch-up run if none is running.

        :param ending: a run whose job has returned but whose task is not
            marked done yet (we are called from its last step)
        """
        if self._busy(ending):
            return
        buffer = self._buffer
        while buffer:
            task = buffer.popleft()
            if task._state == PENDING:
                self._owner._start_buffered(task)
                return
        if self._chain:
            owner = self._owner
            if owner._closed:
                self._chain.clear()
                return
            now = wall_now if wall_now is not None else owner.now()
            while self._chain:
                fire = self._chain.popleft()
                if self._too_late(fire, now):
                    continue
                if self._offer(fire, from_chain=True, jitter=False) is not None:
                    return

    def _drop_buffered(self, *, skipped: bool = False) -> None:
        while self._buffer:
            task = self._buffer.popleft()
            if task._state == PENDING:
                task.cancel()
                if skipped:
                    self._skipped += 1
        self._chain.clear()

    def _drop_unstarted(self) -> None:
        """Cancel the runs created but not started (jitter, run_now)."""
        for task in self._active:
            if task._state == PENDING:
                task.cancel()

    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        self._owner._schedule_set()._forget(self)


class ScheduleSet:
    """A TimedScheduler's schedules, by id, and the heaps of their next fires."""

    __slots__ = (
        "_by_id",
        "_ids",
        "_live",
        "_mono",
        "_owner",
        "_sequence",
        "_wall",
    )

    def __init__(self, owner: TimedScheduler) -> None:
        self._owner = owner
        self._by_id: dict[str, Schedule] = {}
        self._live = MappingProxyType(self._by_id)
        # [key, seq, schedule]: a removed or moved entry has schedule None.
        self._wall: list[list[Any]] = []
        self._mono: list[list[Any]] = []
        self._sequence = count()
        self._ids = count(1)

    @property
    def by_id(self) -> Mapping[str, Schedule]:
        return self._live

    def __len__(self) -> int:
        return len(self._by_id)

    def new_id(self) -> str:
        while True:
            candidate = f"schedule-{next(self._ids)}"
            if candidate not in self._by_id:
                return candidate

    def add(
        self, schedule: Schedule, now: float, offset: float, *, begun: bool = False
    ) -> None:
        self._by_id[schedule.id] = schedule
        if not begun:
            schedule._begin(now, offset)
        if schedule._key(offset) is None:
            schedule._finish()
            return
        self._list(schedule)

    def _list(self, schedule: Schedule) -> None:
        """Put *schedule*'s next fire in its heap, and wake the serving task."""
        self._unlist(schedule)
        if schedule._paused or schedule._finished:
            return
        owner = self._owner
        offset = owner._wall_offset
        key = schedule._key(offset)
        if key is None:
            schedule._finish()
            return
        entry = [key, next(self._sequence), schedule]
        schedule._entry = entry
        elapsed = schedule._trigger.elapsed
        heapq.heappush(self._mono if elapsed else self._wall, entry)
        deadline = key if elapsed else key - offset
        if deadline < owner._sleeping_until:
            owner._wake()

    def _unlist(self, schedule: Schedule) -> None:
        entry = schedule._entry
        if entry is not None:
            entry[2] = None
            schedule._entry = None

    def _forget(self, schedule: Schedule) -> None:
        self._unlist(schedule)
        if self._by_id.get(schedule.id) is schedule:
            del self._by_id[schedule.id]
            self._owner._schedule_finished()

    def has_wall(self) -> bool:
        """Return ``True`` if a live wall-clock schedule waits."""
        return _head(self._wall) is not None

    def next_deadline(self, offset: float) -> float | None:
        """Return the loop time the next schedule fires, or ``None``."""
        mono = _head(self._mono)
        wall = _head(self._wall)
        if wall is not None:
            wall -= offset
            if mono is None or wall < mono:
                return wall
        return mono

    def fire_due(self, now: float, offset: float) -> None:
        """Fire every schedule whose entry is due at loop time *now*."""
        for heap, due_by in ((self._mono, now), (self._wall, now + offset)):
            while heap:
                entry = heap[0]
                schedule = entry[2]
                if schedule is None:
                    heapq.heappop(heap)
                    continue
                if entry[0] > due_by:
                    break
                heapq.heappop(heap)
                schedule._entry = None
                schedule._due(now, offset)
                self._list(schedule)

    def close(self) -> None:
        """The scheduler closes: every schedule is finished."""
        for schedule in list(self._by_id.values()):
            schedule._drop_buffered()
            schedule._finish()
        self._mono.clear()
        self._wall.clear()

    def __iter__(self) -> Iterator[Schedule]:
        return iter(list(self._by_id.values()))


def _head(heap: list[list[Any]]) -> float | None:
    while heap:
        entry = heap[0]
        if entry[2] is not None:
            key = float(entry[0])
            return key
        heapq.heappop(heap)
    return None
