"""Checks that what users hand us can become a coroutine."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import partial as _partial_type
from typing import Any, Final

__all__ = ["NOTHING_CHECKED", "check_async_fn", "check_coroutine"]

#: Starts the schedulers' "last function that passed check_async_fn" cache:
#: unlike None, never the object under test.
NOTHING_CHECKED: Final = object()

_CO_COROUTINE: Final = inspect.CO_COROUTINE


def check_async_fn(async_fn: Callable[..., Any]) -> None:
    """Raise :exc:`TypeError` unless *async_fn* can be an async function.

    Plain ``async def`` functions and methods pass on a flag test, the hot
    path. Anything else is judged by :func:`inspect.iscoroutinefunction`
    (partials, marked functions) and refused only where it is certainly
    synchronous: a plain function, method, builtin, or an object whose
    ``__call__`` is a plain function.
    """
    code = getattr(async_fn, "__code__", None)
    if code is not None and code.co_flags & _CO_COROUTINE:
        return
    if inspect.iscoroutinefunction(async_fn):
        return
    if inspect.iscoroutine(async_fn):
        async_fn.close()  # rejected: close it, or Python warns it was never awaited
        raise TypeError(
            f"expected an async function, got the coroutine object {async_fn!r}; "
            "pass the function and its arguments (start_soon(work, 1)), or use "
            "schedule() for coroutine objects"
        )
    if not callable(async_fn):
        raise TypeError(f"expected an async function, got {async_fn!r}")
    call = inspect.getattr_static(type(async_fn), "__call__", None)
    if (
        code is not None
        or inspect.isbuiltin(async_fn)
        or inspect.isclass(async_fn)
        or isinstance(async_fn, _partial_type)
        or (inspect.isfunction(call) and not inspect.iscoroutinefunction(call))
    ):
        raise TypeError(
            f"expected an async function, got {async_fn!r}; pass the function "
            "itself (start_soon(work, 1)), not its result, and use 'async def'"
        )


def check_coroutine(coro: object) -> None:
    """Raise :exc:`TypeError` unless *coro* is a coroutine object."""
    if not inspect.iscoroutine(coro):
        hint = ""
        if callable(coro):
            hint = "; pass work(...) here, or use the start_* methods for functions"
        raise TypeError(f"expected a coroutine object, got {coro!r}{hint}")
