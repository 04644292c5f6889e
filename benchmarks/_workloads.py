"""The catalogue of the benchmark suite: workloads W1-W7, backends, metrics.

What each workload does, at which sizes and in which variants, and how each
figure is labelled; the plan, the report and ``python -m benchmarks.live``
all read it from here.
"""

from __future__ import annotations

from dataclasses import dataclass

#: ``uvloop`` means asyncio on uvloop's event loop.
BACKENDS = ("asyncio", "uvloop", "trio")


@dataclass(frozen=True)
class Workload:
    """One workload: what it does, its sizes and its variants."""

    id: str
    title: str
    #: the sizes of the full suite
    sizes: tuple[int, ...]
    #: small sizes for development (``--quick``)
    quick: tuple[int, ...]
    variants: tuple[str, ...]


WORKLOADS: dict[str, Workload] = {
    w.id: w
    for w in (
        Workload(
            "W1",
            "schedule N timed jobs at random times 10 s-1 h ahead",
            (10_000, 100_000, 1_000_000, 10_000_000),
            (10_000, 100_000),
            ("start_at", "schedule", "start_after"),
        ),
        Workload(
            "W2",
            "burst: N jobs all due at the same instant",
            (10_000, 100_000),
            (10_000,),
            ("burst",),
        ),
        Workload(
            "W3",
            "steady load: N jobs due over 5 s, evenly spaced or at random times",
            (50_000, 200_000),
            (20_000,),
            ("steady", "random"),
        ),
        Workload(
            "W4",
            "cancel 10% of N pending jobs",
            (100_000, 1_000_000),
            (10_000, 100_000),
            ("cancel",),
        ),
        Workload(
            "W5",
            "N jobs through a QueuedScheduler / a Manager of 8",
            (100_000,),
            (20_000,),
            ("serial", "manager8"),
        ),
        Workload(
            "W6",
            "Manager(20) holding N pending jobs, then a window coming due",
            (10_000_000,),
            (200_000,),
            ("manager20",),
        ),
        Workload(
            "W7",
            "completion: N jobs running at once, then all released",
            (2_000, 8_000),
            (2_000, 8_000),
            ("release",),
        ),
    )
}

#: metric key -> (label, unit, format); what the summary tables show.
METRICS: dict[str, tuple[str, str, str]] = {
    "us_per_call": ("scheduling call", "µs", "{:.3f}"),
    "rss_per_job": ("RSS per pending job", "B", "{:.0f}"),
    "tm_per_job": ("tracemalloc per pending job", "B", "{:.0f}"),
    "first_ms": ("first job start after due", "ms", "{:.2f}"),
    "all_ms": ("all jobs finished after due", "ms", "{:.1f}"),
    "jobs_per_s": ("throughput", "jobs/s", "{:,.0f}"),
    "p50_ms": ("lateness p50", "ms", "{:.3f}"),
    "p99_ms": ("lateness p99", "ms", "{:.3f}"),
    "max_ms": ("lateness max", "ms", "{:.3f}"),
    "drift_ms": ("lateness drift (last 10% vs first 10%)", "ms", "{:.3f}"),
    "end_ms": ("lateness at the end", "ms", "{:.3f}"),
    "never_run": ("jobs never run", "", "{:.0f}"),
    "early": ("jobs started early", "", "{:.0f}"),
    "us_per_cancel": ("cancel", "µs", "{:.3f}"),
    "wrong_runs": ("cancelled that ran + live that did not", "", "{:.0f}"),
    "order_ok": ("order kept", "", "{}"),
    "schedule_s": ("scheduling all jobs", "s", "{:.2f}"),
    "peak_rss_mb": ("peak RSS", "MB", "{:,.0f}"),
    "lost": ("due jobs not run exactly once", "", "{:.0f}"),
    "far_ran": ("far jobs run (must be 0)", "", "{:.0f}"),
    "us_per_completion": ("completion", "µs", "{:.2f}"),
}
