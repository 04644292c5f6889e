"""Bad input: a clear error at the call, nothing scheduled, nothing leaked.

Every row of the SPEC's bad-input table, for TimedScheduler,
QueuedScheduler, LifoQueuedScheduler and a Manager of each, on every event
loop path; then the calls made with no running event loop, and the
constructors' own errors.

"Nothing scheduled" is checked by the job never running and by ``join()``
returning at once (in virtual time a pending job an hour ahead would make it
wait an hour). "Nothing leaked" is checked by the rejected coroutine object
being closed (its state is ``CORO_CLOSED``), so that it can never warn
"coroutine ... was never awaited" (``filterwarnings = error`` would catch
that too).
"""

from __future__ import annotations

import functools
import gc
import inspect
import warnings
from collections.abc import Callable, Coroutine, Generator, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

import anyio
import pytest

from aioscheduler import (
    LifoQueuedScheduler,
    Manager,
    QueuedScheduler,
    SchedulerClosed,
    SchedulerError,
    TaskCancelled,
    TaskLimitReached,
    TimedScheduler,
)

# The 1.x sentence comes first; what follows says by how much, and how a
# naive datetime was read (tested in TestPastTimeMessage).
PAST_MESSAGE = r"^May only be in the future\. "

TIMED_FRONTS = ["timed", "manager-timed"]
QUEUED_FRONTS = ["queued", "lifo", "manager-queued", "manager-lifo"]
ALL_FRONTS = TIMED_FRONTS + QUEUED_FRONTS


def make_front(kind: str, **options: Any) -> Any:
    """A scheduler or a Manager of two, by name; *options* go to the constructor."""
    if kind == "timed":
        return TimedScheduler(**options)
    if kind == "queued":
        return QueuedScheduler(**options)
    if kind == "lifo":
        return LifoQueuedScheduler(**options)
    cls = {
        "manager-timed": TimedScheduler,
        "manager-queued": QueuedScheduler,
        "manager-lifo": LifoQueuedScheduler,
    }[kind]
    return Manager(2, cls=cls, **options)


def is_timed(kind: str) -> bool:
    return kind in TIMED_FRONTS


def soon() -> datetime:
    return datetime.now(UTC) + timedelta(hours=1)


