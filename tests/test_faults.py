"""Fault injection: every fault of issue 5, on every event loop path.

Each test runs on every path of ``conftest.py`` (asyncio and Trio, each with
its native engine and with the portable AnyIO engine), in virtual time:

* jobs raising every kind of :exc:`Exception` users hit, and
  :exc:`BaseException` subclasses (``KeyboardInterrupt``/``SystemExit`` must
  propagate, not be swallowed; so must any other ``BaseException``, as from
  an AnyIO task group);
* asyncio only: a job whose coroutine raises ``CancelledError`` although
  nobody cancelled it (it awaited a future that someone else cancelled);
* a job that blocks the event loop for 200 ms;
* a job that closes its own scheduler, or cancels the scope around it;
* ``aclose()`` in the middle of a 100,000-job burst;
* the enclosing cancel scope cancelled while jobs are starting;
* scheduling from ``on_error``;
* threads: the supported way in (``anyio.from_thread.run_sync``, from
  worker threads and, with a token, from any thread), and direct calls from
  another thread, which must raise a clear ``RuntimeError`` and change
  nothing.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import math
import threading
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import pytest

from aioscheduler import (
    LifoQueuedScheduler,
    Manager,
    QueuedScheduler,
    SchedulerClosed,
    SchedulerError,
    Task,
    TaskCancelled,
    TaskLimitReached,
    TimedScheduler,
)
from tests._engines import portable, use_engine
from tests.conftest import backend_options, block_the_loop

BackendParam = tuple[str, dict[str, Any]]
AsyncFn = Callable[..., Coroutine[Any, Any, Any]]

CLASSES: dict[str, type[Any]] = {
    "timed": TimedScheduler,
    "queued": QueuedScheduler,
    "lifo": LifoQueuedScheduler,
}
KINDS = ["timed", "queued", "lifo", "manager-timed", "manager-queued"]


def make(kind: str, **options: Any) -> Any:
    """Return a scheduler (or a Manager of 3) of *kind*."""
    if kind.startswith("manager-"):
        return Manager(3, None, CLASSES[kind.removeprefix("manager-")], **options)
    return CLASSES[kind](**options)


def is_timed(kind: str) -> bool:
    return kind.endswith("timed")


def add(front: Any, kind: str, fn: AsyncFn, *args: Any, delay: float = 0) -> Task[Any]:
    """Schedule ``fn(*args)``: after *delay* on timed kinds, queued otherwise."""
    task: Task[Any]
    if is_timed(kind):
        task = front.start_after(delay, fn, *args)
    else:
        task = front.start_soon(fn, *args)
    return task


def add_coro(front: Any, kind: str, coro: Coroutine[Any, Any, Any]) -> Task[Any]:
    """Schedule a coroutine object (1.x form); timed ones a second from now."""
    task: Task[Any]
    if is_timed(kind):
        task = front.schedule(coro, datetime.now(UTC) + timedelta(seconds=1))
    else:
        task = front.schedule(coro)
    return task


def leaves(exc: BaseException) -> list[BaseException]:
    """Return the exceptions in *exc*, looking through (nested) groups."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


def state(task: Task[Any]) -> str:
    if not task.done():
        return "not done"
    if task.cancelled():
        return "cancelled"
    return "failed" if task.exception() is not None else "finished"


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


# -- exceptions raised by jobs ---------------------------------------------------


