"""The demo behind ``python -m aioscheduler``: timed, recurring, queued and
managed jobs.

It prints each job as it runs, with how late it started against its due
time, then a summary line per scheduler kind.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
from datetime import UTC, datetime, timedelta

import anyio

from ._manager import Manager
from ._queued import LifoQueuedScheduler, QueuedScheduler
from ._timed import TimedScheduler
from ._triggers import Cron, Every


async def _demo() -> None:
    lateness: list[float] = []

    async def timed_job(name: str, due: float) -> None:
        late = anyio.current_time() - due
        lateness.append(late)
        print(f"  {name:<28} started {late * 1000:6.2f} ms after its due time")

    print("TimedScheduler: five jobs at their own times, scheduled out of order")
    async with TimedScheduler() as timed:
        now = anyio.current_time()
        for delay in (0.4, 0.1, 0.3, 0.2):
            timed.start_after(delay, timed_job, f"start_after({delay})", now + delay)
        at = datetime.now(UTC) + timedelta(seconds=0.25)
        timed.start_at(at, timed_job, "start_at(now + 0.25 s)", now + 0.25)
    print(f"  -> 5 ran, worst lateness {max(lateness) * 1000:.2f} ms\n")

    fires: list[float] = []
    cron_starts: list[datetime] = []

    async def tick(begin: float) -> None:
        fires.append(anyio.current_time() - begin)

    async def on_the_second() -> None:
        cron_starts.append(recurring.now())

    print("Recurring: Every(0.1 s) four times, and a per-second Cron once")
    async with TimedScheduler() as recurring:
        begin = anyio.current_time()
        every = recurring.add_schedule(Every(0.1), tick, begin, max_runs=4)
        cron = recurring.add_schedule(Cron("* * * * * *"), on_the_second, max_runs=1)
        print(f"  {cron!r}")
    gaps = [round((b - a) * 1000) for a, b in itertools.pairwise(fires)]
    fired = cron.last_task.when if cron.last_task is not None else None
    late = (cron_starts[0] - fired).total_seconds() * 1000 if fired else float("nan")
    print(f"  Every ran {every.runs} times, {gaps} ms apart")
    print(f"  the Cron ran at {fired:%H:%M:%S}, {late:.2f} ms after the second began\n")

    order: list[int] = []

    async def queued_job(n: int) -> None:
        await anyio.sleep(0.01)
        order.append(n)

    print("QueuedScheduler and LifoQueuedScheduler: one job at a time, in order")
    for kind in (QueuedScheduler, LifoQueuedScheduler):
        order.clear()
        async with kind() as queued:
            for n in range(6):
                queued.start_soon(queued_job, n)
        print(f"  {kind.__name__:<20} ran jobs in order {order}")
    print()

    running = 0
    peak = 0

    async def managed_job() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await anyio.sleep(0.05)
        running -= 1

    print("Manager(4, cls=QueuedScheduler): 40 jobs over 4 queues")
    start = anyio.current_time()
    async with Manager(4, cls=QueuedScheduler) as manager:
        tasks = [manager.start_soon(managed_job) for _ in range(40)]
    elapsed = anyio.current_time() - start
    done = sum(task.done() and task.exception() is None for task in tasks)
    print(
        f"  -> {done}/40 finished in {elapsed:.2f} s, at most {peak} at once "
        "(one per scheduler)"
    )


def main(argv: list[str]) -> int:
    """Parse *argv* and run the demo; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m aioscheduler",
        description="Show aioscheduler's timed, recurring, queued and managed jobs.",
    )
    parser.add_argument(
        "--backend",
        choices=["asyncio", "trio"],
        default="asyncio",
        help="event loop to run on (default: asyncio)",
    )
    options = parser.parse_args(argv)
    if options.backend == "trio" and importlib.util.find_spec("trio") is None:
        # Until 2.0 is on PyPI, the extra comes from the source checkout.
        parser.error(
            "Trio is not installed: python3 -m pip install '.[trio]'"
            " (from an aioscheduler checkout)"
        )
    print(f"aioscheduler demo on {options.backend}\n")
    anyio.run(_demo, backend=options.backend)
    return 0
