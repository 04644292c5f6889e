"""What is specific to one event loop, behind one small interface.

:func:`current_binding` finds the loop running in the calling thread and
returns its :class:`~aioscheduler.backends._interface.LoopBinding`: the loop
clock, a cheap "am I on this loop?" check, the engine that runs jobs there,
and the 1.x ``start()`` facade. Loop modules are imported lazily, so Trio is
needed only when Trio is used.

Setting the private ``_PORTABLE`` to ``True`` makes every loop use the
portable AnyIO engine instead of a native one: a hook for the test suite,
which runs both (not an option: users get the fastest engine there is).
"""

from __future__ import annotations

import sys

from ._interface import Engine, JobHost, LoopBinding

__all__ = ["Engine", "JobHost", "LoopBinding", "current_binding", "portable_forced"]


#: Test hook: use the portable AnyIO engine on every loop.
_PORTABLE = False


def portable_forced() -> bool:
    """Return ``True`` if the test hook asks for the portable engine."""
    return _PORTABLE


def current_binding() -> LoopBinding:
    """Return the binding of the event loop running in this thread.

    :raises RuntimeError: if no asyncio loop or Trio run is running in this
        thread
    """
    from . import _asyncio

    binding: LoopBinding | None = _asyncio.current_binding()
    if binding is None and "trio" in sys.modules:
        from . import _trio

        binding = _trio.current_binding()
    if binding is None:
        raise RuntimeError(
            "no running event loop in this thread: call this from async code "
            "running on asyncio or Trio (from another thread, go through "
            "anyio.from_thread.run_sync)"
        )
    return binding
