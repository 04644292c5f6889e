"""Pure data structures for pending jobs: no awaits, no clocks, no I/O.

Cancelling a pending job must not cost O(n), so all three containers use
lazy deletion, after Trio's deadline heap: a cancelled task stays where it is
(it is already marked cancelled) and is dropped when it reaches the front;
the container is rebuilt only when such garbage outnumbers the live entries,
which keeps both memory and the amortised cost of a cancel bounded.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator
from itertools import count
from typing import Protocol

from ._task import PENDING, Task

__all__ = ["DeadlineHeap", "FifoQueue", "LifoQueue", "PendingJobs"]

# Below this many dead entries, rebuilding is not worth its cost.
_MIN_GARBAGE_TO_COMPACT = 1024


class PendingJobs(Protocol):
    """What a scheduler needs from its container of pending jobs."""

    def __len__(self) -> int:
        """Return the number of live (not cancelled) pending jobs."""
        ...

    def discard(self, task: Task) -> None:
        """Account for *task*, already marked cancelled, as garbage."""
        ...

    def drain(self) -> Iterator[Task]:
        """Empty the container, yielding every live task."""
        ...


class DeadlineHeap:
    """A min-heap of timed jobs ordered by (deadline, scheduling order)."""

    __slots__ = ("_entries", "_garbage", "_sequence")

    def __init__(self) -> None:
        # (deadline, sequence, task): tuples compare in C, and the unique
        # sequence number both breaks ties FIFO and keeps Task out of the
        # comparison.
        self._entries: list[tuple[float, int, Task]] = []
        self._garbage = 0
        self._sequence = count()

    def __len__(self) -> int:
        return len(self._entries) - self._garbage

    def push(self, deadline: float, task: Task) -> None:
        """Add *task*, due at loop-clock time *deadline*."""
        heapq.heappush(self._entries, (deadline, next(self._sequence), task))

    def next_deadline(self) -> float | None:
        """Return the earliest live deadline, or ``None`` if empty."""
        entries = self._entries
        while entries:
            entry = entries[0]
            if entry[2]._state == PENDING:
                return entry[0]
            heapq.heappop(entries)
            self._garbage -= 1
        return None

    def pop_due(self, now: float) -> Task | None:
        """Remove and return the earliest live task due at or before *now*."""
        entries = self._entries
        while entries and entries[0][0] <= now:
            task = heapq.heappop(entries)[2]
            if task._state == PENDING:
                return task
            self._garbage -= 1
        return None

    def discard(self, task: Task) -> None:
        self._garbage += 1
        if self._garbage > _MIN_GARBAGE_TO_COMPACT and self._garbage * 2 > len(
            self._entries
        ):
            self._entries = [e for e in self._entries if e[2]._state == PENDING]
            heapq.heapify(self._entries)
            self._garbage = 0

    def drain(self) -> Iterator[Task]:
        entries, self._entries, self._garbage = self._entries, [], 0
        for entry in entries:
            if entry[2]._state == PENDING:
                yield entry[2]


class _SequenceQueue:
    """Shared lazy-deletion logic of the FIFO and LIFO queues."""

    __slots__ = ("_entries", "_garbage")

    def __init__(self) -> None:
        self._entries: deque[Task] = deque()
        self._garbage = 0

    def __len__(self) -> int:
        return len(self._entries) - self._garbage

    def push(self, task: Task) -> None:
        """Add *task* at the back."""
        self._entries.append(task)

    def _take(self) -> Task:
        raise NotImplementedError

    def pop(self) -> Task | None:
        """Remove and return the next live task, or ``None`` if empty."""
        entries = self._entries
        while entries:
            task = self._take()
            if task._state == PENDING:
                return task
            self._garbage -= 1
        return None

    def discard(self, task: Task) -> None:
        self._garbage += 1
        if self._garbage > _MIN_GARBAGE_TO_COMPACT and self._garbage * 2 > len(
            self._entries
        ):
            self._entries = deque(t for t in self._entries if t._state == PENDING)
            self._garbage = 0

    def drain(self) -> Iterator[Task]:
        entries, self._entries, self._garbage = self._entries, deque(), 0
        for task in entries:
            if task._state == PENDING:
                yield task


class FifoQueue(_SequenceQueue):
    """Pending jobs served oldest first."""

    __slots__ = ()

    def _take(self) -> Task:
        return self._entries.popleft()


class LifoQueue(_SequenceQueue):
    """Pending jobs served newest first."""

    __slots__ = ()

    def _take(self) -> Task:
        return self._entries.pop()
