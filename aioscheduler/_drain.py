"""``aclose(drain=True)``: let running jobs finish before closing.

Kept apart from the scheduler so that the default ``aclose()`` stays exactly
as it was: draining only adds a phase before it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from ._scheduler import BaseScheduler

__all__ = ["check_drain_timeout", "drain"]


def check_drain_timeout(drain: object, timeout: object) -> float:
    """Return *timeout* as seconds (``inf`` for ``None``), or raise.

    :raises TypeError: if *timeout* is not ``None`` or a number (``bool``
        refused), or is given without ``drain=True``
    :raises ValueError: if *timeout* is negative or NaN
    """
    if timeout is None:
        return math.inf
    if not drain:
        raise TypeError(
            "aclose(timeout=...) needs drain=True: without draining, running "
            "jobs are cancelled at once"
        )
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(
            f"timeout must be a number of seconds or None, not {type(timeout).__name__}"
        )
    seconds = float(timeout)
    if not seconds >= 0:  # also refuses NaN
        raise ValueError(f"timeout must not be negative, got {timeout!r}")
    return seconds


async def drain(schedulers: Sequence[BaseScheduler], grace: float) -> None:
    """Stop taking jobs, cancel pending ones, and wait for the running ones.

    Waits at most *grace* seconds of the loop clock (one deadline for all
    *schedulers*), then cancels what still runs. Whatever ends the wait,
    a caller's cancellation included, the running jobs are then cancelled:
    never left running with nobody waiting for them. The caller goes on to
    close the schedulers as usual, which waits for those cancelled jobs.
    """
    for scheduler in schedulers:
        scheduler._stop_taking()
    try:
        with anyio.move_on_after(grace):
            for scheduler in schedulers:
                await scheduler.join()
    finally:
        for scheduler in schedulers:
            scheduler._request_close()
