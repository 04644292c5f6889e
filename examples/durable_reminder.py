"""A reminder that survives a restart: a durable job and a durable schedule.

Run it twice on the same file::

    python examples/durable_reminder.py --db /tmp/reminder.db
    python examples/durable_reminder.py --db /tmp/reminder.db

The first run adds a reminder due in 3 seconds and a heartbeat every second,
serves for 1 second and exits before the reminder is due (or kill it: Ctrl-C
or ``kill -9`` leave the same file behind). The second run finds both in the
file: the heartbeat goes on from the last fire time it handled, the reminder
runs at its time, then the program removes the heartbeat and exits. A third
run starts over.
"""

from __future__ import annotations

import argparse
from datetime import timedelta

import anyio

from aioscheduler import Every, TimedScheduler, current_job, durable

KEY = "reminder-1"
reminded: anyio.Event | None = None  # set by the reminder, in this process


@durable("example.remind")
async def remind(text: str) -> None:
    job = current_job()
    late = job.lateness.total_seconds()
    print(f"reminder: {text} (key {job.key}, attempt {job.attempt}, {late:.1f} s late)")
    if reminded is not None:
        reminded.set()


@durable("example.heartbeat")
async def heartbeat() -> None:
    fire_time = current_job().scheduled.time().isoformat(timespec="milliseconds")
    print(f"heartbeat for {fire_time}")


async def main(db: str, delay: float, serve: float) -> None:
    global reminded
    reminded = anyio.Event()
    async with TimedScheduler(store=db) as scheduler:
        store = scheduler.store
        assert store is not None
        job = await store.get_job(KEY)
        if reminded.is_set() or (job is not None and job.state == "pending"):
            print(f"{KEY} is in {db}: waiting for it")
            await reminded.wait()
            await scheduler.remove_durable_schedule("heartbeat")
            print("done; the next run starts over")
            return
        await scheduler.durable_start_after(delay, remind, "stand up", key=KEY)
        await scheduler.add_durable_schedule(
            Every(timedelta(seconds=1)), heartbeat, id="heartbeat", on_conflict="keep"
        )
        print(f"added {KEY}, due in {delay:g} s, and a heartbeat; serving {serve:g} s")
        await anyio.sleep(serve)
        job = await store.get_job(KEY)
        state = "gone" if job is None else job.state
        print(f"exiting; {KEY} is {state}: run me again")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="the SQLite store's file")
    parser.add_argument("--delay", type=float, default=3.0, help="reminder in (s)")
    parser.add_argument("--serve", type=float, default=1.0, help="first run (s)")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    anyio.run(main, args.db, args.delay, args.serve, backend=args.backend)
