"""The durable calls of TimedScheduler and Manager: awaitable, committed on return."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, TypeVarTuple, Unpack

from ._durable import (
    OnConflict,
    StoreLink,
    check_on_conflict,
    link_of,
    make_job,
    new_key,
)
from ._exceptions import ScheduleConflict
from ._registry import encode_arguments, registered
from ._schedules import Coalesce, check_schedule_options
from ._time import MAX_TIMESTAMP, delay_seconds, option_seconds
from ._trigger import Trigger
from .stores._fires import to_micros
from .stores._interface import JobStore, NewJob, NewSchedule

if TYPE_CHECKING:
    from ._timed import TimedScheduler

__all__ = ["DurableBatch", "DurableMethods", "open_store_option"]

PosArgsT = TypeVarTuple("PosArgsT")

#: What a durable schedule does when its previous run still runs.
DurableOverlap = Literal["skip", "allow"]


def open_store_option(store: object) -> JobStore | None:
    """The ``store=`` option: a store, a ``postgresql://`` URL (a
    PostgresStore), a path (a SQLite store there), or None."""
    if store is None:
        return None
    if isinstance(store, str) and store.startswith(("postgresql://", "postgres://")):
        from .stores._postgres import PostgresStore

        return PostgresStore(store)
    if isinstance(store, str | os.PathLike):
        from .stores._sqlite import SQLiteStore

        return SQLiteStore(store)
    if isinstance(store, JobStore):
        return store
    raise TypeError(
        "store must be a path, a postgresql:// URL, a JobStore (such as "
        f"SQLiteStore) or None, not {store!r}"
    )


def _due_at(host: TimedScheduler, when: datetime) -> int:
    """A durable job's due time for *when* (µs since the epoch); *when* must
    be in the future."""
    return round(host._future_timestamp(when) * 1e6)


def _due_after(host: TimedScheduler, delay: object) -> int:
    """A durable job's due time *delay* from now by *host*'s wall clock (µs
    since the epoch)."""
    seconds = delay_seconds(delay)
    now = host.now().timestamp()
    if now + seconds > MAX_TIMESTAMP:
        raise ValueError(
            f"delay {delay!r} is too long: the job would be due after "
            "9999-12-31, the latest time a datetime can hold"
        )
    return round((now + seconds) * 1e6)


class DurableMethods:
    """Durable jobs and schedules: see the "Durable jobs" guide."""

    def _durable_host(self) -> TimedScheduler:
        raise NotImplementedError

    @property
    def store(self) -> JobStore | None:
        """The durable store (``None`` without one).

        .. versionadded:: 2.0
        """
        return self._durable_host()._store

    async def durable_start_at(
        self,
        when: datetime,
        async_fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, Any]],
        /,
        *args: *PosArgsT,
        key: str | None = None,
        on_conflict: OnConflict = "error",
        misfire_grace: float | timedelta | None = None,
        kwargs: Mapping[str, Any] | None = None,
    ) -> str:
        """Commit a durable job: run ``async_fn(*args, **kwargs)`` at *when*,
        even if this process restarts or dies meanwhile.

        Returns the job's key once the job is on disk (concurrent adds share
        one commit). ::

            @aioscheduler.durable
            async def send_reminder(user_id: int) -> None: ...

            key = await scheduler.durable_start_at(when, send_reminder, 42,
                                                   key="reminder-42")

        :param async_fn: a module-level async function, registered with
            :func:`durable` or registered now under ``module:qualname``
        :param key: unique among pending and running jobs (generated if
            ``None``); makes the add idempotent
        :param on_conflict: when a pending or running job has *key*:
            ``"error"`` raises :exc:`JobConflict`, ``"keep"`` keeps it (and
            returns its key), ``"replace"`` replaces it
        :param misfire_grace: if the job could only start later than *when*
            plus this (seconds or ``timedelta``; after a restart, say), it
            does not run: it is recorded as missed and logged
        :param kwargs: keyword arguments for *async_fn*, JSON too
        :raises TypeError: a lambda, closure, bound method or other function
            that cannot be found again after a restart; an argument that is
            not JSON (named in the message)
        :raises ValueError: *when* is in the past, or an option is out of range
        :raises RuntimeError: the scheduler has no store, or does not serve
        :raises StoreError: the commit failed (nothing was added)

        A cancelled call may still have committed the job: use a *key* to
        make a retry safe.

        .. versionadded:: 2.0
        """
        host = self._durable_host()
        return await durable_add(
            host,
            async_fn,
            args,
            kwargs,
            key,
            _due_at(host, when),
            on_conflict,
            misfire_grace,
        )

    async def durable_start_after(
        self,
        delay: float | timedelta,
        async_fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, Any]],
        /,
        *args: *PosArgsT,
        key: str | None = None,
        on_conflict: OnConflict = "error",
        misfire_grace: float | timedelta | None = None,
        kwargs: Mapping[str, Any] | None = None,
    ) -> str:
        """As :meth:`durable_start_at`, *delay* seconds (or a ``timedelta``)
        from now by the scheduler's wall clock. ::

            await scheduler.durable_start_after(timedelta(days=3), follow_up, 42)

        .. versionadded:: 2.0
        """
        host = self._durable_host()
        return await durable_add(
            host,
            async_fn,
            args,
            kwargs,
            key,
            _due_after(host, delay),
            on_conflict,
            misfire_grace,
        )

    def durable_batch(self) -> DurableBatch:
        """Add many durable jobs in one commit: ``async with`` the batch, add
        jobs to it, and they are committed together when the block ends.

        Each add is checked at its call, as :meth:`durable_start_at` checks
        it; the commit is one transaction (all or nothing), much cheaper per
        job than one await per job. An exception in the block commits
        nothing. ::

            async with scheduler.durable_batch() as batch:
                for user in users:
                    batch.start_after(timedelta(days=3), follow_up, user.id,
                                      key=f"follow-up-{user.id}")
            print(len(batch.keys), "committed")

        :raises JobConflict: after the commit, if a key was taken (by a
            pending or running job, with ``on_conflict="error"``; or by a
            running job, with ``"replace"``): the message names the keys;
            the other jobs of the batch are committed

        .. versionadded:: 2.0
        """
        return DurableBatch(self._durable_host())

    async def add_durable_schedule(
        self,
        trigger: Trigger,
        async_fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, Any]],
        /,
        *args: *PosArgsT,
        id: str | None = None,
        misfire_grace: float | timedelta | None = None,
        coalesce: Coalesce = "latest",
        max_catchup: int = 100,
        overlap: DurableOverlap = "skip",
        jitter: float | timedelta | None = None,
        max_runs: int | None = None,
        on_conflict: OnConflict = "error",
        kwargs: Mapping[str, Any] | None = None,
    ) -> str:
        """Commit a durable recurring schedule; return its id.

        As :meth:`add_schedule`, but kept in the store: after a restart it
        goes on from its stored high-water mark, so no fire time runs twice,
        and fire times passed while no process ran are handled by
        *coalesce* and *misfire_grace*. Each run is a durable job (its key:
        ``"<id>@<fire time>"``). The trigger is stored as its JSON form
        (the trigger's ``to_dict()``) and follows the wall clock (``Every`` too).
        ``overlap`` is ``"skip"`` (a run still pending or running makes the
        fire time skip) or ``"allow"``. ::

            await scheduler.add_durable_schedule(
                Cron("0 9 * * mon-fri", tz="Europe/Berlin"), send_report, id="report"
            )

        :param on_conflict: when *id* is in use: ``"error"`` raises
            :exc:`ScheduleConflict`, ``"keep"`` keeps it, ``"replace"``
            replaces it (an equal trigger keeps its progress)

        .. versionadded:: 2.0
        """
        grace, jitter_s = check_schedule_options(
            trigger,
            misfire_grace,
            coalesce,
            max_catchup,
            "skip",
            jitter,
            max_runs,
            False,
            on_conflict,
            id,
        )
        if overlap not in ("skip", "allow"):
            raise ValueError(
                "a durable schedule's overlap must be 'skip' or 'allow', not "
                f"{overlap!r}: buffering and cancelling runs are in-memory "
                "notions (use add_schedule for them)"
            )
        check_on_conflict(on_conflict)
        entry = registered(async_fn)
        arguments = encode_arguments(args, kwargs)
        host = self._durable_host()
        link = durable_link_of(host)
        now = host.now()
        anchored = trigger._anchored(now)
        text = json.dumps(anchored.to_dict())  # ValueError: a zone without a name
        first = anchored._next_after(now)
        schedule = NewSchedule(
            id=new_key() if id is None else id,
            trigger=text,
            given=json.dumps(trigger.to_dict()),
            function=entry.name,
            arguments=arguments,
            delivery=entry.delivery,
            misfire_grace=grace,
            coalesce=coalesce,
            max_catchup=max_catchup,
            overlap=overlap,
            jitter=jitter_s,
            max_runs=max_runs,
            next_fire=None if first is None else to_micros(first),
            replace=on_conflict == "replace",
        )
        result = await link.store.add_schedule(schedule)
        if result == "exists" and on_conflict == "error":
            raise ScheduleConflict(
                f"a durable schedule with id {schedule.id!r} exists already; pass "
                "on_conflict='keep' or 'replace' to reuse the id"
            )
        if schedule.next_fire is not None:
            for runtime in link.runtimes:
                runtime.job_added(schedule.next_fire)
        return schedule.id

    async def cancel_durable(self, key: str) -> bool:
        """Delete the pending durable job *key*; ``False`` if none is pending
        (a running one is cancelled through its :class:`Task`, in the process
        that runs it).

        .. versionadded:: 2.0
        """
        if not isinstance(key, str):
            raise TypeError(f"key must be a str, not {type(key).__name__}")
        return await durable_link_of(self._durable_host()).store.cancel(key)

    async def remove_durable_schedule(self, id: str) -> bool:
        """Delete the durable schedule *id* and its runs not yet started;
        ``False`` if there is none.

        .. versionadded:: 2.0
        """
        if not isinstance(id, str):
            raise TypeError(f"id must be a str, not {type(id).__name__}")
        return await durable_link_of(self._durable_host()).store.remove_schedule(id)


def durable_link_of(host: TimedScheduler) -> StoreLink:
    runtime = host._durable
    if runtime is None:
        raise RuntimeError(
            f"this {type(host).__name__} has no store for durable jobs: create it "
            "with store='jobs.db' (or a SQLiteStore)"
        )
    if host._closed:
        host._check_open()
    if not runtime.opened:
        raise RuntimeError(
            "durable jobs are added while the scheduler serves (inside "
            "'async with scheduler:' or after task_group.start(scheduler.run)), "
            "when its store is open"
        )
    return link_of(runtime.store)


async def durable_add(
    host: TimedScheduler,
    async_fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any] | None,
    key: str | None,
    due: int,
    on_conflict: str,
    misfire_grace: object,
) -> str:
    job = make_job(
        async_fn,
        args,
        kwargs,
        key=key,
        due=due,
        on_conflict=on_conflict,
        misfire_grace=option_seconds(misfire_grace, "misfire_grace"),
    )
    link = durable_link_of(host)
    await link.add(job, on_conflict)
    return job.key


class DurableBatch:
    """Durable jobs to commit together; see :meth:`TimedScheduler.durable_batch`.

    .. versionadded:: 2.0
    """

    def __init__(self, host: TimedScheduler) -> None:
        self._host = host
        self._jobs: list[NewJob] = []
        self._policies: list[str] = []
        self.keys: list[str] = []
        """The keys of the jobs added, in order (committed once the block ends)."""

    async def __aenter__(self) -> DurableBatch:
        durable_link_of(self._host)  # RuntimeError now, not at the commit
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None or not self._jobs:
            return
        jobs, self._jobs = self._jobs, []
        policies, self._policies = self._policies, []
        link = durable_link_of(self._host)
        await link.add_many(jobs, policies)

    def start_at(
        self,
        when: datetime,
        async_fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, Any]],
        /,
        *args: *PosArgsT,
        key: str | None = None,
        on_conflict: OnConflict = "error",
        misfire_grace: float | timedelta | None = None,
        kwargs: Mapping[str, Any] | None = None,
    ) -> str:
        """Add ``async_fn(*args)`` at *when* to the batch; return its key.

        As :meth:`TimedScheduler.durable_start_at`, committed with the batch.
        """
        return self._add(
            async_fn,
            args,
            kwargs,
            key,
            _due_at(self._host, when),
            on_conflict,
            misfire_grace,
        )

    def start_after(
        self,
        delay: float | timedelta,
        async_fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, Any]],
        /,
        *args: *PosArgsT,
        key: str | None = None,
        on_conflict: OnConflict = "error",
        misfire_grace: float | timedelta | None = None,
        kwargs: Mapping[str, Any] | None = None,
    ) -> str:
        """Add ``async_fn(*args)`` after *delay* to the batch; return its key.

        The delay counts from this call, as
        :meth:`TimedScheduler.durable_start_after` counts it.
        """
        return self._add(
            async_fn,
            args,
            kwargs,
            key,
            _due_after(self._host, delay),
            on_conflict,
            misfire_grace,
        )

    def _add(
        self,
        async_fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any] | None,
        key: str | None,
        due: int,
        on_conflict: str,
        misfire_grace: object,
    ) -> str:
        job = make_job(
            async_fn,
            args,
            kwargs,
            key=key,
            due=due,
            on_conflict=on_conflict,
            misfire_grace=option_seconds(misfire_grace, "misfire_grace"),
        )
        self._jobs.append(job)
        self._policies.append(on_conflict)
        self.keys.append(job.key)
        return job.key