class TestDefaultLogging:
    async def test_an_exception_that_cannot_be_printed_is_logged(
        self, kind: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        exc = BrokenRepr()
        async with make(kind) as front:
            task = add(front, kind, raise_now, exc)
        assert task.exception() is exc
        (record,) = [r for r in caplog.records if r.name == "aioscheduler"]
        # Formatting the record must not fail (logging would print
        # "--- Logging error ---" instead of the line).
        assert "BrokenRepr object (repr() failed)" in record.getMessage()
        assert record.exc_info is not None
        assert record.exc_info[1] is exc


class BrokenRepr(Exception):
    """An exception that cannot even be printed."""

    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def _unicode_error() -> UnicodeDecodeError:
    try:
        b"\xff".decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc
    raise AssertionError("unreachable")  # pragma: no cover


EXCEPTIONS: list[Any] = [
    pytest.param(lambda: ValueError("bad value"), id="ValueError"),
    pytest.param(lambda: TypeError("bad type"), id="TypeError"),
    pytest.param(lambda: KeyError("key"), id="KeyError"),
    pytest.param(lambda: IndexError(3), id="IndexError"),
    pytest.param(lambda: AttributeError("attr"), id="AttributeError"),
    pytest.param(lambda: ZeroDivisionError("division by zero"), id="ZeroDivisionError"),
    pytest.param(lambda: OverflowError(), id="OverflowError"),
    pytest.param(lambda: AssertionError("assert"), id="AssertionError"),
    pytest.param(lambda: RuntimeError("runtime"), id="RuntimeError"),
    pytest.param(lambda: NotImplementedError(), id="NotImplementedError"),
    pytest.param(lambda: RecursionError("deep"), id="RecursionError"),
    pytest.param(lambda: MemoryError(), id="MemoryError"),
    pytest.param(lambda: OSError(5, "I/O error"), id="OSError"),
    pytest.param(lambda: ConnectionResetError(104, "reset"), id="ConnectionResetError"),
    pytest.param(lambda: FileNotFoundError(2, "missing", "f"), id="FileNotFoundError"),
    pytest.param(lambda: PermissionError(13, "denied"), id="PermissionError"),
    pytest.param(lambda: TimeoutError(), id="TimeoutError"),
    pytest.param(_unicode_error, id="UnicodeDecodeError"),
    pytest.param(lambda: StopAsyncIteration(), id="StopAsyncIteration"),
    pytest.param(lambda: DeprecationWarning("as an error"), id="Warning"),
    pytest.param(
        lambda: ExceptionGroup("several", [ValueError(1), KeyError(2)]),
        id="ExceptionGroup",
    ),
    pytest.param(lambda: anyio.BrokenResourceError(), id="BrokenResourceError"),
    pytest.param(lambda: anyio.EndOfStream(), id="EndOfStream"),
    pytest.param(lambda: TaskLimitReached("a job's own"), id="TaskLimitReached"),
    pytest.param(lambda: SchedulerClosed("a job's own"), id="SchedulerClosed"),
    pytest.param(lambda: TaskCancelled("a job's own"), id="TaskCancelled"),
    pytest.param(BrokenRepr, id="BrokenRepr"),
]


async def raise_now(exc: BaseException) -> None:
    raise exc


async def raise_later(exc: BaseException) -> None:
    await anyio.sleep(1)
    raise exc


async def returns(value: int) -> int:
    await anyio.sleep(0.5)
    return value


class TestJobExceptions:
    @pytest.mark.parametrize("factory", EXCEPTIONS)
    async def test_kept_on_the_task_and_the_scheduler_goes_on(
        self, kind: str, factory: Callable[[], Exception]
    ) -> None:
        reports: list[tuple[Task[Any], Exception]] = []
        raised = [factory() for _ in range(3)]

        def on_error(task: Task[Any], exc: Exception) -> None:
            reports.append((task, exc))

        async with make(kind, on_error=on_error) as front:
            good = [add(front, kind, returns, n) for n in range(3)]
            bad = [
                add(front, kind, raise_now, raised[0]),
                add(front, kind, raise_later, raised[1], delay=1),
                add_coro(front, kind, raise_later(raised[2])),
            ]
            good += [add(front, kind, returns, n, delay=2) for n in range(3, 6)]
        assert [task.result() for task in good] == list(range(6))
        for task, exc in zip(bad, raised, strict=True):
            assert state(task) == "failed"
            assert task.exception() is exc
            with pytest.raises(type(exc)) as info:
                task.result()
            assert info.value is exc
        # on_error: once per failure, with the task and its exception.
        assert len(reports) == 3
        assert {(id(t), id(e)) for t, e in reports} == {
            (id(t), id(e)) for t, e in zip(bad, raised, strict=True)
        }

    async def test_stop_iteration_becomes_runtime_error(self, kind: str) -> None:
        async def stops() -> None:
            raise StopIteration

        async with make(kind, on_error=lambda task, exc: None) as front:
            task = add(front, kind, stops)
            after = add(front, kind, returns, 7)
        exc = task.exception()
        # PEP 479: a coroutine cannot raise StopIteration.
        assert isinstance(exc, RuntimeError)
        assert isinstance(exc.__cause__, StopIteration)
        assert after.result() == 7

    async def test_awaiting_a_cancelled_task_fails_with_task_cancelled(
        self, kind: str
    ) -> None:
        """TaskCancelled is not the loop's cancellation: the waiter *fails*."""
        errors: list[Exception] = []

        async def waits_for(task: Task[Any]) -> None:
            await task.wait()

        async with make(kind, on_error=lambda task, exc: errors.append(exc)) as front:
            target = add(front, kind, returns, 1, delay=10)
            waiter = add(front, kind, waits_for, target)
            if not is_timed(kind):
                # Queued: the target runs first, so cancel it while it runs.
                await anyio.sleep(0.1)
            assert target.cancel() is True
        assert target.cancelled()
        assert state(waiter) == "failed"
        assert isinstance(waiter.exception(), TaskCancelled)
        assert errors == [waiter.exception()]

    async def test_default_logging_of_odd_exceptions(
        self, kind: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        group = ExceptionGroup("several", [ValueError(1), KeyError(2)])
        async with make(kind) as front:
            task = add(front, kind, raise_now, group)
            after = add(front, kind, returns, 3)
        assert task.exception() is group
        assert after.result() == 3
        records = [r for r in caplog.records if r.name == "aioscheduler"]
        assert len(records) == 1
        assert records[0].exc_info is not None
        assert records[0].exc_info[1] is group


class Abort(BaseException):
    """A BaseException of the user's own (not KeyboardInterrupt/SystemExit)."""


async def busy(n: int) -> int:
    await anyio.sleep(n % 5)
    return n


class TestBaseExceptionsPropagate:
    """A job raising a BaseException stops everything and propagates.

    ``KeyboardInterrupt`` and ``SystemExit`` by contract; any other
    BaseException as it would from a task in an AnyIO task group. It must
    never be swallowed: the other jobs must not carry on as if nothing
    happened.
    """

    @pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit, Abort])
    def test_under_load(
        self,
        anyio_backend: BackendParam,
        kind: str,
        exc_type: type[BaseException],
    ) -> None:
        name, options = anyio_backend
        exc = exc_type()
        fatal_task: list[Task[Any]] = []
        busy_tasks: list[Task[Any]] = []
        late_tasks: list[Task[Any]] = []
        late_starts: list[int] = []

        async def fatal() -> None:
            await anyio.sleep(2)
            raise exc

        async def late(n: int) -> None:
            late_starts.append(n)

        def schedule(front: Any, what: str) -> None:
            if what == "fatal":
                fatal_task.append(add(front, kind, fatal, delay=1))
            elif what == "busy":
                busy_tasks.extend(
                    add(front, kind, busy, n, delay=n % 3) for n in range(40)
                )
            else:
                late_tasks.extend(
                    add(front, kind, late, n, delay=50) for n in range(40)
                )

        async def main() -> None:
            async with make(kind) as front:
                # Queued kinds: the fatal job runs first, the late ones last.
                order = ["fatal", "busy", "late"]
                for what in reversed(order) if kind == "lifo" else order:
                    schedule(front, what)

        with pytest.raises(BaseException) as info:  # noqa: PT011
            anyio.run(main, backend=name, backend_options=options)
        # Finalize what the aborted loop left (asyncio logs job tasks that
        # ended with the exception) here, not in the middle of the report.
        gc.collect()
        assert leaves(info.value) == [exc]
        assert fatal_task[0].exception() is exc
        # Nothing was left behind, and the jobs due after it never ran.
        assert [t for t in busy_tasks + late_tasks if not t.done()] == []
        assert late_starts == []
        assert [state(t) for t in late_tasks] == ["cancelled"] * 40


