"""examples/durable_reminder.py: a durable job survives a restart.

Two real processes on one store file, in real time. The first adds the
reminder and a heartbeat schedule and exits before the reminder is due; the
second runs the reminder. Nothing here depends on the machine's speed beyond
the generous timeouts: the reminder is due 4 s after the first run adds it,
and the first run serves for 0.5 s; its own output says whether the reminder
was still pending when it left.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests._engines import ROOT, child_env

EXAMPLE = ROOT / "examples" / "durable_reminder.py"

BACKENDS = ["asyncio"]
if importlib.util.find_spec("trio") is not None:
    BACKENDS.append("trio")


def _run(db: Path, backend: str) -> str:
    result = subprocess.run(
        [
            sys.executable,
            "-W",
            "error",
            str(EXAMPLE),
            "--db",
            str(db),
            "--delay",
            "4",
            "--serve",
            "0.5",
            "--backend",
            backend,
        ],
        cwd=db.parent,
        env=child_env("native"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == "", result.stderr
    return result.stdout


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_reminder_runs_after_a_restart(tmp_path: Path, backend: str) -> None:
    db = tmp_path / "reminder.db"

    first = _run(db, backend)
    assert first.startswith("added reminder-1, due in 4 s, and a heartbeat"), first
    assert "exiting; reminder-1 is pending: run me again" in first
    assert "reminder:" not in first

    second = _run(db, backend)
    lines = second.splitlines()
    assert f"reminder-1 is in {db}: waiting for it" in lines, second
    reminders = [line for line in lines if line.startswith("reminder:")]
    assert len(reminders) == 1, second
    assert re.fullmatch(
        r"reminder: stand up \(key reminder-1, attempt 1, \d+\.\d s late\)",
        reminders[0],
    )
    assert lines[-1] == "done; the next run starts over"

    # The heartbeat went on across the restart: no fire time ran twice.
    beats = re.findall(r"^heartbeat for (\S+)$", first + second, re.MULTILINE)
    assert len(beats) == len(set(beats)), beats

    # The second run removed the schedule, and the reminder is done: the
    # next run starts over.
    third = _run(db, backend)
    assert third.startswith("added reminder-1"), third
