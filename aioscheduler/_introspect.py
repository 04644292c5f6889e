"""Seeing what a scheduler holds: statistics, pending tasks, task reprs.

All of it is computed on demand from what the schedulers keep anyway (the
pending container's live length, the load counts), so the hot paths pay
nothing for it.
"""

from __future__ import annotations

import heapq
import reprlib
from collections.abc import Iterable
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from ._queues import DeadlineHeap, LifoQueue, PendingJobs, _sequence_of
from ._task import PENDING

if TYPE_CHECKING:
    from ._task import Task

__all__ = ["SchedulerStatistics", "describe", "pending_in_order", "merge_by_due"]


@dataclass(frozen=True)
class SchedulerStatistics:
    """How many jobs a scheduler (or a Manager, in total) holds right now.

    Returned by ``statistics()``, like AnyIO's
    :class:`~anyio.streams.memory.MemoryObjectStreamStatistics`::

        stats = scheduler.statistics()
        print(f"{stats.pending} waiting, {stats.running} running")

    .. versionadded:: 2.0
    """

    pending: int
    """Jobs not started yet (cancelled ones not counted)."""

    running: int
    """Jobs started and not ended yet."""

    max_tasks: int | None
    """The limit on ``pending + running``, or ``None`` for none."""


def pending_in_order(pending: PendingJobs) -> list[Task[Any]]:
    """Return the live pending tasks of *pending*, in the order they will start.

    Timed: by due time, ties in scheduling order. FIFO: oldest first. LIFO:
    newest first. O(n) (O(n log n) for a heap, which is not kept sorted).
    """
    if isinstance(pending, DeadlineHeap):
        ready = [task for task in pending._ready if task._state == PENDING]
        later = [task for task in pending._entries if task._state == PENDING]
        later += [task for task in pending._wall_entries if task._state == PENDING]
        # Two stable sorts, as when the heap hands out due jobs (wall-clock
        # jobs placed on the loop clock by the current offset).
        later.sort(key=_sequence_of)
        later.sort(key=attrgetter("_deadline"))
        return [*ready, *later]
    entries: Iterable[Task[Any]] = pending._entries  # type: ignore[attr-defined]
    if isinstance(pending, LifoQueue):
        entries = reversed(pending._entries)
    return [task for task in entries if task._state == PENDING]


def merge_by_due(lists: Iterable[list[Task[Any]]]) -> list[Task[Any]]:
    """Merge per-scheduler lists of timed tasks by loop-clock deadline."""
    return list(heapq.merge(*lists, key=attrgetter("_deadline")))


_short = reprlib.Repr()
_short.maxstring = 40
_short.maxother = 40
_short.maxlevel = 2
_MAX_ARGS = 5


def describe(task: Task[Any], state: str) -> str:
    """Return ``<Task work(1, 'abc') pending due=2026-12-04T18:16:22.537Z>``.

    Never raises: a repr must work on any task, whatever its arguments.
    """
    try:
        return _describe(task, state)
    except Exception:
        return f"<Task {state} at {id(task):#x}>"


def _describe(task: Task[Any], state: str) -> str:
    callback: Any = task.callback
    args = task._args
    if args is None:  # a coroutine object: its arguments are not ours to see
        name = getattr(callback, "__qualname__", None) or _short.repr(callback)
        call = f"{name}(...)"
    else:
        name = getattr(callback, "__qualname__", None) or _short.repr(callback)
        shown = [_short.repr(arg) for arg in args[:_MAX_ARGS]]
        if len(args) > _MAX_ARGS:
            shown.append("...")
        call = f"{name}({', '.join(shown)})"
    when = task.when
    if when is None:
        where = f"seq={task.priority!r}"
    else:
        text = when.isoformat(timespec="milliseconds")
        where = "due=" + text.replace("+00:00", "Z")
    return f"<Task {call} {state} {where}>"