class TestStrayCancelledError:
    """asyncio only: a job's coroutine raises CancelledError nobody asked for.

    That happens when a job awaits a future or task that something else
    cancelled. The job ends cancelled, as an asyncio task would, but it must
    not take the scheduler down: every other job still runs.
    """

    @pytest.mark.parametrize("engine", ["native", "anyio"])
    @pytest.mark.parametrize("how", ["awaits-cancelled-future", "raises"])
    def test_other_jobs_still_run(
        self, monkeypatch: pytest.MonkeyPatch, kind: str, engine: str, how: str
    ) -> None:
        use_engine(monkeypatch, engine)
        tasks: list[Task[Any]] = []

        async def victim() -> None:
            if how == "raises":
                raise asyncio.CancelledError("not from a cancel")
            future = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_soon(future.cancel)
            await future

        async def main() -> None:
            async with make(kind, on_error=lambda task, exc: None) as front:
                tasks.append(add(front, kind, victim))
                tasks.extend(add(front, kind, returns, n, delay=1) for n in range(5))

        anyio.run(main, backend="asyncio", backend_options=backend_options("asyncio"))
        assert tasks[0].done()
        assert [state(t) for t in tasks[1:]] == ["finished"] * 5
        assert [t.result() for t in tasks[1:]] == list(range(5))


# -- a job that blocks the event loop ------------------------------------------------


