"""``async with`` for anything that serves in a task of its own.

Schedulers and the Manager share it: entering starts the serving task(s) in
a private task group; leaving normally waits until no job is pending or
running (jobs may schedule more meanwhile), then closes; leaving by an
exception or a cancellation closes at once, cancelling what is left, and
lets the exception propagate.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Any, Self

import anyio
from anyio.abc import TaskGroup

__all__ = ["Hosted", "HostedFailures"]


class HostedFailures(ExceptionGroup):
    """Job failures that a hosted scheduler raises into its host task group.

    Leaving ``async with`` replaces it by its members in the group it
    raises, so three failing jobs surface as one flat group of three, as
    three failing children of a task group would.
    """

    def derive(self, excs: Any) -> ExceptionGroup[Any]:
        return HostedFailures(self.message, excs)


def _flatten(group: BaseExceptionGroup[Any]) -> BaseExceptionGroup[Any]:
    """Return *group* with each :class:`HostedFailures` replaced by its members."""
    if not any(isinstance(exc, HostedFailures) for exc in group.exceptions):
        return group
    members: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, HostedFailures):
            members.extend(exc.exceptions)
        else:
            members.append(exc)
    return BaseExceptionGroup(group.message, members).with_traceback(
        group.__traceback__
    )


class Hosted(ABC):
    """Mixin: the async context manager protocol on top of five hooks."""

    _host_group: TaskGroup | None = None

    @abstractmethod
    def _claim(self) -> None:
        """Move to running, or raise :exc:`RuntimeError` if started before."""

    @abstractmethod
    def _unclaim(self) -> None:
        """Undo :meth:`_claim` after a failed start: closed for good."""

    @abstractmethod
    async def _start_in(self, group: TaskGroup) -> None:
        """Start serving in *group*; return once serving."""

    @abstractmethod
    def _request_close(self) -> None:
        """Start closing: refuse jobs, cancel pending and running ones."""

    def _body_ended(self) -> None:
        """The ``async with`` body ended normally: about to wait for the jobs."""
        return  # nothing to do, unless a subclass takes durable jobs

    @abstractmethod
    async def join(self) -> None:
        """Wait until no job is pending or running."""

    async def __aenter__(self) -> Self:
        self._claim()
        group = anyio.create_task_group()
        await group.__aenter__()
        try:
            await self._start_in(group)
        except BaseException as exc:
            self._unclaim()
            try:
                suppressed = await group.__aexit__(type(exc), exc, exc.__traceback__)
            except BaseExceptionGroup as group_exc:
                # The task group wrapped the start's own failure (StoreLocked,
                # say), alone: raise it as it was raised, as __aexit__ does.
                if group_exc.exceptions != (exc,):
                    raise
                suppressed = False
            if not suppressed:
                raise
        self._host_group = group
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        group = self._host_group
        assert group is not None, "__aexit__ without __aenter__"
        self._host_group = None
        interrupted: BaseException | None = None
        if exc_type is None:
            try:
                self._body_ended()
                await self.join()
            except BaseException as join_exc:  # e.g. an outer scope cancelled us
                interrupted = join_exc
        self._request_close()
        try:
            if interrupted is None:
                return await group.__aexit__(exc_type, exc, tb)
            if not await group.__aexit__(
                type(interrupted), interrupted, interrupted.__traceback__
            ):
                raise interrupted
        except BaseExceptionGroup as group_exc:
            # The task group wrapped the body's own exception, alone:
            # let it propagate as it was raised, as users expect.
            if exc is not None and group_exc.exceptions == (exc,):
                return False
            flat = _flatten(group_exc)
            if flat is group_exc:
                raise
            raise flat from None
        return None
