"""``python -m aioscheduler``: a short demo, or a quick benchmark.

python -m aioscheduler                  # demo on asyncio
python -m aioscheduler --backend trio   # the same on Trio
python -m aioscheduler bench --help     # one benchmark workload, live
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run the demo, or the ``bench`` subcommand; return the exit status."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "bench":
        from ._bench import main as bench_main

        return bench_main(args[1:])
    from ._demo import main as demo_main

    return demo_main(args)


if __name__ == "__main__":
    sys.exit(main())