class TestBlockingJob:
    """A job blocks the loop for 200 ms: the jobs due meanwhile run right
    after it, none early, none lost, the later ones on time.

    Virtual time: the blocking job moves the clock on 200 ms without
    yielding (:func:`block_the_loop`), which is all a blocked loop looks
    like to everything else. So every expectation is exact, on any machine.
    """

    BLOCK = 0.2

    @pytest.mark.parametrize("front_kind", ["timed", "manager-timed", "queued"])
    async def test_later_jobs_late_in_order_none_lost(
        self, backend_name: str, front_kind: str
    ) -> None:
        native = not portable()  # see conftest.py
        starts: list[tuple[float, int]] = []
        block: list[float] = []
        deadlines: dict[int, float] = {}

        async def blocker() -> None:
            block.append(anyio.current_time())
            block_the_loop(self.BLOCK)  # the fault under test
            block.append(anyio.current_time())

        async def job(n: int) -> None:
            starts.append((anyio.current_time(), n))
            await anyio.lowlevel.checkpoint()

        async with make(front_kind) as front:
            t0 = anyio.current_time()
            if is_timed(front_kind):
                front.start_after(0.05, blocker)  # blocks from t0+0.05 to t0+0.25
                for n in range(30):
                    # t0+0.055 .. t0+0.345, never on the block's edges:
                    # jobs 0-19 fall due during the block, 20-29 after it.
                    delay = 0.055 + n * 0.01
                    deadlines[n] = t0 + delay
                    front.start_after(delay, job, n)
            else:
                front.start_soon(blocker)
                for n in range(30):
                    front.start_soon(job, n)

        begin, end = block
        # Virtual time is exact, but for the asyncio engines' timer slack: a
        # timer fires up to a few microsecond ticks late, never early (see
        # TICK in test_timed.py).
        tick = 5e-6
        assert end - begin == pytest.approx(self.BLOCK, abs=1e-9)
        order = [n for _, n in starts]
        assert sorted(order) == list(range(30)), "a job was lost or ran twice"
        if not is_timed(front_kind):
            assert t0 <= begin <= t0 + tick
            # One at a time, first in first out, the first right after the
            # block: the clock stands still while none of them waits.
            assert order == list(range(30))
            assert [at for at, _ in starts] == [end] * 30
            return
        assert t0 + 0.05 <= begin <= t0 + 0.05 + tick
        late = [n for n in range(30) if deadlines[n] < end]
        assert late == list(range(20))
        for at, n in starts:
            assert at >= deadlines[n], f"job {n} ran early"
            if n in late:
                # Right after the block: no sooner (the loop was blocked),
                # no later (nothing else was in the way).
                assert at == end, f"job {n} due during the block ran at {at - t0}"
            else:
                assert at <= deadlines[n] + tick, f"job {n} ran late: {at - t0}"
        # Those due during the block start first, together; the rest follow
        # one by one, each at its own time (so in deadline order on every
        # path).
        assert set(order[:20]) == set(late)
        assert order[20:] == list(range(20, 30))
        if backend_name == "asyncio" and native and front_kind == "timed":
            # The native asyncio engine creates the due jobs' tasks in
            # deadline order, and asyncio starts tasks in creation order.
            # (Trio starts tasks woken together in a random order.)
            assert order == list(range(30))


# -- a job that closes its own scheduler ---------------------------------------------


class TestJobClosesItsScheduler:
    @pytest.mark.parametrize("how", ["aclose", "cancel-scope"])
    async def test_everything_ends_nothing_runs_after(
        self, kind: str, how: str
    ) -> None:
        ran: list[int] = []
        after_close: list[int] = []
        closed = False
        coros: list[Coroutine[Any, Any, Any]] = []

        async def work(n: int) -> None:
            if closed:
                after_close.append(n)
            ran.append(n)
            await anyio.sleep(3)

        with anyio.CancelScope() as scope:
            async with make(kind) as front:

                async def closer() -> None:
                    nonlocal closed
                    await anyio.sleep(1)
                    closed = True
                    if how == "aclose":
                        await front.aclose()
                    else:
                        scope.cancel()
                        await anyio.sleep_forever()

                # Queued kinds: the closer is the one that runs first.
                if kind != "lifo":
                    closing = add(front, kind, closer, delay=0.5)
                tasks = [add(front, kind, work, n, delay=n % 4) for n in range(60)]
                for n in range(60, 80):
                    coro = work(n)
                    coros.append(coro)
                    tasks.append(add_coro(front, kind, coro))
                tasks += [add(front, kind, work, n, delay=10) for n in range(80, 100)]
                if kind == "lifo":
                    closing = add(front, kind, closer)
        assert scope.cancelled_caught is (how == "cancel-scope")
        assert closing.cancelled()
        assert after_close == []
        # Each job sleeps past the close: all were pending or running then.
        assert [state(t) for t in tasks] == ["cancelled"] * 100
        # Coroutines that never ran were closed: no "never awaited" warning.
        for coro, task in zip(coros, tasks[60:80], strict=True):
            assert task.cancelled()
            assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED
        with pytest.raises(SchedulerClosed):
            add(front, kind, work, 0)


# -- cancellation and AnyIO shields --------------------------------------------------


