"""The demo (``python -m aioscheduler``, the README's first command) runs.

Real time in a child process: it shows real lateness. Only what does not
depend on the machine's speed is checked: it exits 0 and every section ran
everything it scheduled.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests._engines import ROOT, child_env

BACKENDS = ["asyncio"]
if importlib.util.find_spec("trio") is not None:
    BACKENDS.append("trio")


@pytest.mark.parametrize("backend", BACKENDS)
def test_demo_runs_every_section(backend: str) -> None:
    result = subprocess.run(
        [sys.executable, "-W", "error", "-m", "aioscheduler", "--backend", backend],
        cwd=ROOT,
        env=child_env("native"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"aioscheduler demo on {backend}" in out
    assert "-> 5 ran" in out
    assert "Every ran 4 times" in out
    assert "the Cron ran at" in out
    assert "ran jobs in order [0, 1, 2, 3, 4, 5]" in out
    assert "ran jobs in order [5, 4, 3, 2, 1, 0]" in out
    assert "40/40 finished" in out
