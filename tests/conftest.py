"""Every behaviour test runs on every event loop path, in virtual time.

Paths: ``asyncio`` and ``trio`` (each loop's native engine), and
``asyncio+anyio`` and ``trio+anyio`` (the portable AnyIO engine on each).
Time is virtual on all of them: Trio's
``MockClock(autojump_threshold=0)`` and, on asyncio, a ``looptime`` loop;
both jump the clock forward whenever every task is waiting, so a job an
hour ahead runs in microseconds and lateness is measured exactly.
:func:`block_the_loop` stands in for a job that hogs the loop.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests._engines import use_engine
from tests._postgres import HOW_TO_GET, Cluster, find_bin_dir, start_cluster

HAVE_TRIO = importlib.util.find_spec("trio") is not None
HAVE_LOOPTIME = importlib.util.find_spec("looptime") is not None

PATHS = [
    pytest.param(("asyncio", "native"), id="asyncio"),
    pytest.param(("asyncio", "anyio"), id="asyncio+anyio"),
]
if HAVE_TRIO:
    PATHS.append(pytest.param(("trio", "native"), id="trio"))
    PATHS.append(pytest.param(("trio", "anyio"), id="trio+anyio"))


_WALL_MINUS_MONOTONIC = time.time() - time.monotonic()


def steady_wall_clock() -> float:
    """A wall clock that never slews: the monotonic clock plus a constant.

    For tests that bracket a scheduler's wall-to-loop offset once and rely on
    it: the host's NTP slewing (up to 0.5 ms a second) would otherwise move
    the offset the scheduler reads again at each wake-up by up to a
    millisecond over a test, and such a test would depend on the machine.
    """
    return time.monotonic() + _WALL_MINUS_MONOTONIC


def _virtual_time_loop() -> asyncio.AbstractEventLoop:
    import looptime

    loop: asyncio.AbstractEventLoop = looptime.new_event_loop(start=1000.0)
    return loop


def backend_options(name: str) -> dict[str, Any]:
    """Return AnyIO backend options that give *name* a virtual clock."""
    if name == "trio":
        from trio.testing import MockClock

        return {"clock": MockClock(rate=0, autojump_threshold=0)}
    if HAVE_LOOPTIME:
        factory: Callable[[], asyncio.AbstractEventLoop] = _virtual_time_loop
        return {"loop_factory": factory}
    return {}


def block_the_loop(seconds: float) -> None:
    """Move the virtual clock *seconds* on without yielding to the loop.

    What a job blocking the event loop (``time.sleep(seconds)``) does to
    everything else, with no dependence on the machine's speed: the loop
    runs nothing meanwhile and then finds *seconds* gone. Call it from
    inside a task, on one of this module's virtual clocks.
    """
    if seconds < 0:
        raise ValueError(f"cannot block for {seconds} s")
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not asyncio: Trio
        import trio.lowlevel
        from trio.testing import MockClock

        clock = trio.lowlevel.current_clock()
        if not isinstance(clock, MockClock):
            raise RuntimeError("block_the_loop() needs Trio's MockClock") from None
        clock.jump(seconds)
        return
    import looptime

    if not isinstance(loop, looptime.LoopTimeEventLoop) or not loop.looptime_on:
        raise RuntimeError("block_the_loop() needs a looptime event loop")
    # setup_looptime(start=...) is how looptime's own pytest plugin sets the
    # clock of a loop that is already running; only forward is safe. The
    # other settings go back to looptime's defaults, which _virtual_time_loop
    # uses.
    loop.setup_looptime(start=loop.time() + seconds)


@pytest.fixture(params=PATHS)
def anyio_backend(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, dict[str, Any]]:
    name, engine = request.param
    use_engine(monkeypatch, engine)
    return name, backend_options(name)


@pytest.fixture
def backend_name(anyio_backend: tuple[str, dict[str, Any]]) -> str:
    """The event loop under test: ``"asyncio"`` or ``"trio"``."""
    return anyio_backend[0]


# -- PostgreSQL: a throwaway cluster for the session -----------------------------

#: Under CI=true the PostgreSQL tests must run: a skip fails the session.
_CI = os.environ.get("CI", "").lower() == "true"
_POSTGRES_FIXTURES = frozenset({"postgres_cluster", "postgres_dsn"})
_postgres_skipped: list[str] = []


def _no_postgres(reason: str) -> None:
    if _CI:
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    """A PostgreSQL server for this test session (see tests/_postgres.py)."""
    if importlib.util.find_spec("psycopg") is None:
        _no_postgres(
            "psycopg is not installed: pip install 'aioscheduler[postgres]' "
            "(or the test dependency group)"
        )
    bin_dir = find_bin_dir()
    if bin_dir is None:
        _no_postgres(HOW_TO_GET)
    assert bin_dir is not None
    cluster = start_cluster(bin_dir)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def postgres_dsn(postgres_cluster: Cluster) -> str:
    """The URL of the test database, as its (non-superuser) owner role."""
    return postgres_cluster.dsn()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and "postgres" in report.keywords:
        _postgres_skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _CI and _postgres_skipped and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _CI and _postgres_skipped:
        terminalreporter.write_line(
            f"FAILED: CI=true and {len(_postgres_skipped)} PostgreSQL test(s) "
            "were skipped; they must run in CI",
            red=True,
        )