class TestShieldedSections:
    """Cancelling a job never breaks into its AnyIO shielded sections.

    On every path: the native asyncio engine cancels with ``task.cancel()``,
    which AnyIO shields do not stop, so it must wait for the shield to end.
    A second cancel (or ``aclose()`` after a cancel) must not land in the
    job's shielded cleanup either.
    """

    @pytest.mark.parametrize("how", ["cancel", "cancel-twice", "aclose"])
    async def test_cancel_waits_for_the_shield(self, kind: str, how: str) -> None:
        log: list[str] = []
        inside = anyio.Event()

        async def guarded() -> None:
            with anyio.CancelScope(shield=True):
                inside.set()
                await anyio.sleep(5)
                log.append("shield done")
            await anyio.sleep(10)
            log.append("ran on")

        async with make(kind) as front:
            task = add(front, kind, guarded)
            other = add(front, kind, returns, 1)
            await inside.wait()
            begin = anyio.current_time()
            if how == "aclose":
                await front.aclose()
            else:
                assert task.cancel() is True
                if how == "cancel-twice":
                    await anyio.sleep(1)
                    assert task.cancel() is True
                with pytest.raises(TaskCancelled):
                    await task.wait()
            elapsed = anyio.current_time() - begin
        assert log == ["shield done"]
        assert task.cancelled()
        # It ended as soon as the shield did (the asyncio engine looks again
        # each time the shielded job wakes up), not after the sleep after it.
        assert elapsed == pytest.approx(5)
        # Cancelling one job leaves the others alone; aclose() ends them all.
        assert state(other) in (
            {"finished", "cancelled"} if how == "aclose" else {"finished"}
        )

    @pytest.mark.parametrize("how", ["cancel-twice", "cancel-then-aclose"])
    async def test_shielded_cleanup_runs_to_the_end(self, kind: str, how: str) -> None:
        log: list[str] = []
        started = anyio.Event()

        async def cleans_up() -> None:
            started.set()
            try:
                await anyio.sleep_forever()
            finally:
                with anyio.CancelScope(shield=True):
                    await anyio.sleep(1)
                    log.append("half")
                    await anyio.sleep(1)
                    log.append("cleaned up")

        async with make(kind) as front:
            task = add(front, kind, cleans_up)
            await started.wait()
            assert task.cancel() is True
            await anyio.sleep(0.5)  # now in the shielded cleanup
            if how == "cancel-twice":
                assert task.cancel() is True
            else:
                await front.aclose()
        assert log == ["half", "cleaned up"]
        assert task.cancelled()


# -- aclose() in the middle of a 100k-job burst ---------------------------------------

BURST = 100_000


class TestAcloseMidBurst:
    @pytest.mark.timeout(120)
    @pytest.mark.parametrize("front_kind", ["timed", "queued", "manager-timed"])
    async def test_every_job_ran_once_or_was_cancelled(self, front_kind: str) -> None:
        starts = bytearray(BURST)
        finished = 0
        closing_at: list[int] = []
        enough = anyio.Event()

        async def job(n: int) -> int:
            nonlocal finished
            starts[n] += 1
            if closing_at:
                closing_at.append(n)  # started after aclose() was called
            if n == BURST // 10 + 1:
                enough.set()
            await anyio.lowlevel.checkpoint()
            finished += 1
            return n

        coros: list[Coroutine[Any, Any, Any]] = []
        front = make(front_kind)
        async with anyio.create_task_group() as group:
            await group.start(front.run)
            tasks: list[Task[Any]] = []
            for n in range(BURST):
                if n % 10 == 0:
                    coro = job(n)
                    coros.append(coro)
                    if is_timed(front_kind):
                        when = datetime.now(UTC) + timedelta(seconds=1)
                        tasks.append(front.schedule(coro, when))
                    else:
                        tasks.append(front.schedule(coro))
                else:
                    tasks.append(add(front, front_kind, job, n, delay=1))
            await enough.wait()
            closing_at.append(-1)
            await front.aclose()
        assert max(starts) == 1  # none ran twice
        ran = sum(starts)
        assert BURST // 20 < ran < BURST  # really in the middle
        states = [state(t) for t in tasks]
        assert states.count("finished") == finished
        assert states.count("cancelled") == BURST - finished
        assert states.count("finished") + states.count("cancelled") == BURST
        for n, task in enumerate(tasks):
            if not starts[n]:
                assert task.cancelled(), n
        # A job may begin only if it was already dispatched when aclose()
        # was called; it then ends cancelled at its first await.
        for n in closing_at[1:]:
            assert tasks[n].cancelled()
        for coro, task in zip(coros, tasks[::10], strict=True):
            if task.cancelled():
                assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED


# -- the enclosing scope cancelled while jobs start ----------------------------------


