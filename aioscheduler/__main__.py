"""``python -m aioscheduler``: a short demo of timed, queued and managed jobs.

python -m aioscheduler                  # demo on asyncio
python -m aioscheduler --backend trio   # the same on Trio
"""

from __future__ import annotations

import sys

from ._demo import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
