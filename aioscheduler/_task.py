"""The :class:`Task` handle that every scheduling call returns."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Generic, NamedTuple, NoReturn, TypeVar
from uuid import UUID, uuid4

import anyio

from ._exceptions import TaskCancelled
from ._time import utc_from_timestamp

if TYPE_CHECKING:
    from ._scheduler import BaseScheduler

__all__ = ["Task"]

#: What the job returns. Covariant: a ``Task[int]`` is a ``Task[object]``.
T_co = TypeVar("T_co", covariant=True)

# Task states. Plain ints rather than an Enum: they are compared on every
# dispatch and completion, and an int compare is the cheapest Python has.
PENDING: Final = 0
RUNNING: Final = 1
FINISHED: Final = 2
FAILED: Final = 3
CANCELLED: Final = 4

_STATE_NAMES: Final = ("pending", "running", "finished", "failed", "cancelled")


class Task(Generic[T_co]):
    """A handle on one scheduled job.

    Every scheduling call (``schedule``, ``start_at``, ``start_after``,
    ``start_soon``) returns one. It lets you follow the job through its life
    (*pending*, *running*) to exactly one terminal state: *finished* (the job
    returned), *failed* (it raised) or *cancelled*.

    Tasks are created by schedulers only; never instantiate one yourself.

    ``Task`` is generic in what the job returns: ``start_after(1, fetch,
    url)`` with ``async def fetch(url: str) -> bytes`` gives a
    ``Task[bytes]``, so ``await task.wait()`` and ``task.result()`` are typed
    ``bytes`` for type checkers.

    Example::

        async with TimedScheduler() as scheduler:
            task = scheduler.start_after(1, fetch, "https://example.org")
            page = await task.wait()

    .. versionadded:: 2.0
       ``when``, :meth:`cancel`, :meth:`cancelled`, :meth:`done`,
       :meth:`result`, :meth:`exception` and :meth:`wait`. The 1.x fields
       ``priority``, ``uuid`` and ``callback`` are kept.
    """

    # The layout lives in the two concrete classes below; see TimedTask.
    # (Hidden from type checkers, which would otherwise refuse assignments
    # to the attributes annotated here.)
    if not TYPE_CHECKING:
        __slots__ = ()

    _owner: BaseScheduler
    _args: tuple[Any, ...] | None
    # The priority; once someone asks for the uuid, a _Named holding both
    # (rarely asked for, so it does not cost every task a slot).
    _priority: datetime | int | _Named | None
    _state: int
    # Scheduling order: breaks ties between equal deadlines (timed) and is
    # the queued tasks' priority.
    _seq: int
    # Once done: what the job returned (finished), or the exception it raised
    # and that exception's traceback as the job left it (failed): result()
    # re-raises with that traceback, so asking twice does not lengthen it.
    _outcome: Any

    if TYPE_CHECKING:
        callback: Coroutine[Any, Any, Any] | Callable[..., Coroutine[Any, Any, Any]]
    else:
        # Documented here; the value lives in the concrete classes' slot.
        callback = property(
            doc="The coroutine object (1.x ``schedule`` form) or the async "
            "function (``start_*`` forms) that the job runs."
        )

    # -- 1.x fields ---------------------------------------------------------

    @property
    def priority(self) -> datetime | int:
        """The job's place in its scheduler's order.

        For timed jobs, the :class:`~datetime.datetime` it was scheduled at
        (as given; for ``start_after``, the aware UTC time it maps to). For
        queued jobs, an ``int`` sequence number that increases in scheduling
        order, per scheduler.
        """
        priority = self._priority
        if isinstance(priority, _Named):
            priority = priority.priority
        if priority is None or priority.__class__ is ElapsedFire:
            when = self.when
            assert when is not None
            return when
        return priority

    @property
    def uuid(self) -> UUID:
        """A random :class:`uuid.UUID` naming this task.

        Made on first access: most tasks are never asked for one, and
        ``uuid4()`` costs more than scheduling the job does.
        """
        priority = self._priority
        if isinstance(priority, _Named):
            return priority.uuid
        named = self._priority = _Named(priority, uuid4())
        return named.uuid

    # -- 2.0 fields ---------------------------------------------------------

    @property
    def when(self) -> datetime | None:
        """The aware UTC :class:`~datetime.datetime` the job is due at, or
        ``None`` for queued jobs."""
        priority = self._priority
        if isinstance(priority, _Named):
            priority = priority.priority
        if isinstance(priority, datetime):
            if priority.tzinfo is None:
                return self._owner._naive_to_utc(priority)
            if priority.__class__ is ElapsedFire:
                return _plain(priority)
            return priority.astimezone(UTC)
        deadline = self._deadline
        if deadline is None:
            return None
        return utc_from_timestamp(self._owner._wall_time_of(deadline))

    @property
    def _deadline(self) -> float | None:
        return None

    # -- state --------------------------------------------------------------

    def pending(self) -> bool:
        """Return ``True`` while the job has not started (nor been cancelled).

        .. versionadded:: 2.0
        """
        return self._state == PENDING

    def running(self) -> bool:
        """Return ``True`` while the job runs, as
        ``concurrent.futures.Future.running()`` does.

        .. versionadded:: 2.0
        """
        return self._state == RUNNING

    def done(self) -> bool:
        """Return ``True`` once the task has finished, failed or been cancelled."""
        return self._state > RUNNING

    def cancelled(self) -> bool:
        """Return ``True`` if the task ended cancelled."""
        return self._state == CANCELLED

    def cancel(self) -> bool:
        """Cancel the job.

        A pending job will never run. A running job is cancelled the way the
        event loop cancels anything (it may clean up, or even suppress the
        cancellation, in which case it ends as it returns).

        :return: ``True`` if the cancellation was delivered, ``False`` if the
            task had already ended.
        """
        return self._owner._cancel_task(self)

    def result(self) -> T_co:
        """Return what the job returned.

        :raises RuntimeError: if the task is not done yet
        :raises TaskCancelled: if the task was cancelled
        :raises BaseException: the job's own exception, if it failed
        """
        state = self._state
        if state == FINISHED:
            value: T_co = self._outcome
            return value
        if state == FAILED:
            exc, tb = self._outcome
            raise exc.with_traceback(tb)
        self._raise_unless_done()

    def exception(self) -> BaseException | None:
        """Return the exception the job raised, or ``None`` if it returned.

        :raises RuntimeError: if the task is not done yet
        :raises TaskCancelled: if the task was cancelled
        """
        state = self._state
        if state == FINISHED:
            return None
        if state == FAILED:
            value: BaseException = self._outcome[0]
            return value
        self._raise_unless_done()

    async def wait(self) -> T_co:
        """Wait until the task is done, then return its result.

        :return: what the job returned
        :raises TaskCancelled: if the task was cancelled
        :raises BaseException: the job's own exception, if it failed
        """
        if self._state <= RUNNING:
            waiters = self._owner._waiters
            waiter = waiters.get(self)
            if waiter is None:
                waiter = waiters[self] = anyio.Event()
            await waiter.wait()
        return self.result()

    def _raise_unless_done(self) -> NoReturn:
        if self._state == CANCELLED:
            raise TaskCancelled(f"{self!r} was cancelled")
        raise RuntimeError(
            f"{self!r} is not done yet; await task.wait() to wait for it"
        )

    def __repr__(self) -> str:
        """``<Task work(1, 'abc') pending due=2026-12-04T18:16:22.537Z>``.

        The function and its arguments (shortened), the state, and the due
        time (aware UTC, ISO 8601) or, for queued jobs, the sequence number.
        Never raises, whatever the arguments' own ``repr`` does.
        """
        from ._introspect import describe  # (a cycle at import time)

        return describe(self, _STATE_NAMES[self._state])


class ElapsedFire(datetime):
    """The fire time of an elapsed-time schedule's run (``Every``).

    The run's ``when`` (an aware UTC datetime), while the run itself waits
    on the loop clock: a ``priority`` of this type marks a timed task whose
    float is a loop deadline, not a wall timestamp.
    """

    __slots__ = ()

    @classmethod
    def of(cls, when: datetime) -> ElapsedFire:
        return _as(cls, when.astimezone(UTC))


_D = TypeVar("_D", bound=datetime)


def _as(cls: type[_D], when: datetime) -> _D:
    """Return the instant *when* as an instance of *cls* (a datetime class)."""
    return cls(
        when.year,
        when.month,
        when.day,
        when.hour,
        when.minute,
        when.second,
        when.microsecond,
        when.tzinfo,
    )


def _plain(when: datetime) -> datetime:
    """Return *when* as a plain :class:`datetime` (not a subclass)."""
    return _as(datetime, when)


class _Named(NamedTuple):
    priority: datetime | int | None
    uuid: UUID


_SLOTS = (
    "_args",
    "_owner",
    "_priority",
    "_outcome",
    "_seq",
    "_state",
    "callback",
)


class TimedTask(float, Task[Any]):
    """A timed job: a :class:`Task` that *is* its loop-clock deadline.

    Millions of these may wait in a heap. Being a ``float`` (whose value is
    the deadline) lets :mod:`heapq` order them with C comparisons and needs
    neither a ``(deadline, seq, task)`` tuple nor a separate float object per
    job: about 110 bytes less per pending job. Equality and hashing stay by
    identity, as for any handle; only ``<`` and friends compare deadlines.
    Ties are put in scheduling order (``_seq``) when they come due.
    """

    __slots__ = _SLOTS

    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = object.__hash__
    __str__ = Task.__repr__

    def __bool__(self) -> bool:
        return True

    @property
    def _is_wall(self) -> bool:
        """Whether this job waits for the wall clock (it has a datetime)."""
        priority = self._priority
        if isinstance(priority, _Named):
            priority = priority.priority
        return priority is not None and priority.__class__ is not ElapsedFire

    @property
    def _deadline(self) -> float:
        if self._is_wall:
            # A wall-clock job's float is its POSIX timestamp.
            return float(self) - self._owner._wall_offset
        return float(self)

    def __repr__(self) -> str:
        return Task.__repr__(self)


_new_float = float.__new__


def new_timed_task(
    deadline: float,
    owner: BaseScheduler,
    callback: Any,
    args: tuple[Any, ...] | None,
    priority: datetime | None,
    seq: int,
) -> TimedTask:
    """Return a pending :class:`TimedTask`.

    A function rather than ``TimedTask.__new__``: calling the class goes
    through ``type.__call__`` and a Python-level ``__new__``, which costs
    about 80 ns more per job (a third of making the task).
    """
    task = _new_float(TimedTask, deadline)
    task._owner = owner
    task.callback = callback
    task._args = args
    task._priority = priority
    task._state = PENDING
    task._seq = seq
    # _outcome stays unset until the task is done (one store less per job).
    return task


class QueuedTask(Task[Any]):
    """A queued job; its ``priority`` is its sequence number."""

    __slots__ = _SLOTS

    def __init__(
        self,
        owner: BaseScheduler,
        callback: Any,
        args: tuple[Any, ...] | None,
        seq: int,
    ) -> None:
        self._owner = owner
        self.callback = callback
        self._args = args
        self._priority = seq
        self._seq = seq
        self._state = PENDING
        self._outcome = None
