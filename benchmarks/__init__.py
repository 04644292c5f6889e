"""The benchmark suite of issue 3: workloads W1-W7 against the loops' floors.

Run it with ``nox -s bench`` or ``python -m benchmarks`` (``--help``). The
measuring code of aioscheduler's own runs lives in ``aioscheduler/_bench.py``
(so that ``python -m aioscheduler bench`` works from an installed package);
this package adds the baselines, runs every case in fresh subprocesses and
writes the results.
"""
