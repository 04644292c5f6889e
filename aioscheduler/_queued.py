"""QueuedScheduler and LifoQueuedScheduler: one job at a time, in order."""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine
from itertools import count
from typing import Any, TypeVar, TypeVarTuple, Unpack

from . import backends
from ._callables import NOTHING_CHECKED as _NOTHING_CHECKED
from ._callables import check_async_fn, check_coroutine
from ._queues import FifoQueue, LifoQueue
from ._scheduler import BaseScheduler, ErrorHandler
from ._task import RUNNING, QueuedTask, Task
from ._waiting import room_of

__all__ = ["LifoQueuedScheduler", "QueuedScheduler"]

PosArgsT = TypeVarTuple("PosArgsT")
T = TypeVar("T")

# Jobs that never await would otherwise keep the serving task on the loop for
# the whole queue; yield to other tasks this often.
_JOBS_BETWEEN_CHECKPOINTS = 64


class QueuedScheduler(BaseScheduler):
    """Run jobs one at a time, in the order they were scheduled (FIFO).

    Each job runs to its end before the next starts, in the serving task
    itself: no task is created per job.

    :param max_tasks: at most this many jobs pending and running at once
        (``None``: no limit); beyond it scheduling raises
        :exc:`TaskLimitReached`
    :param on_error: what to do when a job raises (see
        :class:`TimedScheduler`)

    Example::

        async with QueuedScheduler() as scheduler:
            for url in urls:
                scheduler.start_soon(fetch, url)

    .. versionchanged:: 2.0
       Runs on asyncio and Trio; ``start_soon``, ``on_error``.
    """

    def __init__(
        self, max_tasks: int | None = None, *, on_error: ErrorHandler | None = None
    ) -> None:
        super().__init__(max_tasks, on_error=on_error)
        self._pending: FifoQueue | LifoQueue = self._new_queue()
        self._sequence = count()
        self._checked_fn: object = _NOTHING_CHECKED

    def _new_queue(self) -> FifoQueue | LifoQueue:
        return FifoQueue()

    def schedule(self, coro: Coroutine[Any, Any, T]) -> Task[T]:
        """Enqueue the coroutine object *coro* (the 1.x form).

        :raises TypeError: if *coro* is not a coroutine object

        The coroutine is closed if it is rejected or cancelled before it runs.
        """
        check_coroutine(coro)
        try:
            return self._push(coro, None)
        except BaseException:
            coro.close()
            raise

    def start_soon(
        self,
        async_fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, T]],
        /,
        *args: *PosArgsT,
    ) -> Task[T]:
        """Enqueue ``async_fn(*args)``; the coroutine is created when its turn comes.

        :raises TypeError: if *async_fn* is not an async function

        .. versionadded:: 2.0
        """
        if async_fn is not self._checked_fn:
            check_async_fn(async_fn)
            self._checked_fn = async_fn
        return self._push(async_fn, args)

    async def astart_soon(
        self,
        async_fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, T]],
        /,
        *args: *PosArgsT,
    ) -> Task[T]:
        """As :meth:`start_soon`, but wait for room instead of raising
        :exc:`TaskLimitReached` when ``max_tasks`` is reached.

        Callers wait in FIFO order; without ``max_tasks`` it never waits. ::

            for url in urls:
                await scheduler.astart_soon(fetch, url)

        :raises SchedulerClosed: if the scheduler is or gets closed

        .. versionadded:: 2.0
        """
        check_async_fn(async_fn)
        return await room_of(self).admit(lambda: self._push(async_fn, args))

    async def aschedule(self, coro: Coroutine[Any, Any, T]) -> Task[T]:
        """As :meth:`schedule`, but wait for room (see :meth:`astart_soon`).

        The coroutine is closed if it is rejected, or if the caller is
        cancelled while waiting. ::

            task = await scheduler.aschedule(work(1))

        .. versionadded:: 2.0
        """
        check_coroutine(coro)
        try:
            return await room_of(self).admit(lambda: self._push(coro, None))
        except BaseException:
            coro.close()
            raise

    def _push(self, callback: Any, args: tuple[Any, ...] | None) -> Task[Any]:
        if self._current_loop() != self._loop:
            self._bind()
        if self._closed or self._max_tasks is not None:
            self._check_open()
        task = QueuedTask(self, callback, args, next(self._sequence))
        self._pending._entries.append(task)
        self._loads[self._slot] += 1
        if self._sleeping_until == math.inf:
            self._wake()
        return task

    async def _serve(self, engine: backends.Engine) -> None:
        pending = self._pending
        pop = pending.pop
        run_inline = engine.run_inline

        def next_task() -> Task[Any] | None:
            task = pop()
            if task is not None:
                task._state = RUNNING
            return task

        while True:
            task = next_task()
            if task is None:
                self._sleeping_until = math.inf
                try:
                    await engine.sleep_until(None)
                finally:
                    self._sleeping_until = -math.inf
                continue
            await run_inline(task, next_task, _JOBS_BETWEEN_CHECKPOINTS)
            await engine.checkpoint()


class LifoQueuedScheduler(QueuedScheduler):
    """As :class:`QueuedScheduler`, but the newest pending job runs first (LIFO).

    .. versionadded:: 2.0
    """

    def _new_queue(self) -> FifoQueue | LifoQueue:
        return LifoQueue()