class TestEnclosingScopeCancelledWhileJobsStart:
    """Thousands of jobs due at one instant; the scope around them is cancelled.

    Jobs not yet dispatched never run. A job already dispatched may begin
    (a task started in a cancelled scope runs until its first await, on
    AnyIO and Trio alike) and then ends cancelled; none completes after the
    cancellation. Every task ends; nothing is left pending.
    """

    @pytest.mark.parametrize("trigger", ["by-a-job", "deadline"])
    @pytest.mark.parametrize("front_kind", ["timed", "queued", "manager-timed"])
    async def test_all_end_none_completes_after(
        self, front_kind: str, trigger: str
    ) -> None:
        count = 2000
        starts = [0] * count
        completed_after: list[int] = []

        async def job(n: int) -> None:
            starts[n] += 1
            if n == 300 and trigger == "by-a-job":
                scope.cancel()
            # Queued: 2000 jobs take 2 s, so the deadline falls among them.
            await anyio.sleep(0 if is_timed(front_kind) else 0.001)
            if scope.cancel_called:
                completed_after.append(n)

        # "deadline": the scope expires at the very instant the jobs are due.
        deadline = anyio.current_time() + 1 if trigger == "deadline" else math.inf
        with anyio.CancelScope(deadline=deadline) as scope:
            async with make(front_kind) as front:
                tasks = [add(front, front_kind, job, n, delay=1) for n in range(count)]
                await anyio.sleep(5)
        assert scope.cancelled_caught
        assert max(starts) <= 1
        assert completed_after == []
        states = [state(t) for t in tasks]
        assert states.count("not done") == 0
        for n, task in enumerate(tasks):
            if not starts[n]:
                assert task.cancelled()
        ran = sum(starts)
        assert ran < count
        assert states.count("finished") + states.count("cancelled") == count
        if trigger == "by-a-job":
            # Job 300 ran (it cancelled the scope). Jobs that other schedulers
            # of a Manager had handed to the loop may or may not take a first
            # step: the first scheduler to stop closes the others at once.
            assert starts[300] == 1
            assert ran >= 256 if front_kind == "manager-timed" else ran > 300
            assert tasks[300].cancelled()


# -- scheduling from on_error ------------------------------------------------------


