"""The one small interface between the portable core and an event loop.

The core (``aioscheduler._scheduler``) owns the policy: what is due, in which
order, what a job's outcome means. An :class:`Engine` owns the mechanics that
are cheapest done natively: sleeping until a deadline or a wake-up, starting
a job concurrently or inline, and delivering cancellation to one job. The
portable engine (``_anyio.py``) does all of it with AnyIO primitives; native
engines do the same with their loop's own calls where AnyIO's generality
costs too much. Every engine runs the same test suite.

The contract, both ways: an engine reads nothing of a :class:`Task` but its
identity and whether it still runs (``_state``), keeps its own per-job
handles (an asyncio task, a cancel scope), and reports every job's end
through exactly one of the host's ``_job_finished``, ``_job_failed`` or
``_job_cancelled``; the core calls only the :class:`Engine` methods.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from aioscheduler._task import Task

__all__ = ["Engine", "JobHost", "LoopBinding"]


class JobHost(Protocol):
    """What an engine calls back on the scheduler that owns the jobs."""

    #: the cancel scope around the serving loop while it serves
    _serve_scope: Any

    def _job_coroutine(self, task: Task) -> Coroutine[Any, Any, Any]:
        """Return the coroutine to await for *task* (already marked running)."""
        ...

    def _job_finished(self, task: Task, value: Any) -> None:
        """Record that *task*'s job returned *value*."""
        ...

    def _job_failed(self, task: Task, exc: BaseException) -> None:
        """Record that *task*'s job raised *exc* (and report it)."""
        ...

    def _job_cancelled(self, task: Task) -> None:
        """Record that *task*'s job was cancelled (or never started)."""
        ...

    def _request_close(self) -> None:
        """Stop serving: refuse jobs, cancel pending and running ones."""
        ...


class Engine(ABC):
    """Runs one scheduler's jobs on one event loop, for one serving period.

    ``async with engine:`` brackets the serving task's life; leaving it waits
    until every job the engine started has ended.
    """

    @abstractmethod
    async def __aenter__(self) -> Engine: ...

    @abstractmethod
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        """Wait for every job; ``True`` if the exception was caught here."""

    @abstractmethod
    async def sleep_until(self, deadline: float | None) -> None:
        """Sleep until loop-clock *deadline* (``None``: no deadline) or :meth:`wake`."""

    @abstractmethod
    def wake(self) -> None:
        """Make the current or next :meth:`sleep_until` return early."""

    @abstractmethod
    async def checkpoint(self) -> None:
        """Let other tasks run (and cancellation arrive)."""

    @abstractmethod
    def spawn(self, task: Task) -> None:
        """Start *task*'s job now, concurrently with the caller."""

    @abstractmethod
    async def run_inline(
        self, task: Task, next_task: Callable[[], Task | None], limit: int
    ) -> None:
        """Run jobs one after the other in the calling (serving) task.

        First *task*'s job, then those of the tasks ``next_task()`` returns
        (marked running), until it returns ``None`` or *limit* jobs have
        run. Returning lets the caller checkpoint between runs.
        """

    @abstractmethod
    def cancel_job(self, task: Task) -> None:
        """Deliver cancellation to *task*'s running job."""

    @abstractmethod
    def cancel_all(self) -> None:
        """Deliver cancellation to every job this engine has started."""


class LoopBinding(ABC):
    """The facts about one running event loop that the core needs."""

    #: ``"asyncio"`` or ``"trio"``
    name: str
    #: the loop's monotonic clock, the same as :func:`anyio.current_time`
    clock: Callable[[], float]
    #: what identifies this loop: ``current_loop() == loop`` exactly when
    #: called from this loop's thread while it runs (the hot-path check)
    loop: object
    #: returns the identity of the loop running in the calling thread
    current_loop: Callable[[], object]
    #: ``True`` if ``clock`` is :func:`time.monotonic` plus a constant (the
    #: loop's own clock, no test clock): then wall time is the wall clock
    #: plus a constant, and reading it takes one call, not three
    monotonic_clock: bool = False

    @abstractmethod
    def in_loop(self) -> bool:
        """Return ``True`` if called from this loop's thread while it runs."""

    def in_same_thread(self, other: LoopBinding) -> bool:
        """Return ``True`` if *other* is a loop that ran in this loop's thread."""
        return False

    @abstractmethod
    def open_engine(self, host: JobHost) -> Engine:
        """Return the engine that will serve *host* on this loop."""

    @abstractmethod
    def start_facade(self, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Serve ``run()`` in the background, without ``async with`` (1.x)."""
