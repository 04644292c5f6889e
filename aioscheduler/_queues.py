"""Pure data structures for pending jobs: no awaits, no clocks, no I/O.

Cancelling a pending job must not cost O(n), so all three containers use
lazy deletion, after Trio's deadline heap: a cancelled task stays where it is
(it is already marked cancelled) and is dropped when it reaches the front;
the container is rebuilt only when such garbage outnumbers the live entries,
which keeps both memory and the amortised cost of a cancel bounded.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_right
from collections import deque
from collections.abc import Iterator
from itertools import count
from operator import attrgetter
from typing import Any, Protocol

from ._task import PENDING, Task, TimedTask

__all__ = ["DeadlineHeap", "FifoQueue", "LifoQueue", "PendingJobs"]

# Below this many dead entries, rebuilding is not worth its cost.
_MIN_GARBAGE_TO_COMPACT = 1024


class PendingJobs(Protocol):
    """What a scheduler needs from its container of pending jobs."""

    def __len__(self) -> int:
        """Return the number of live (not cancelled) pending jobs."""
        ...

    _garbage: int
    _compact_above: int

    def discard(self, task: Task[Any]) -> None:
        """Account for *task*, already marked cancelled, as garbage."""
        ...

    def compact_if_worth(self) -> None:
        """Drop the garbage if it outnumbers the live tasks."""
        ...

    def drain(self) -> Iterator[Task[Any]]:
        """Empty the container, yielding every live task."""
        ...


class _LazyDeletion:
    """Counts cancelled tasks left in place, and drops them when worth it.

    Compacting is worth it once the garbage outnumbers the live tasks;
    ``_compact_above`` caches the count beyond which to look again, so that
    a cancel usually costs one increment and one compare (schedulers inline
    that much of :meth:`discard`).
    """

    __slots__ = ("_compact_above", "_garbage")

    def __init__(self) -> None:
        # Cancelled tasks still in the container.
        self._garbage = 0
        self._compact_above = _MIN_GARBAGE_TO_COMPACT

    def _size(self) -> int:
        """Return the number of entries, garbage included."""
        raise NotImplementedError

    def _compact(self) -> None:
        """Drop every cancelled entry (in place: callers hold bound methods)."""
        raise NotImplementedError

    def discard(self, task: Task[Any]) -> None:
        """Account for *task*, already marked cancelled, as garbage."""
        self._garbage += 1
        if self._garbage > self._compact_above:
            self.compact_if_worth()

    def compact_if_worth(self) -> None:
        """Compact if the garbage outnumbers the live tasks; else look later."""
        size = self._size()
        if self._garbage * 2 > size:
            self._compact()
            size -= self._garbage
            self._garbage = 0
        # Cancels alone leave the size as it is: the garbage outnumbers the
        # live tasks exactly when it passes half of it. (Jobs added or taken
        # out meanwhile make this look again early or late, never unbounded.)
        self._compact_above = max(_MIN_GARBAGE_TO_COMPACT, size // 2)


class DeadlineHeap(_LazyDeletion):
    """The timed jobs: two min-heaps of :class:`TimedTask`, one per clock.

    ``_entries`` holds elapsed-time jobs (``start_after``), each a float
    equal to its loop-clock deadline; ``_wall_entries`` holds wall-clock
    jobs (``start_at``, ``schedule``), each a float equal to its POSIX
    timestamp. Two heaps, because the wall-to-loop offset changes when the
    wall clock is stepped or the machine sleeps: a wall-clock job's loop
    deadline is only known at the moment it is looked at, and only the head
    of each heap ever is.

    Equal deadlines come out of a heap in no particular order, so when jobs
    come due, :meth:`pop_due` moves every job due by then into a ready queue,
    in deadline order (wall ones placed by the current offset), ties in
    scheduling order, and hands them out from there.
    """

    __slots__ = ("_entries", "_ready", "_sequence", "_sorted", "_wall_entries")

    def __init__(self) -> None:
        super().__init__()
        self._entries: list[TimedTask] = []
        self._wall_entries: list[TimedTask] = []
        self._ready: deque[TimedTask] = deque()
        self._sequence = count()
        # The length each heap (elapsed, wall) had when it was last left
        # sorted (-1: not sorted). A sorted list is a heap too, and stays
        # sorted until something is pushed, which makes it longer: while the
        # length is the same, the due jobs are a prefix to slice off, not
        # one heappop each (whose comparisons go through TimedTask's Python
        # level rich comparison, the price of its identity ``__eq__``).
        self._sorted = [-1, -1]

    def __len__(self) -> int:
        return self._size() - self._garbage

    def next_deadline(self, offset: float) -> float | None:
        """Return the earliest live loop-clock deadline, or ``None`` if empty.

        *offset* is the current wall-minus-loop offset, which places the
        wall-clock jobs on the loop clock.
        """
        for task in self._ready:
            if task._state == PENDING:
                return -math.inf  # already due
        head = _live_head(self, self._entries, 0)
        wall_head = _live_head(self, self._wall_entries, 1)
        if wall_head is None:
            return head
        wall_head -= offset
        return wall_head if head is None or wall_head < head else head

    def has_wall(self) -> bool:
        """Return ``True`` if a live wall-clock job is pending (not buffered)."""
        head = _live_head(self, self._wall_entries, 1)
        return head is not None and head != math.inf

    def pop_due(self, now: float, offset: float) -> TimedTask | None:
        """Remove and return the next live task due by loop time *now*.

        A wall-clock job is due once *now* + *offset* reaches its timestamp.
        Tasks come out by deadline, ties in scheduling order.
        """
        ready = self._ready
        while True:
            while ready:
                task = ready.popleft()
                if task._state == PENDING:
                    return task
                self._garbage -= 1
            entries, wall = self._entries, self._wall_entries
            mono_due = bool(entries) and entries[0] <= now
            wall_due = bool(wall) and wall[0] <= now + offset
            if not mono_due and not wall_due:
                return None
            if not wall_due:
                ready.extend(_collect_due(self, entries, now, 0))
            elif not mono_due:
                ready.extend(_collect_due(self, wall, now + offset, 1))
            else:
                # Both clocks have due jobs: merge them on the loop clock.
                ready.extend(
                    heapq.merge(
                        _collect_due(self, entries, now, 0),
                        _collect_due(self, wall, now + offset, 1),
                        key=lambda task: (
                            float(task) - offset if task._is_wall else float(task),
                            task._seq,
                        ),
                    )
                )

    def _size(self) -> int:
        return len(self._entries) + len(self._wall_entries) + len(self._ready)

    def _compact(self) -> None:
        for entries in (self._entries, self._wall_entries):
            entries[:] = [t for t in entries if t._state == PENDING]
            heapq.heapify(entries)
        self._sorted = [-1, -1]
        live = [t for t in self._ready if t._state == PENDING]
        self._ready.clear()
        self._ready.extend(live)

    def drain(self) -> Iterator[Task[Any]]:
        ready, entries, wall = self._ready, self._entries, self._wall_entries
        self._ready, self._entries, self._wall_entries = deque(), [], []
        self._sorted = [-1, -1]
        self._garbage = 0
        for task in ready:
            if task._state == PENDING:
                yield task
        for task in entries:
            if task._state == PENDING:
                yield task
        for task in wall:
            if task._state == PENDING:
                yield task


def _live_head(
    heap: DeadlineHeap, entries: list[TimedTask], which: int
) -> float | None:
    """Drop cancelled tasks from the front of heap *which*; return its head."""
    while entries:
        task = entries[0]
        if task._state == PENDING:
            return float(task)
        heapq.heappop(entries)
        heap._sorted[which] = -1
        heap._garbage -= 1
    return None


def _collect_due(
    heap: DeadlineHeap, entries: list[TimedTask], now: float, which: int
) -> list[TimedTask]:
    """Remove every task of heap *which* due by *now*; return them in order."""
    sorted_length = heap._sorted
    if sorted_length[which] == len(entries):
        split = bisect_right(entries, now)
        # Slicing moves the rest of the list: worth it unless the list is
        # much longer than what comes out (then pop, as from any heap).
        if len(entries) <= split * _SLICE_RATIO:
            prefix = entries[:split]
            del entries[:split]
            sorted_length[which] = len(entries)
            return prefix
    sorted_length[which] = -1
    due: list[TimedTask] = []
    pop = heapq.heappop
    while entries and entries[0] <= now:
        due.append(pop(entries))
        if len(due) == _BURST_PROBE and _mostly_due(entries, now):
            # A burst: much of the heap is due. Sorting all of it costs
            # less than popping the due ones one by one, and a sorted
            # list is still a heap, so what is not due stays put (and
            # later due jobs come off it as slices).
            entries += due
            entries.sort(key=_sequence_of)
            entries.sort(key=float)
            split = bisect_right(entries, now)
            due = entries[:split]
            del entries[:split]
            sorted_length[which] = len(entries)
            return due
    if len(due) > 1:
        # Two stable C-level sorts: by sequence, then by deadline.
        due.sort(key=_sequence_of)
        due.sort(key=float)
    return due


# Slice the due jobs off a sorted heap while it is at most this many times
# longer than they are: moving a list entry costs far less than the ~20
# comparisons of a heappop.
_SLICE_RATIO = 4096

# After this many due jobs, _collect_due checks whether a burst is due.
_BURST_PROBE = 256


def _mostly_due(entries: list[TimedTask], now: float) -> bool:
    """Return ``True`` if at least 1/8 of a sample of *entries* is due.

    Popping k of n jobs costs about k log n; sorting all n (mostly in order
    already) about n: sorting wins well before half are due. The sample is
    spread over the heap's array, whose later half are its leaves (its
    latest jobs), so it errs towards popping.
    """
    step = len(entries) // 64
    if step < 16:
        return False  # a small heap: popping is cheap anyway
    return sum(task <= now for task in entries[::step]) * 8 >= 64


_sequence_of = attrgetter("_seq")


class _SequenceQueue(_LazyDeletion):
    """What the FIFO and LIFO queues share."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        super().__init__()
        self._entries: deque[Task[Any]] = deque()

    def __len__(self) -> int:
        return len(self._entries) - self._garbage

    def _size(self) -> int:
        return len(self._entries)

    def _compact(self) -> None:
        live = [t for t in self._entries if t._state == PENDING]
        self._entries.clear()
        self._entries.extend(live)

    def drain(self) -> Iterator[Task[Any]]:
        entries, self._entries, self._garbage = self._entries, deque(), 0
        for task in entries:
            if task._state == PENDING:
                yield task


class FifoQueue(_SequenceQueue):
    """Pending jobs served oldest first."""

    __slots__ = ()

    def pop(self) -> Task[Any] | None:
        """Remove and return the oldest live task, or ``None`` if empty."""
        entries = self._entries
        while entries:
            task = entries.popleft()
            if task._state == PENDING:
                return task
            self._garbage -= 1
        return None


class LifoQueue(_SequenceQueue):
    """Pending jobs served newest first."""

    __slots__ = ()

    def pop(self) -> Task[Any] | None:
        """Remove and return the newest live task, or ``None`` if empty."""
        entries = self._entries
        while entries:
            task = entries.pop()
            if task._state == PENDING:
                return task
            self._garbage -= 1
        return None
