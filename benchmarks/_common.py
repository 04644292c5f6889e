"""What every implementation's runs share: set-up sizes and measurements.

Standard library only, and Python 3.10 syntax: ``benchmarks/_legacy142.py``
runs aioscheduler 1.4.2 under Python 3.10 and imports this too, so that the
1.x baseline uses the very same sizes, deadlines and statistics.
"""

from __future__ import annotations

import itertools
import math
import os
import random
import resource
import sys
from collections.abc import Sequence
from typing import Any

Result = dict[str, Any]

# -- sizes of the set-ups -------------------------------------------------------

#: W1/W4/W6 pick deadlines from this many random values (a power of two), so
#: that 10M jobs need no 10M datetimes; every implementation gets the same.
POOL_SIZE = 1 << 16
MASK = POOL_SIZE - 1
#: W1 measures tracemalloc (which slows allocation 2-3x) at most at this size.
TRACEMALLOC_CAP = 100_000
#: W3: the jobs' deadlines are spread over this many seconds.
SPREAD_S = 5.0
#: W6: the window of jobs coming due, and the seconds it is spread over.
WINDOW_MAX = 50_000
WINDOW_S = 2.0
#: W6: how far ahead of scheduling the window begins. With 10M pending, a
#: full garbage collection can stop the loop for seconds while the window's
#: 50,000 jobs are being scheduled; their times must still be ahead then.
WINDOW_LEAD_S = 5.0


def w1_low_seconds(n: int) -> float:
    """The earliest deadline of W1, in seconds ahead: 10 s, plus room for big N.

    Scheduling 10M jobs takes longer than 10 s, and a job whose time has
    passed cannot be scheduled; 10 µs per job keeps every one in the future.
    """
    return 10.0 + n * 10e-6


#: A contended run's set-up gets about half a core (``benchmarks/_contend.py``)
#: and must still end before the first deadline: its leads allow this many
#: times the time per job.
CONTENDED_LEAD = 2.5
_lead_scale = 1.0


def scale_leads(factor: float) -> None:
    """Multiply the per-job part of every set-up lead of this process by *factor*.

    The worker of a contended run calls it (with :data:`CONTENDED_LEAD`)
    before the run; each run is a process of its own.
    """
    global _lead_scale
    _lead_scale = factor


def burst_lead(n: int, per_job: float = 10e-6) -> float:
    """Seconds from the W2 set-up to the due instant: room to schedule *n*.

    A baseline whose set-up costs more than 10 µs a job passes its own
    *per_job*; ``setup_overran`` in the figures tells if it was not enough.
    """
    return 0.25 + n * per_job * _lead_scale


def steady_lead(n: int, per_job: float = 10e-6) -> float:
    """Seconds from the W3/W4 set-up to the first deadline (see :func:`burst_lead`)."""
    return 0.5 + n * per_job * _lead_scale


def random_offsets(n: int, seed: int) -> list[float]:
    """W3 ``random``: *n* deadlines in seconds after the base, in scheduling order.

    Drawn uniformly over ``[0, SPREAD_S)`` from the repetition's *seed*, so
    every implementation gets the same deadlines, and, unlike the evenly
    spaced ``steady`` variant, clusters and gaps happen, as with independent
    arrivals. Job *i* is due at the base plus the *i*-th offset; the
    jobs are scheduled in that (random) order, as real jobs arrive.
    """
    rng = random.Random(seed + 3)  # not the seed W1/W4 draw their pools from
    spread = SPREAD_S
    draw = rng.random
    return [draw() * spread for _ in range(n)]


def w3_offsets(variant: str, n: int, seed: int) -> list[float]:
    """W3's deadlines in seconds after its base, for ``steady`` or ``random``."""
    if variant == "random":
        return random_offsets(n, seed)
    if variant == "steady":
        return [SPREAD_S * i / n for i in range(n)]
    raise ValueError(f"W3 has no variant {variant!r}")


def far_offsets(rng: random.Random, low: float, high: float = 3600.0) -> list[float]:
    """Return :data:`POOL_SIZE` random offsets in seconds, in ``[low, high)``."""
    return [rng.uniform(low, high) for _ in range(POOL_SIZE)]


