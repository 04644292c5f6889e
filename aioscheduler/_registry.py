"""Durable functions: a stable name per function, and JSON for arguments.

A durable job is stored as data: the *name* of a function and its arguments
as JSON. After a restart the name must lead back to the same function, so
only functions this process offers can be named: registered with
:func:`durable`, or used in a durable add (which registers them). A name read
from the database never drives an ``import``: whoever can write the database
cannot make a worker load or run code it does not already offer.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, ParamSpec, TypeVar, overload

from ._callables import check_async_fn

__all__ = [
    "AT_LEAST_ONCE",
    "AT_MOST_ONCE",
    "Delivery",
    "DurableFunction",
    "durable",
    "encode_arguments",
    "registered",
    "resolve",
]

P = ParamSpec("P")
R = TypeVar("R")

#: What happens to a job that was running when its process died.
Delivery = Literal["at_least_once", "at_most_once"]
AT_LEAST_ONCE: Final = "at_least_once"
AT_MOST_ONCE: Final = "at_most_once"
_DELIVERIES: Final = (AT_LEAST_ONCE, AT_MOST_ONCE)


@dataclass(frozen=True, slots=True)
class DurableFunction:
    """A function registered for durable jobs, under a stable name."""

    name: str
    fn: Callable[..., Coroutine[Any, Any, Any]]
    delivery: Delivery


# name -> registration; and the function -> its registration, so a function
# used twice (or registered, then used) finds its name at once.
_by_name: dict[str, DurableFunction] = {}
_by_function: dict[Callable[..., Any], DurableFunction] = {}


def default_name(fn: Callable[..., Any]) -> str:
    """Return ``module:qualname`` for a module-level function.

    :raises TypeError: for a lambda, a function defined inside another
        function (a closure), a bound method, a ``functools.partial`` or any
        other object that cannot be found again by name after a restart
    """
    if inspect.ismethod(fn):
        raise TypeError(
            f"a durable job cannot name the bound method {fn!r}: after a restart "
            "there is no instance to bind it to; register a module-level async "
            "function (@aioscheduler.durable) that finds the object itself"
        )
    if not inspect.isfunction(fn):
        raise TypeError(
            f"a durable job must name a module-level async function, not {fn!r}"
        )
    qualname = fn.__qualname__
    if fn.__name__ == "<lambda>" or "<locals>" in qualname:
        kind = "a lambda" if fn.__name__ == "<lambda>" else "a closure"
        raise TypeError(
            f"a durable job cannot name {kind} ({qualname}): it cannot be found "
            "again after a restart; define it at module level, or register it "
            "under a name with @aioscheduler.durable('name')"
        )
    return f"{fn.__module__}:{qualname}"


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"a durable function's name must be a str, not {name!r}")
    if not name or name != name.strip() or len(name) > 200:
        raise ValueError(
            "a durable function's name must be 1 to 200 characters, without "
            f"leading or trailing spaces, got {name!r}"
        )
    return name


def _register(
    fn: Callable[..., Any], name: str | None, delivery: Delivery
) -> DurableFunction:
    if delivery not in _DELIVERIES:
        raise ValueError(
            f"delivery must be 'at_least_once' or 'at_most_once', not {delivery!r}"
        )
    check_async_fn(fn)
    if name is None:
        name = default_name(fn)
    else:
        _check_name(name)
        if inspect.ismethod(fn):
            default_name(fn)  # raises: a bound method has nothing to bind to
    known = _by_name.get(name)
    if known is not None and known.fn is not fn:
        raise ValueError(
            f"the durable name {name!r} is taken by {known.fn!r}; a name must "
            "lead to one function, or a restart could run the wrong one"
        )
    entry = DurableFunction(name, fn, delivery)
    _by_name[name] = entry
    _by_function[fn] = entry
    return entry


@overload
def durable(
    fn: Callable[P, Coroutine[Any, Any, R]], /
) -> Callable[P, Coroutine[Any, Any, R]]: ...


@overload
def durable(
    name: str | None = None, /, *, delivery: Delivery = "at_least_once"
) -> Callable[
    [Callable[P, Coroutine[Any, Any, R]]], Callable[P, Coroutine[Any, Any, R]]
]: ...


def durable(fn_or_name: Any = None, /, *, delivery: Delivery = "at_least_once") -> Any:
    """Register an async function for durable jobs, under a stable name.

    The name (by default ``module:qualname``) is what the store keeps; after
    a restart a job runs the function registered under its name in that
    process. The function is returned unchanged. ::

        @aioscheduler.durable
        async def send_reminder(user_id: int) -> None: ...

        @aioscheduler.durable("billing.charge", delivery="at_most_once")
        async def charge(invoice: str) -> None: ...

    :param delivery: for a job that was running when its process died:
        ``"at_least_once"`` (the default) runs it again, with its attempt
        number raised; ``"at_most_once"`` records it as lost and reports it
    :raises TypeError: for a lambda, a closure, a bound method or a
        function that is not async
    :raises ValueError: if the name is taken by another function

    .. versionadded:: 2.0
    """
    if callable(fn_or_name):
        _register(fn_or_name, None, delivery)
        return fn_or_name
    name = None if fn_or_name is None else _check_name(fn_or_name)

    def decorate(
        fn: Callable[P, Coroutine[Any, Any, R]],
    ) -> Callable[P, Coroutine[Any, Any, R]]:
        _register(fn, name, delivery)
        return fn

    return decorate


def registered(fn: Callable[..., Any]) -> DurableFunction:
    """Return *fn*'s registration, registering it under its default name."""
    try:
        return _by_function[fn]
    except (KeyError, TypeError):  # TypeError: an unhashable callable
        pass
    return _register(fn, None, AT_LEAST_ONCE)


