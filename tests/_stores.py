"""Stores for tests: the real SQLite store, with or without its thread hop.

Behaviour tests run in virtual time (Trio's MockClock, looptime), which
jumps the clock whenever every task waits, a thread hop included: a job
would then be claimed "later" than it was. ``InlineSQLiteStore`` runs each
store call in the event loop's thread instead, so virtual time stays exact.
It is the same SQL and the same transactions; only the hop differs, and
tests of the hop itself (``thread_store``) run in real time.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from aioscheduler import SQLiteStore

T = TypeVar("T")


class InlineSQLiteStore(SQLiteStore):
    """A SQLiteStore whose calls run in the event loop's thread."""

    async def _hop(self, fn: Callable[..., T], *args: Any) -> T:
        return fn(*args)


def inline_store(path: Path, **options: Any) -> InlineSQLiteStore:
    return InlineSQLiteStore(path, **options)
