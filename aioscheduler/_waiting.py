"""Back-pressure: the awaitable scheduling calls (``astart_soon`` & co.) wait here.

A plain scheduling call raises :exc:`TaskLimitReached` when ``max_tasks`` is
reached; its awaitable twin waits for room instead, the way AnyIO's memory
object stream ``send`` waits where ``send_nowait`` raises.

Waiters queue in FIFO order. Each slot that frees wakes one waiter (the first
not yet woken); a woken waiter that finds the room taken again (a plain call
got there first) waits again in its place, and one that is cancelled after
being woken passes its wake-up on, so no wake-up is lost. Closing wakes them
all; they then get :exc:`SchedulerClosed` from the scheduling call.

The schedulers pay one attribute test per freed slot for this
(``if self._rooms:``); the list is empty unless someone waits.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.lowlevel

from ._exceptions import TaskLimitReached

if TYPE_CHECKING:
    from ._scheduler import BaseScheduler
    from ._task import Task

__all__ = ["Room"]

T = TypeVar("T")


class _Waiter:
    __slots__ = ("event", "woken")

    def __init__(self) -> None:
        self.event = anyio.Event()
        # Set once a freed slot (or closing) was handed to this waiter.
        self.woken = False


class Room:
    """The queue of callers waiting for room on some schedulers.

    :param watched: the schedulers whose freed slots may make room (one
        scheduler, or all of a Manager's)
    :param closed: whether the front refuses jobs now
    """

    __slots__ = ("_closed", "_waiters", "_watched")

    def __init__(
        self, watched: Sequence[BaseScheduler], closed: Callable[[], bool]
    ) -> None:
        self._watched = watched
        self._closed = closed
        self._waiters: deque[_Waiter] = deque()

    def freed(self) -> None:
        """A slot freed: wake the first waiter not woken yet."""
        for waiter in self._waiters:
            if not waiter.woken:
                waiter.woken = True
                waiter.event.set()
                return

    def wake_all(self) -> None:
        """The front closed: wake every waiter, to get SchedulerClosed."""
        for waiter in self._waiters:
            waiter.woken = True
            waiter.event.set()

    async def admit(self, push: Callable[[], Task[T]]) -> Task[T]:
        """Return ``push()``, waiting for room while it raises TaskLimitReached.

        *push* is the plain scheduling call (its arguments already checked).
        """
        # Like every AnyIO async call: a checkpoint, even with room to spare.
        await anyio.lowlevel.checkpoint()
        waiters = self._waiters
        if not waiters or self._closed():
            # Nobody is ahead of us (or nobody will be served any more).
            try:
                return push()
            except TaskLimitReached:
                pass
        waiter = _Waiter()
        if not waiters:
            for scheduler in self._watched:
                scheduler._rooms.append(self)
        waiters.append(waiter)
        try:
            while True:
                await waiter.event.wait()
                try:
                    return push()
                except TaskLimitReached:
                    # A plain call took the room first: wait again, keeping
                    # our place at the front.
                    waiter.event = anyio.Event()
                    waiter.woken = False
        except BaseException:
            if waiter.woken:
                # Woken, then cancelled (or refused): hand the wake-up on.
                # freed() skips us, as we count as woken.
                self.freed()
            raise
        finally:
            waiters.remove(waiter)
            if not waiters:
                for scheduler in self._watched:
                    scheduler._rooms.remove(self)


def room_of(front: Any) -> Room:
    """Return *front*'s Room, making it on first use."""
    room: Room | None = front._room
    if room is None:
        room = front._room = front._new_room()
    return room
