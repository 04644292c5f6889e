"""Trio is optional: aioscheduler works on asyncio without importing it.

Run by the ``tests_no_trio`` nox session, where trio is not installed; it
passes just as well where trio is installed. The checks run in a fresh
interpreter, so that other tests having imported trio cannot hide an import,
and once more with trio made unimportable, to prove nothing needs it.
These are plain synchronous tests on asyncio, not anyio-parametrized. They
run as ``asyncio.run`` does (``asyncio.Runner``) on a virtual-time loop
(``looptime``, which needs no trio), so a datetime job can be due an hour
ahead, beyond reach of any pause of the machine, and still run at once.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import looptime
import pytest

from aioscheduler import Manager, QueuedScheduler, TimedScheduler
from tests._engines import child_env

ROOT = Path(__file__).resolve().parent.parent

PROGRAM = textwrap.dedent(
    """
    import sys

    if sys.argv[1] == "block":
        class NoTrio:
            def find_spec(self, name, path=None, target=None):
                if name == "trio" or name.startswith("trio."):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None

        sys.meta_path.insert(0, NoTrio())

    import asyncio
    from datetime import UTC, datetime, timedelta

    import looptime

    from aioscheduler import Manager, QueuedScheduler, TimedScheduler

    async def main():
        done = []

        async def work(n):
            await asyncio.sleep(0)
            done.append(n)
            return n

        async with TimedScheduler() as timed:
            timed.start_after(0.01, work, 1)
            timed.schedule(work(2), datetime.now(UTC) + timedelta(hours=1))
        async with QueuedScheduler() as queued:
            queued.start_soon(work, 3)
            queued.schedule(work(4))
        facade = TimedScheduler()
        facade.start()
        assert await facade.start_after(0.01, work, 5).wait() == 5
        await facade.aclose()
        manager = Manager(2, cls=QueuedScheduler)
        manager.start()
        assert await manager.start_soon(work, 6).wait() == 6
        await manager.aclose()
        return sorted(done)

    with asyncio.Runner(loop_factory=looptime.new_event_loop) as runner:
        assert runner.run(main()) == [1, 2, 3, 4, 5, 6]
    assert "trio" not in sys.modules, "aioscheduler imported trio"
    print("ok")
    """
)


@pytest.mark.parametrize("engine", ["native", "anyio"])
@pytest.mark.parametrize("trio", ["as-installed", "block"])
def test_fresh_interpreter_runs_jobs_without_importing_trio(
    engine: str, trio: str
) -> None:
    env = child_env(engine)
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", PROGRAM, trio],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_running_jobs_does_not_import_trio() -> None:
    had_trio = "trio" in sys.modules
    done: list[int] = []

    async def work(n: int) -> None:
        await asyncio.sleep(0)
        done.append(n)

    async def main() -> None:
        async with TimedScheduler() as timed:
            timed.start_after(0.001, work, 1)
            timed.schedule(work(2), datetime.now(UTC) + timedelta(hours=1))
        async with QueuedScheduler() as queued:
            queued.start_soon(work, 3)
            queued.schedule(work(4))
        manager = Manager(2, cls=QueuedScheduler)
        manager.start()
        await manager.start_soon(work, 5).wait()
        await manager.aclose()

    with asyncio.Runner(loop_factory=looptime.new_event_loop) as runner:
        runner.run(main())
    assert sorted(done) == [1, 2, 3, 4, 5]
    # Nothing above imported trio (if it was imported, another test did it).
    assert ("trio" in sys.modules) == had_trio
