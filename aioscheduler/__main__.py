"""``python -m aioscheduler``: a short demo of timed, queued and managed jobs,
and ``jobs``, the command line to look inside a durable store.

python -m aioscheduler                  # demo on asyncio
python -m aioscheduler --backend trio   # the same on Trio
python -m aioscheduler jobs --store jobs.db list   # see _jobs_cli.py
"""

from __future__ import annotations

import sys

from ._demo import main as demo_main


def main(argv: list[str]) -> int:
    """Run the demo, or the ``jobs`` command line if *argv* starts with it."""
    if argv[:1] == ["jobs"]:
        from ._jobs_cli import main as jobs_main

        return jobs_main(argv[1:])
    return demo_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