class TestSchedulingFromOnError:
    async def test_retries_run_and_the_exit_waits_for_them(self, kind: str) -> None:
        attempts: dict[int, int] = {}
        retried: list[Task[Any]] = []

        async def flaky(n: int) -> int:
            attempts[n] = attempts.get(n, 0) + 1
            await anyio.sleep(0.5)
            if attempts[n] < 3:
                raise ConnectionError(n)
            return n

        def retry(task: Task[Any], exc: Exception) -> None:
            (n,) = exc.args
            retried.append(add(front, kind, flaky, n, delay=1))

        front = make(kind, on_error=retry)
        async with front:
            first = [add(front, kind, flaky, n) for n in range(10)]
        assert attempts == dict.fromkeys(range(10), 3)
        assert all(state(t) == "failed" for t in first)
        assert len(retried) == 20
        assert sorted(t.result() for t in retried if state(t) == "finished") == list(
            range(10)
        )

    async def test_dead_letter_queue_on_another_scheduler(self, kind: str) -> None:
        dead: list[tuple[int, str]] = []

        async def record(n: int, what: str) -> None:
            dead.append((n, what))

        async with QueuedScheduler() as letters:

            def to_letters(task: Task[Any], exc: Exception) -> None:
                letters.start_soon(record, exc.args[0], type(exc).__name__)

            async with make(kind, on_error=to_letters) as front:
                for n in range(20):
                    add(front, kind, raise_later, ValueError(n), delay=n % 3)
        assert sorted(dead) == [(n, "ValueError") for n in range(20)]

    async def test_scheduling_onto_a_closed_scheduler_is_logged(
        self, kind: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        closed = make(kind)
        await closed.aclose()
        refused: list[BaseException] = []

        def on_error(task: Task[Any], exc: Exception) -> None:
            try:
                add(closed, kind, returns, 1)
            except SchedulerClosed as refusal:
                refused.append(refusal)
                raise

        async with make(kind, on_error=on_error) as front:
            bad = add(front, kind, raise_now, ValueError("x"))
            good = add(front, kind, returns, 2, delay=1)
        assert len(refused) == 1
        assert isinstance(bad.exception(), ValueError)
        assert good.result() == 2
        messages = [r for r in caplog.records if r.name == "aioscheduler"]
        assert len(messages) == 1
        assert messages[0].exc_info is not None
        assert messages[0].exc_info[1] is refused[0]

    async def test_failing_while_cancelled_at_shutdown(self, kind: str) -> None:
        """A job whose cleanup raises while aclose() cancels it: on_error may
        schedule, and must be refused (closed); nothing is left pending."""
        outcomes: list[str] = []
        extra: list[Task[Any]] = []

        async def stubborn() -> None:
            try:
                await anyio.sleep_forever()
            finally:
                raise ValueError("cleanup failed")

        def on_error(task: Task[Any], exc: Exception) -> None:
            try:
                extra.append(add(front, kind, returns, 9))
                outcomes.append("accepted")
            except SchedulerClosed:
                outcomes.append("refused")

        front = make(kind, on_error=on_error)
        async with anyio.create_task_group() as group:
            await group.start(front.run)
            tasks = [add(front, kind, stubborn) for _ in range(3)]
            await anyio.sleep(1)
            await front.aclose()
        failed = [t for t in tasks if state(t) == "failed"]
        assert failed, [state(t) for t in tasks]
        assert all(isinstance(t.exception(), ValueError) for t in failed)
        assert outcomes == ["refused"] * len(failed)
        assert all(t.done() for t in tasks + extra)


# -- closing: no job accepted once closing has begun -----------------------------------


class TestNothingAcceptedWhileClosing:
    """Once ``aclose()`` has been called, scheduling raises SchedulerClosed.

    A job accepted in between (the call returned a Task) would then be
    cancelled without running: "stop taking jobs" must hold from the call.
    """

    async def test_schedule_right_after_aclose_begins(self, kind: str) -> None:
        accepted: list[Task[Any]] = []
        refused = 0
        # Trio runs the tasks woken together in one of two orders, picked at
        # random: over several rounds, some call lands before the scheduler
        # has seen its cancellation, as on asyncio every time.
        for _ in range(8):
            fronts = [make(kind) for _ in range(20)]
            began = [False] * len(fronts)

            async def closer(front: Any, began: list[bool], i: int) -> None:
                began[i] = True  # aclose() runs up to its first await with us
                await front.aclose()

            async with anyio.create_task_group() as group:
                for front in fronts:
                    await group.start(front.run)
                for i, front in enumerate(fronts):
                    group.start_soon(closer, front, began, i)
                for _ in range(5):
                    await anyio.lowlevel.checkpoint()
                    for i, front in enumerate(fronts):
                        if not began[i]:
                            continue
                        try:
                            accepted.append(add(front, kind, returns, i))
                        except SchedulerClosed:
                            refused += 1
            assert all(began)
        assert refused
        assert [state(t) for t in accepted] == [], "accepted after aclose() began"


# -- threads -------------------------------------------------------------------


async def record_thread(log: list[tuple[int, int]], n: int) -> int:
    log.append((threading.get_ident(), n))
    await anyio.lowlevel.checkpoint()
    return n


async def in_thread(fn: Callable[..., None], *args: Any) -> None:
    """Run ``fn(*args)`` in a thread of its own and wait for it busily.

    Never idle meanwhile, so a virtual clock stands still: no pending job
    comes due while the thread does its work.
    """
    thread = threading.Thread(target=fn, args=args)
    thread.start()
    while thread.is_alive():  # busy on purpose, see above
        await anyio.lowlevel.checkpoint()


def schedule_call(
    front: Any, kind: str, n: int, log: list[tuple[int, int]]
) -> Task[Any]:
    """What a thread hands to ``anyio.from_thread.run_sync``: one scheduling call."""
    return add(front, kind, record_thread, log, n, delay=n % 3)


class TestThreads:
    async def test_from_worker_threads(self, kind: str) -> None:
        log: list[tuple[int, int]] = []
        loop_thread = threading.get_ident()

        def worker(first: int) -> list[Task[Any]]:
            return [
                anyio.from_thread.run_sync(schedule_call, front, kind, n, log)
                for n in range(first, first + 100)
            ]

        async with make(kind) as front, anyio.create_task_group() as group:
            results: list[list[Task[Any]]] = []

            async def in_thread(first: int) -> None:
                results.append(await anyio.to_thread.run_sync(worker, first))

            for first in range(0, 400, 100):
                group.start_soon(in_thread, first)
        tasks = [task for batch in results for task in batch]
        assert len(tasks) == 400
        assert sorted(t.result() for t in tasks) == list(range(400))
        assert sorted(n for _, n in log) == list(range(400))
        assert {ident for ident, _ in log} == {loop_thread}

    async def test_from_foreign_threads_with_a_token(self, kind: str) -> None:
        log: list[tuple[int, int]] = []
        tasks: list[Task[Any]] = []
        errors: list[BaseException] = []
        token = anyio.lowlevel.current_token()
        loop_thread = threading.get_ident()

        def foreign(first: int) -> None:
            try:
                for n in range(first, first + 200):
                    task = anyio.from_thread.run_sync(
                        schedule_call, front, kind, n, log, token=token
                    )
                    tasks.append(task)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        async with make(kind) as front:
            threads = [
                threading.Thread(target=foreign, args=(first,))
                for first in range(0, 1600, 200)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                await anyio.to_thread.run_sync(thread.join)
        assert errors == []
        assert len(tasks) == 1600
        assert sorted(t.result() for t in tasks) == list(range(1600))
        assert sorted(n for _, n in log) == list(range(1600))
        assert {ident for ident, _ in log} == {loop_thread}

    @pytest.mark.parametrize("form", ["callable", "coroutine"])
    async def test_direct_call_from_another_thread_raises(
        self, kind: str, form: str
    ) -> None:
        log: list[tuple[int, int]] = []
        outcome: list[BaseException | Task[Any]] = []
        coro = record_thread(log, -1)

        def direct() -> None:
            try:
                if form == "callable":
                    outcome.append(schedule_call(front, kind, -1, log))
                else:
                    outcome.append(add_coro(front, kind, coro))
            except BaseException as exc:
                outcome.append(exc)

        async with make(kind) as front:
            before = add(front, kind, record_thread, log, 1)
            thread = threading.Thread(target=direct)
            thread.start()
            await anyio.to_thread.run_sync(thread.join)
            (error,) = outcome
            assert isinstance(error, RuntimeError)
            assert not isinstance(error, SchedulerError)
            assert "anyio.from_thread" in str(error)
            # Nothing was scheduled, nothing is corrupted: join() returns
            # once the one real job is done, and scheduling still works.
            with anyio.fail_after(10):
                await front.join()
            after = add(front, kind, record_thread, log, 2)
        assert before.result() == 1
        assert after.result() == 2
        assert sorted(n for _, n in log) == [1, 2]
        if form == "coroutine":
            assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED
        else:
            coro.close()

    async def test_call_from_a_thread_running_another_loop_raises(
        self, kind: str, backend_name: str
    ) -> None:
        log: list[tuple[int, int]] = []
        outcome: list[BaseException | Task[Any]] = []

        async def other_loop() -> None:
            try:
                outcome.append(schedule_call(front, kind, -1, log))
            except BaseException as exc:
                outcome.append(exc)

        def thread_main() -> None:
            anyio.run(other_loop, backend=backend_name)

        async with make(kind) as front:
            add(front, kind, record_thread, log, 1)  # binds it to our loop
            thread = threading.Thread(target=thread_main)
            thread.start()
            await anyio.to_thread.run_sync(thread.join)
            (error,) = outcome
            assert isinstance(error, RuntimeError)
            assert "event loop" in str(error)
            assert "anyio.from_thread" in str(error)
        assert sorted(n for _, n in log) == [1]

    @pytest.mark.parametrize("which", ["running", "pending"])
    @pytest.mark.parametrize("via", ["task", "scheduler"])
    async def test_direct_cancel_from_another_thread_raises(
        self, kind: str, via: str, which: str
    ) -> None:
        """Cancelling is as unsupported from another thread as scheduling is.

        It must raise a clear RuntimeError and leave the task as it was; the
        supported way (``anyio.from_thread.run_sync(task.cancel)``) works.
        """
        log: list[tuple[int, int]] = []
        outcome: list[BaseException | bool] = []
        token = anyio.lowlevel.current_token()
        blockers = 3 if kind == "manager-queued" else 1  # one per queue
        started = anyio.Event()
        running_count = 0

        async def blocker() -> None:
            nonlocal running_count
            running_count += 1
            if running_count == blockers:
                started.set()
            await anyio.sleep_forever()

        def direct(task: Task[Any]) -> None:
            try:
                if via == "task":
                    outcome.append(task.cancel())
                else:
                    outcome.append(front.cancel(task))
            except BaseException as exc:
                outcome.append(exc)

        def supported(task: Task[Any]) -> None:
            outcome.append(anyio.from_thread.run_sync(task.cancel, token=token))

        async with make(kind) as front:
            running = [add(front, kind, blocker) for _ in range(blockers)]
            await started.wait()
            if which == "running":
                task = running[0]
            else:  # behind the blockers (queued), or due in an hour (timed)
                task = add(front, kind, record_thread, log, 1, delay=3600)
            await in_thread(direct, task)
            (error,) = outcome
            assert isinstance(error, RuntimeError), error
            assert "anyio.from_thread" in str(error)
            assert not task.done()
            await in_thread(supported, task)
            assert outcome[1:] == [True]
            with anyio.fail_after(10), pytest.raises(TaskCancelled):
                await task.wait()
            for blocking in running:
                blocking.cancel()
        assert log == []
