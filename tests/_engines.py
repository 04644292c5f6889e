"""Choosing the engine under test, in this process or in a child process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import aioscheduler.backends

ROOT = Path(__file__).resolve().parent.parent
_CHILD_HOOK = Path(__file__).resolve().parent / "_child"


def use_engine(monkeypatch: pytest.MonkeyPatch, engine: str) -> None:
    """Run this test on *engine*: ``"native"`` or ``"anyio"`` (the portable one)."""
    monkeypatch.setattr(aioscheduler.backends, "_PORTABLE", engine == "anyio")


def portable() -> bool:
    """Return ``True`` if this test runs on the portable engine."""
    return aioscheduler.backends._PORTABLE


def child_env(engine: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """Return the environment for a child interpreter that runs on *engine*.

    It imports this checkout's package and, through ``tests/_child``'s
    ``sitecustomize``, sets the engine hook.
    """
    env = dict(os.environ if base is None else base)
    env.pop("AIOSCHEDULER_TEST_ENGINE", None)
    if engine == "anyio":
        env["AIOSCHEDULER_TEST_ENGINE"] = "anyio"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(_CHILD_HOOK), str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )
    return env
