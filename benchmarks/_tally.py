"""The jobs of the workloads: ``counter += 1`` plus what each one records.

Every implementation, aioscheduler 2, the floors, aiojobs, APScheduler and
aioscheduler 1.4.2 (``benchmarks/_legacy142.py``, so Python 3.10 syntax and
the standard library only), runs these same job bodies.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

Job = Callable[[int], Coroutine[Any, Any, None]]


class Tally:
    """Counts job runs; its ``*_job`` methods make the workloads' jobs.

    Each job is ``counter += 1`` plus what its workload records; the one that
    brings the count to *target* notes the time and calls *on_done*.
    """

    __slots__ = ("clock", "count", "first", "last", "on_done", "started", "target")

    def __init__(
        self, target: int, clock: Callable[[], float], on_done: Callable[[], object]
    ) -> None:
        self.target = target
        self.clock = clock
        self.on_done = on_done
        self.count = 0
        self.started = 0
        self.first = math.nan
        self.last = math.nan

    def burst_job(self) -> Job:
        """W2: count, and note when the first starts and the last finishes."""
        clock = self.clock
        target = self.target

        async def job(i: int) -> None:
            count = self.count = self.count + 1
            if count == 1:
                self.first = clock()
            if count == target:
                self.last = clock()
                self.on_done()

        return job

    def steady_job(self, late: list[float], due: Sequence[float]) -> Job:
        """W3/W6: record ``start - due`` of job *i*, and count."""
        clock = self.clock
        target = self.target

        async def job(i: int) -> None:
            late[i] = clock() - due[i]
            count = self.count = self.count + 1
            if count == target:
                self.last = clock()
                self.on_done()

        return job

    def marking_job(self, runs: bytearray) -> Job:
        """W4/W6: count the runs of job *i*, and count."""
        target = self.target

        async def job(i: int) -> None:
            runs[i] += 1
            count = self.count = self.count + 1
            if count == target:
                self.on_done()

        return job

    def ordered_job(self, order: list[int]) -> Job:
        """W5: append *i* to the run order, and count."""
        target = self.target
        clock = self.clock

        async def job(i: int) -> None:
            order.append(i)
            count = self.count = self.count + 1
            if count == target:
                self.last = clock()
                self.on_done()

        return job

    def gated_job(
        self, wait: Callable[[], Awaitable[object]], all_started: Callable[[], object]
    ) -> Job:
        """W7: count the start, wait on the gate, then count the finish."""
        target = self.target
        clock = self.clock

        async def job(i: int) -> None:
            started = self.started = self.started + 1
            if started == target:
                all_started()
            await wait()
            count = self.count = self.count + 1
            if count == target:
                self.last = clock()
                self.on_done()

        return job