def resolve(name: str) -> DurableFunction | None:
    """Return the function registered under *name* in this process, if any."""
    return _by_name.get(name)


def _check_json(value: object, where: str) -> None:
    """Raise TypeError unless *value* survives a JSON round trip unchanged."""
    kind = type(value)
    if value is None or kind is str or kind is bool or kind is int:
        return
    if kind is float:
        if not math.isfinite(value):  # type: ignore[arg-type]
            raise TypeError(f"{where} is {value!r}, which JSON cannot hold")
        return
    if isinstance(value, list) and kind is list:
        for i, item in enumerate(value):
            _check_json(item, f"{where}[{i}]")
        return
    if isinstance(value, dict) and kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise TypeError(
                    f"{where} has the key {key!r}; JSON object keys must be str"
                )
            _check_json(item, f"{where}[{key!r}]")
        return
    hint = " (a tuple comes back as a list: pass a list)" if kind is tuple else ""
    raise TypeError(
        f"{where} is a {kind.__name__} ({value!r:.60}), which is not JSON: durable "
        f"arguments must be None, bool, int, float, str, list or dict{hint}"
    )


def encode_arguments(args: tuple[Any, ...], kwargs: Mapping[str, Any] | None) -> str:
    """Return the JSON text of ``[args, kwargs]``.

    Only values that come back unchanged after a restart are accepted, so a
    job runs with exactly the arguments it was given.

    :raises TypeError: naming the first argument that is not JSON
    """
    for i, value in enumerate(args):
        _check_json(value, f"argument {i}")
    if kwargs:
        for key, value in kwargs.items():
            if type(key) is not str:
                raise TypeError(f"keyword argument names must be str, not {key!r}")
            _check_json(value, f"keyword argument {key!r}")
        return json.dumps([list(args), dict(kwargs)], allow_nan=False)
    return json.dumps([list(args)], allow_nan=False)


def decode_arguments(text: str) -> tuple[list[Any], dict[str, Any]]:
    """Return the ``(args, kwargs)`` stored by :func:`encode_arguments`."""
    data = json.loads(text)
    return data[0], (data[1] if len(data) > 1 else {})