class Spy:
    """Async jobs that note when they run."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    async def job(self, name: str = "job") -> str:
        self.ran.append(name)
        return name


def schedule_ok(front: Any, kind: str, spy: Spy, name: str) -> Any:
    """A valid scheduling call (callable form) on any front, due soon."""
    if is_timed(kind):
        return front.start_after(1, spy.job, name)
    return front.start_soon(spy.job, name)


def schedule_coro(front: Any, kind: str, coro: Coroutine[Any, Any, Any]) -> Any:
    """The 1.x coroutine form on any front, due soon."""
    if is_timed(kind):
        return front.schedule(coro, soon())
    return front.schedule(coro)


def callable_forms(kind: str) -> list[str]:
    return ["start_at", "start_after"] if is_timed(kind) else ["start_soon"]


def call_form(front: Any, form: str, async_fn: Any, *args: Any) -> Any:
    if form == "start_at":
        return front.start_at(soon(), async_fn, *args)
    if form == "start_after":
        return front.start_after(1, async_fn, *args)
    assert form == "start_soon"
    return front.start_soon(async_fn, *args)


def assert_closed(coro: Coroutine[Any, Any, Any]) -> None:
    """The library closed the rejected *coro*: it can never warn."""
    left_open = inspect.getcoroutinestate(coro) != inspect.CORO_CLOSED
    coro.close()  # so a failure here cannot warn later, in another test
    assert not left_open, "the rejected coroutine object was not closed"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)]


async def assert_nothing_scheduled(front: Any, spy: Spy) -> None:
    """``join()`` returns at once and no job has run."""
    t0 = anyio.current_time()
    with anyio.fail_after(1):
        await front.join()
    assert anyio.current_time() == t0
    assert spy.ran == []


@pytest.fixture(params=ALL_FRONTS)
def kind(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture(params=TIMED_FRONTS)
def timed_kind(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


class TestPastTime:
    """``when`` in the past -> ValueError("May only be in the future.")."""

    @pytest.mark.parametrize(
        "past",
        [
            pytest.param(lambda: datetime.now(UTC) - timedelta(seconds=1), id="aware"),
            pytest.param(
                lambda: (datetime.now(UTC) - timedelta(seconds=1)).replace(tzinfo=None),
                id="naive",
            ),
            pytest.param(lambda: datetime(2000, 1, 1), id="long-ago"),
        ],
    )
    async def test_start_at(
        self, timed_kind: str, past: Callable[[], datetime]
    ) -> None:
        spy = Spy()
        async with make_front(timed_kind) as front:
            with pytest.raises(ValueError, match=PAST_MESSAGE) as info:
                front.start_at(past(), spy.job)
            assert not isinstance(info.value, SchedulerError)
            await assert_nothing_scheduled(front, spy)
            # Still serving.
            assert await front.start_after(1, spy.job, "after").wait() == "after"

    async def test_schedule_closes_the_coroutine(self, timed_kind: str) -> None:
        spy = Spy()
        async with make_front(timed_kind) as front:
            coro = spy.job()
            with pytest.raises(ValueError, match=PAST_MESSAGE):
                front.schedule(coro, datetime.now(UTC) - timedelta(minutes=5))
            assert_closed(coro)
            await assert_nothing_scheduled(front, spy)

    async def test_before_start(self, timed_kind: str) -> None:
        spy = Spy()
        front = make_front(timed_kind)
        coro = spy.job()
        with pytest.raises(ValueError, match=PAST_MESSAGE):
            front.schedule(coro, datetime(1999, 12, 31, 23, 59))
        assert_closed(coro)
        with pytest.raises(ValueError, match=PAST_MESSAGE):
            front.start_at(datetime.now(UTC) - timedelta(seconds=1), spy.job)
        async with front:
            await assert_nothing_scheduled(front, spy)


class TestNegativeDelay:
    @pytest.mark.parametrize(
        "delay",
        [-1, -0.001, -3600.0, timedelta(seconds=-1), timedelta(microseconds=-1)],
    )
    async def test_start_after(self, timed_kind: str, delay: float | timedelta) -> None:
        spy = Spy()
        async with make_front(timed_kind) as front:
            with pytest.raises(ValueError, match="delay"):
                front.start_after(delay, spy.job)
            await assert_nothing_scheduled(front, spy)


class TestWrongTimeType:
    """``when`` not a datetime, ``delay`` not a number/timedelta -> TypeError."""

    BAD_WHEN: ClassVar[list[object]] = [
        date(2099, 1, 1),
        "2099-01-01T00:00:00",
        4_000_000_000.0,
        4_000_000_000,
        None,
        timedelta(hours=1),
    ]
    BAD_DELAY: ClassVar[list[object]] = [
        True,
        False,
        "5",
        None,
        [5],
        date(2099, 1, 1),
        datetime(2099, 1, 1),
    ]

    @pytest.mark.parametrize("when", BAD_WHEN)
    async def test_start_at(self, timed_kind: str, when: object) -> None:
        spy = Spy()
        async with make_front(timed_kind) as front:
            with pytest.raises(TypeError):
                front.start_at(when, spy.job)
            await assert_nothing_scheduled(front, spy)

    @pytest.mark.parametrize("when", BAD_WHEN)
    async def test_schedule(self, timed_kind: str, when: object) -> None:
        spy = Spy()
        async with make_front(timed_kind) as front:
            coro = spy.job()
            with pytest.raises(TypeError):
                front.schedule(coro, when)
            assert_closed(coro)
            await assert_nothing_scheduled(front, spy)

    @pytest.mark.parametrize("delay", BAD_DELAY)
    async def test_start_after(self, timed_kind: str, delay: object) -> None:
        spy = Spy()
        async with make_front(timed_kind) as front:
            with pytest.raises(TypeError):
                front.start_after(delay, spy.job)
            await assert_nothing_scheduled(front, spy)


class Awaitable:
    """Awaitable, but not a coroutine object."""

    def __await__(self) -> Generator[Any, None, None]:
        yield from ()


def generator() -> Iterator[int]:
    yield 1


def not_coroutines(spy: Spy) -> list[object]:
    return [
        spy.job,  # the function, not called
        lambda: None,
        None,
        42,
        "job",
        generator(),
        Awaitable(),
        functools.partial(spy.job, "x"),
    ]


class TestScheduleNotACoroutine:
    """``schedule()`` given something that is not a coroutine object -> TypeError."""

    @pytest.mark.parametrize("index", range(8))
    async def test_schedule(self, kind: str, index: int) -> None:
        spy = Spy()
        thing = not_coroutines(spy)[index]
        async with make_front(kind) as front:
            with pytest.raises(TypeError):
                schedule_coro(front, kind, thing)  # type: ignore[arg-type]
            await assert_nothing_scheduled(front, spy)


def sync_function(name: str = "x") -> None:
    raise AssertionError("a rejected function was called")


class SyncCallable:
    def __call__(self, name: str = "x") -> None:
        raise AssertionError("a rejected callable was called")


class SyncClass:
    def __init__(self, name: str = "x") -> None:
        raise AssertionError("a rejected class was called")


NOT_ASYNC: list[Any] = [
    sync_function,
    lambda name="x": None,
    print,
    len,
    SyncClass,
    SyncCallable(),
    functools.partial(sync_function, "y"),
    None,
    42,
]


class TestStartNotAnAsyncFunction:
    """``start_*`` given a callable that is not an async function -> TypeError."""

    @pytest.mark.parametrize(
        "fn",
        NOT_ASYNC,
        ids=[
            "sync-def",
            "lambda",
            "builtin-print",
            "builtin-len",
            "class",
            "sync-callable",
            "partial-of-sync",
            "none",
            "int",
        ],
    )
    async def test_start(self, kind: str, fn: Any) -> None:
        spy = Spy()
        async with make_front(kind) as front:
            for form in callable_forms(kind):
                with pytest.raises(TypeError):
                    call_form(front, form, fn)
            await assert_nothing_scheduled(front, spy)

    async def test_coroutine_object_instead_of_function(self, kind: str) -> None:
        """``start_soon(work())``: the rejected coroutine is closed, too."""
        spy = Spy()
        async with make_front(kind) as front:
            for form in callable_forms(kind):
                coro = spy.job()
                with pytest.raises(TypeError):
                    call_form(front, form, coro)
                assert_closed(coro)
            await assert_nothing_scheduled(front, spy)

    async def test_async_callables_are_accepted(self, kind: str) -> None:
        spy = Spy()

        class AsyncCallable:
            async def __call__(self, name: str) -> str:
                return await spy.job(name)

        async with make_front(kind) as front:
            for form in callable_forms(kind):
                call_form(front, form, functools.partial(spy.job, "partial"))
                call_form(front, form, AsyncCallable(), "instance")
                call_form(front, form, spy.job, "method")
        assert sorted(spy.ran) == sorted(
            ["partial", "instance", "method"] * len(callable_forms(kind))
        )


async def fill(front: Any, kind: str, spy: Spy, count: int) -> list[Any]:
    """Give *front* *count* jobs that stay pending or running (blocked)."""
    release = anyio.Event()

    async def blocker() -> None:
        await release.wait()

    if is_timed(kind):
        tasks = [front.start_after(100, spy.job, f"held{i}") for i in range(count)]
    else:
        tasks = [front.start_soon(blocker) for _ in range(count)]
    await anyio.sleep(1)
    return tasks


class TestTaskLimit:
    """``max_tasks`` pending+running reached -> TaskLimitReached."""

    async def test_every_form_refused(self, kind: str) -> None:
        spy = Spy()
        async with make_front(kind, max_tasks=3) as front:
            held = await fill(front, kind, spy, 3)
            for form in callable_forms(kind):
                with pytest.raises(TaskLimitReached) as info:
                    call_form(front, form, spy.job, "over")
                assert isinstance(info.value, ValueError)
                assert isinstance(info.value, SchedulerError)
            coro = spy.job("over")
            with pytest.raises(TaskLimitReached):
                schedule_coro(front, kind, coro)
            assert_closed(coro)
            # The refused calls took no slot: free one, exactly one more fits.
            assert held[0].cancel() is True
            with pytest.raises(TaskCancelled):
                await held[0].wait()  # a running job ends at its next step
            extra = schedule_ok(front, kind, spy, "extra")
            with pytest.raises(TaskLimitReached):
                schedule_ok(front, kind, spy, "over")
            for task in held[1:]:
                task.cancel()
            assert await extra.wait() == "extra"
        assert spy.ran == ["extra"]

    async def test_running_jobs_count(self, kind: str) -> None:
        spy = Spy()
        release = anyio.Event()

        async def busy() -> None:
            await release.wait()

        async with make_front(kind, max_tasks=1) as front:
            if is_timed(kind):
                front.start_after(0, busy)
            else:
                front.start_soon(busy)
            await anyio.sleep(1)  # busy is running now, nothing pending
            with pytest.raises(TaskLimitReached):
                schedule_ok(front, kind, spy, "over")
            release.set()
            await front.join()
            assert await schedule_ok(front, kind, spy, "fits").wait() == "fits"
        assert spy.ran == ["fits"]

    @pytest.mark.parametrize(
        "cls", [TimedScheduler, QueuedScheduler, LifoQueuedScheduler]
    )
    async def test_manager_limit_is_the_total(self, cls: type[Any]) -> None:
        spy = Spy()
        kind = "manager-timed" if cls is TimedScheduler else "manager-queued"
        async with Manager(3, max_tasks=4, cls=cls) as manager:
            held = await fill(manager, kind, spy, 4)
            with pytest.raises(TaskLimitReached):
                schedule_ok(manager, kind, spy, "over")
            for task in held:
                task.cancel()
        assert spy.ran == []


class TestClosed:
    """Scheduling after the scheduler was closed -> SchedulerClosed."""

    async def check_refuses(self, front: Any, kind: str, spy: Spy) -> None:
        for form in callable_forms(kind):
            with pytest.raises(SchedulerClosed) as info:
                call_form(front, form, spy.job, "late")
            assert isinstance(info.value, RuntimeError)
            assert isinstance(info.value, SchedulerError)
        coro = spy.job("late")
        with pytest.raises(SchedulerClosed):
            schedule_coro(front, kind, coro)
        assert_closed(coro)
        await assert_nothing_scheduled(front, spy)

    async def test_after_async_with(self, kind: str) -> None:
        spy = Spy()
        async with make_front(kind) as front:
            pass
        await self.check_refuses(front, kind, spy)

    async def test_after_aclose(self, kind: str) -> None:
        spy = Spy()
        async with make_front(kind) as front:
            await front.aclose()
            await self.check_refuses(front, kind, spy)
        await self.check_refuses(front, kind, spy)

    async def test_after_aclose_without_start(self, kind: str) -> None:
        spy = Spy()
        front = make_front(kind)
        await front.aclose()
        await self.check_refuses(front, kind, spy)

    async def test_after_run_cancelled(self, kind: str) -> None:
        spy = Spy()
        front = make_front(kind)
        async with anyio.create_task_group() as tg:
            await tg.start(front.run)
            tg.cancel_scope.cancel()
        await self.check_refuses(front, kind, spy)


class TestNoRunningEventLoop:
    """Scheduling with no running event loop -> RuntimeError saying so.

    Plain (sync) tests: no event loop runs in this thread.
    """

    @pytest.mark.parametrize("kind", ALL_FRONTS)
    def test_callable_forms(self, kind: str) -> None:
        spy = Spy()
        front = make_front(kind)
        for form in callable_forms(kind):
            with pytest.raises(RuntimeError, match="event loop") as info:
                call_form(front, form, spy.job)
            assert not isinstance(info.value, SchedulerError)

    @pytest.mark.parametrize("kind", ALL_FRONTS)
    def test_schedule_closes_the_coroutine(self, kind: str) -> None:
        spy = Spy()
        front = make_front(kind)
        coro = spy.job()
        with pytest.raises(RuntimeError, match="event loop"):
            schedule_coro(front, kind, coro)
        assert_closed(coro)

    @pytest.mark.parametrize("kind", ALL_FRONTS)
    async def test_nothing_was_scheduled(self, kind: str) -> None:
        # Calls refused with no loop left nothing behind.
        spy = Spy()
        front = make_front(kind)
        failures: list[BaseException] = []

        def refused_calls() -> None:
            for form in callable_forms(kind):
                try:
                    call_form(front, form, spy.job)
                except RuntimeError as exc:
                    failures.append(exc)

        await anyio.to_thread.run_sync(refused_calls)
        assert len(failures) == len(callable_forms(kind))
        async with front:
            await assert_nothing_scheduled(front, spy)


class TestConstructors:
    """Constructor errors, raised at construction; no event loop needed."""

    @pytest.mark.parametrize("max_tasks", [0, -1, -100])
    @pytest.mark.parametrize(
        "cls", [TimedScheduler, QueuedScheduler, LifoQueuedScheduler]
    )
    def test_max_tasks_below_one(self, cls: type[Any], max_tasks: int) -> None:
        with pytest.raises(ValueError, match="max_tasks"):
            cls(max_tasks=max_tasks)
        with pytest.raises(ValueError, match="max_tasks"):
            cls(max_tasks)

    @pytest.mark.parametrize("max_tasks", [0, -1])
    def test_manager_max_tasks_below_one(self, max_tasks: int) -> None:
        with pytest.raises(ValueError, match="max_tasks"):
            Manager(2, max_tasks=max_tasks)
        with pytest.raises(ValueError, match="max_tasks"):
            Manager(2, max_tasks, QueuedScheduler)

    @pytest.mark.parametrize("schedulers", [0, -1])
    def test_manager_schedulers_below_one(self, schedulers: int) -> None:
        with pytest.raises(ValueError, match="schedulers"):
            Manager(schedulers)
        with pytest.raises(ValueError, match="schedulers"):
            Manager(schedulers=schedulers, cls=QueuedScheduler)

    @pytest.mark.parametrize(
        "cls",
        [Manager, int, object, str, TimedScheduler(), "TimedScheduler", None],
        ids=["Manager", "int", "object", "str", "instance", "name", "None"],
    )
    def test_manager_bad_cls(self, cls: Any) -> None:
        with pytest.raises(TypeError):
            Manager(2, cls=cls)
        with pytest.raises(TypeError):
            Manager(1, None, cls)

    def test_manager_bad_schedulers_and_cls_at_once(self) -> None:
        with pytest.raises((ValueError, TypeError)):
            Manager(0, cls=int)  # type: ignore[type-var]

    def test_constructors_need_no_event_loop(self) -> None:
        class MyTimed(TimedScheduler):
            pass

        class MyQueued(QueuedScheduler):
            pass

        fronts: list[Any] = [
            TimedScheduler(),
            TimedScheduler(10, False),
            TimedScheduler(max_tasks=1, prefer_utc=False, on_error="raise"),
            QueuedScheduler(),
            QueuedScheduler(5),
            LifoQueuedScheduler(max_tasks=1),
            Manager(),
            Manager(3, 10, QueuedScheduler),
            Manager(2, cls=LifoQueuedScheduler),
            Manager(2, None, TimedScheduler, 5, False),
            Manager(2, cls=MyTimed, prefer_utc=False),
            Manager(2, cls=MyQueued),
        ]
        for front in fronts:
            assert front.is_started is False
