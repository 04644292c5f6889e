"""The library's own exceptions: few, each subclassing the closest builtin."""

from __future__ import annotations

__all__ = [
    "JobConflict",
    "StoreError",
    "StoreLocked",
    "ScheduleConflict",
    "SchedulerClosed",
    "SchedulerError",
    "TaskCancelled",
    "TaskLimitReached",
]


class SchedulerError(Exception):
    """Base class of every exception that aioscheduler raises itself.

    .. versionadded:: 2.0
    """


class TaskLimitReached(SchedulerError, ValueError):
    """Raised when scheduling would exceed ``max_tasks`` pending and running jobs.

    It subclasses :exc:`ValueError` so that 1.x code catching ``ValueError``
    keeps working.

    .. versionadded:: 2.0
    """


class SchedulerClosed(SchedulerError, RuntimeError):
    """Raised when scheduling on a scheduler that has been closed.

    A scheduler serves once: after its ``async with`` block, its ``run()`` or
    its 1.x facade has ended, or after :meth:`TimedScheduler.aclose`, it
    takes no more jobs. Create a new scheduler instead.

    .. versionadded:: 2.0
    """


class TaskCancelled(SchedulerError):
    """Raised by :meth:`Task.result`, :meth:`Task.exception` and :meth:`Task.wait`
    when the task was cancelled.

    This is *not* the event loop's cancellation exception: a caller awaiting
    :meth:`Task.wait` is not itself being cancelled, so raising the loop's
    cancellation exception there would confuse cancel scopes.

    .. versionadded:: 2.0
    """


class ScheduleConflict(SchedulerError, ValueError):
    """Raised by ``add_schedule`` when the ``id`` is in use and
    ``on_conflict="error"`` (the default).

    .. versionadded:: 2.0
    """


class JobConflict(SchedulerError, ValueError):
    """Raised by a durable add when a pending or running job has the same
    ``key`` and ``on_conflict="error"`` (the default).

    .. versionadded:: 2.0
    """


class StoreError(SchedulerError):
    """A durable store cannot do what was asked: it cannot be created or
    opened, is not an aioscheduler store, was made by a newer version, or a
    write failed (the disk is full). Nothing was committed by the call that
    raised it.

    .. versionadded:: 2.0
    """


class StoreLocked(StoreError):
    """The SQLite store is open in another process: one process per file.

    .. versionadded:: 2.0
    """
