"""``python -m benchmarks``: see :mod:`benchmarks._run`."""

import sys

from ._run import main

sys.exit(main())
