"""Run one benchmark case in this (fresh) process and print its figures.

    python -m benchmarks._worker '{"impl": "aioscheduler", "workload": "W2", ...}'

Prints one line ``@@RESULT <json>`` and exits at once with ``os._exit``:
tearing down millions of pending jobs measures nothing and can take longer
than the run. Started by ``python -m benchmarks``, one process per run.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import warnings
from typing import Any

MARKER = "@@RESULT "


def report(result: dict[str, Any]) -> None:
    """Print *result* for the parent and end the process now."""
    sys.stdout.write(MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def main(argv: list[str]) -> None:
    case = json.loads(argv[0])
    warnings.simplefilter("ignore")
    if case.get("contended"):
        from benchmarks import _common

        _common.scale_leads(_common.CONTENDED_LEAD)
    impl = case["impl"]
    if impl.startswith("aioscheduler-anyio"):
        import aioscheduler.backends

        aioscheduler.backends._PORTABLE = True
    if impl in ("aioscheduler", "aioscheduler-anyio"):
        from benchmarks import _aioscheduler

        passes = ("tracemalloc",) if case.get("tracemalloc") else ("time",)
        result = _aioscheduler.run(
            case["workload"],
            case["size"],
            case["backend"],
            variant=case["variant"],
            passes=passes,
            seed=case.get("seed", 0),
            on_measured=report,
        )
    else:
        if impl == "apscheduler":
            from benchmarks import _apscheduler

            baseline = _apscheduler.run
        else:
            from benchmarks import _floors

            baseline = functools.partial(_floors.run, impl)
        result = baseline(
            case["workload"],
            case["size"],
            case["backend"],
            variant=case["variant"],
            tracing=bool(case.get("tracemalloc")),
            seed=case.get("seed", 0),
            on_measured=report,
        )
    report(result)


if __name__ == "__main__":
    main(sys.argv[1:])
