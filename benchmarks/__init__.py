"""The benchmark suite: workloads W1-W7 against the loops' floors and baselines.

Run it with ``nox -s bench`` or ``python -m benchmarks`` (``--help``), from
the source tree: none of it is installed with aioscheduler. Every case runs
in fresh subprocesses; ``python -m benchmarks.live`` runs one workload on
aioscheduler in this process, with a live progress line.
"""