# -- measuring ------------------------------------------------------------------

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """Return this process's resident set size now (Linux; else the peak)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE
    except OSError:
        return peak_rss_bytes()


def peak_rss_bytes() -> int:
    """Return this process's peak resident set size."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _percentile(ordered: Sequence[float], q: float) -> float:
    """Return the *q*-quantile (0..1) of sorted values, nearest rank."""
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


#: The lateness quantiles (in %) a run records as ``quantiles_ms``: a compact
#: sketch of the whole distribution, for the performance page's charts. The
#: fine steps at the top are where schedulers differ: the tail.
LATENESS_QUANTILES = (
    0.0,
    1.0,
    5.0,
    10.0,
    25.0,
    50.0,
    75.0,
    90.0,
    95.0,
    99.0,
    99.9,
    100.0,
)


def lateness_stats(late: Sequence[float]) -> Result:
    """Summarise start-minus-due times in seconds; NaN marks a job never run.

    ``quantiles_ms`` holds the lateness at each of :data:`LATENESS_QUANTILES`
    (nearest rank, like p50 and p99), in milliseconds.
    """
    ran = sorted(x for x in late if x == x)
    result: Result = {
        "never_run": len(late) - len(ran),
        "early": sum(1 for x in ran if x < 0),
    }
    if ran:
        result["p50_ms"] = _percentile(ran, 0.50) * 1e3
        result["p99_ms"] = _percentile(ran, 0.99) * 1e3
        result["max_ms"] = ran[-1] * 1e3
        result["min_ms"] = ran[0] * 1e3
        result["quantiles_ms"] = [
            _percentile(ran, q / 100) * 1e3 for q in LATENESS_QUANTILES
        ]
    return result


#: W3's drift compares the lateness of this share of the first-due jobs with
#: that of the same share of the last-due.
DRIFT_SHARE = 0.10


def drift_stats(late: Sequence[float], due: Sequence[float]) -> Result:
    """Whether the run kept up: lateness at the end of W3 against its start.

    ``drift_ms`` is the median lateness of the last-due :data:`DRIFT_SHARE`
    of the jobs minus that of the first-due share (an engine that falls
    behind, and stays behind, shows it here: its p50 may hide it); ``end_ms``
    is the lateness of the last-due job. Jobs never run are left out.
    """
    n = len(late)
    ranked = sorted(range(n), key=due.__getitem__)
    share = max(1, int(n * DRIFT_SHARE))
    result: Result = {}
    head = sorted(late[i] for i in ranked[:share] if late[i] == late[i])
    tail = sorted(late[i] for i in ranked[-share:] if late[i] == late[i])
    if head and tail:
        result["drift_ms"] = (_percentile(tail, 0.5) - _percentile(head, 0.5)) * 1e3
    if n and late[ranked[-1]] == late[ranked[-1]]:
        result["end_ms"] = late[ranked[-1]] * 1e3
    return result


# -- checking outcomes ---------------------------------------------------------


def verify_runs(runs: bytearray, victims: Sequence[int]) -> int:
    """Count the wrong outcomes: a cancelled job that ran, a live one that did not."""
    wrong = sum(1 for i in victims if runs[i])
    for i in victims:
        runs[i] = 1
    return wrong + runs.count(0) + sum(1 for b in runs if b > 1)


def cancel_victims(n: int, seed: int) -> list[int]:
    """The 10% of *n* jobs W4 cancels, in random order."""
    return random.Random(seed + 4).sample(range(n), n // 10)


#: W4 runs the surviving jobs (to check that they all run) up to this size;
#: above it, it checks the pending count and the cancelled flags instead.
W4_RUN_LIMIT = 100_000


def order_kept(order: Sequence[int], slots: Sequence[int] | None = None) -> bool:
    """``True`` if jobs ran in scheduling order (per queue, given the queues)."""
    if slots is None:
        return all(a < b for a, b in itertools.pairwise(order))
    last: dict[int, int] = {}
    for i in order:
        slot = slots[i]
        if last.get(slot, -1) > i:
            return False
        last[slot] = i
    return True


def window_size(n: int) -> int:
    """W6: how many of the *n* jobs come due during the run."""
    return min(WINDOW_MAX, max(1, n // 20))
