"""aioscheduler: a scalable, high-performance task scheduler for asyncio and Trio.

Public names are re-exported here; the implementation lives in private
modules.
"""

from ._durable import JobContext as JobContext
from ._durable import current_job as current_job
from ._durable_api import DurableBatch as DurableBatch
from ._exceptions import JobConflict as JobConflict
from ._exceptions import ScheduleConflict as ScheduleConflict
from ._exceptions import SchedulerClosed as SchedulerClosed
from ._exceptions import SchedulerError as SchedulerError
from ._exceptions import StoreError as StoreError
from ._exceptions import StoreLocked as StoreLocked
from ._exceptions import TaskCancelled as TaskCancelled
from ._exceptions import TaskLimitReached as TaskLimitReached
from ._introspect import SchedulerStatistics as SchedulerStatistics
from ._manager import Manager as Manager
from ._queued import LifoQueuedScheduler as LifoQueuedScheduler
from ._queued import QueuedScheduler as QueuedScheduler
from ._registry import durable as durable
from ._schedules import Schedule as Schedule
from ._task import Task as Task
from ._timed import TimedScheduler as TimedScheduler
from ._triggers import AnyOf as AnyOf
from ._triggers import At as At
from ._triggers import Calendar as Calendar
from ._triggers import Cron as Cron
from ._triggers import Every as Every
from ._version import __version__ as __version__
from .stores._interface import JobStore as JobStore
from .stores._postgres import PostgresStore as PostgresStore
from .stores._sqlite import SQLiteStore as SQLiteStore

__all__ = [
    "AnyOf",
    "At",
    "Calendar",
    "Cron",
    "DurableBatch",
    "Every",
    "JobConflict",
    "JobContext",
    "JobStore",
    "LifoQueuedScheduler",
    "Manager",
    "PostgresStore",
    "Schedule",
    "ScheduleConflict",
    "QueuedScheduler",
    "SQLiteStore",
    "SchedulerClosed",
    "SchedulerError",
    "SchedulerStatistics",
    "StoreError",
    "StoreLocked",
    "TaskCancelled",
    "TaskLimitReached",
    "Task",
    "TimedScheduler",
    "__version__",
    "current_job",
    "durable",
]

# Show the public path in reprs, tracebacks and docs (aioscheduler.Task, not
# aioscheduler._task.Task).
for _name in __all__:
    _value = globals()[_name]
    if getattr(_value, "__module__", "").startswith("aioscheduler."):
        _value.__module__ = __name__
del _name, _value
