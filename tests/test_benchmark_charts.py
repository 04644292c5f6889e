"""The performance page's charts: what they pick from a run, and that they draw.

The benchmarks are not part of the package, but the page's charts are drawn
from whatever a run holds (quick runs, skipped implementations, failed runs,
implementations and W3 variants added later), so that choice is tested on
small synthetic summaries here. Drawing needs matplotlib, which only
``nox -s bench`` installs: without it those tests skip.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from benchmarks._chartdata import bar_chart, lateness_panels, scaling_lines
from benchmarks._common import LATENESS_QUANTILES, lateness_stats
from benchmarks._plan import LEGACY


def _summary(
    workload: str,
    variant: str,
    size: int,
    impl: str,
    backend: str,
    runs: int = 1,
    contended: bool | None = None,
    tracemalloc: bool = False,
    **metrics: Any,
) -> dict[str, Any]:
    """A summary as ``_report.summarise`` makes it, with the given metrics."""
    entries: dict[str, Any] = {}
    for name, value in metrics.items():
        if isinstance(value, list):
            entries[name] = {"values": value}
        else:
            entries[name] = {"median": value, "min": value, "max": value, "n": runs}
    summary = {
        "workload": workload,
        "variant": variant,
        "size": size,
        "impl": impl,
        "backend": backend,
        "tracemalloc": tracemalloc,
        "runs": runs,
        "failed": [],
        "metrics": entries,
    }
    if contended is not None:
        summary["contended"] = contended
    return summary


SKETCH = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 0.8, 1.0, 1.2, 2.0, 5.0, 9.0]


def _run() -> list[dict[str, Any]]:
    """A small run: W1 at two sizes, W2 with a failed figure, W3 in variants."""
    return [
        _summary("W1", "start_at", 10_000, "aioscheduler", "asyncio", us_per_call=1.4),
        _summary("W1", "schedule", 10_000, "aioscheduler", "asyncio", us_per_call=2.0),
        _summary("W1", "start_at", 100_000, "aioscheduler", "asyncio", us_per_call=1.7),
        _summary("W1", "call_at", 10_000, "asyncio-floor", "asyncio", us_per_call=1.9),
        _summary("W1", "schedule", 10_000, LEGACY, "asyncio", us_per_call=5.0),
        _summary(
            "W1", "start_at", 100_000, "aioscheduler", "asyncio", tracemalloc=True
        ),
        # an implementation the plan does not know (yet): drawn all the same
        _summary("W2", "burst", 10_000, "celery-beat", "asyncio", jobs_per_s=9e3),
        _summary("W2", "burst", 10_000, "aioscheduler", "trio", jobs_per_s=7e4),
        _summary("W2", "burst", 10_000, "aioscheduler", "asyncio", jobs_per_s=0.0),
        _summary("W2", "burst", 10_000, "aiojobs", "uvloop"),  # every run failed
        _summary(
            "W3",
            "steady",
            20_000,
            "aioscheduler",
            "asyncio",
            runs=2,
            p99_ms=2.0,
            quantiles_ms=[SKETCH, [2 * x for x in SKETCH]],
        ),
        _summary(
            "W3",
            "random",
            20_000,
            "trio-floor",
            "trio",
            contended=True,
            p99_ms=3.0,
            min_ms=0.01,
            p50_ms=0.5,
            max_ms=9.0,
        ),
        _summary("W3", "random", 20_000, "aioscheduler", "trio", contended=False),
    ]


def test_lateness_stats_records_the_quantiles() -> None:
    late = [i / 1e4 for i in range(1, 1001)] + [float("nan")]
    stats = lateness_stats(late)
    sketch = stats["quantiles_ms"]
    assert len(sketch) == len(LATENESS_QUANTILES)
    assert sketch == sorted(sketch)
    assert sketch[0] == stats["min_ms"]
    assert sketch[-1] == stats["max_ms"]
    assert sketch[LATENESS_QUANTILES.index(50.0)] == stats["p50_ms"]
    assert sketch[LATENESS_QUANTILES.index(99.0)] == stats["p99_ms"]
    assert "quantiles_ms" not in lateness_stats([float("nan")])


def test_bars_show_each_implementation_once_per_group() -> None:
    chart = bar_chart(_run(), "W1")
    assert chart is not None
    assert (chart.metric, chart.bigger_is_better) == ("us_per_call", False)
    assert [g.label for g in chart.groups] == ["N = 10k", "N = 100k"]
    small = chart.groups[0]
    # aioscheduler 2 shows its first form (start_at), not also `schedule`;
    # the legend names the forms, as they differ between implementations.
    assert [(b.series.impl, b.series.variant, b.value) for b in small.bars] == [
        ("aioscheduler", "start_at", 1.4),
        ("asyncio-floor", "call_at", 1.9),
        (LEGACY, "schedule", 5.0),
    ]
    assert small.bars[0].series.label == "aioscheduler 2 · asyncio · start_at"


def test_bars_leave_out_what_a_log_scale_cannot_show() -> None:
    chart = bar_chart(_run(), "W2")
    assert chart is not None
    assert chart.bigger_is_better
    bars = chart.groups[0].bars
    # 0 jobs/s (a run that did not finish) and a failed figure are left out;
    # an unknown implementation comes after the known ones.
    assert [(b.series.impl, b.series.backend) for b in bars] == [
        ("aioscheduler", "trio"),
        ("celery-beat", "asyncio"),
    ]
    assert bars[1].series.label == "celery-beat · asyncio"
    assert bar_chart(_run(), "W7") is None
    assert bar_chart([], "W1") is None


def test_w3_groups_by_variant_and_contended_flag() -> None:
    chart = bar_chart(_run(), "W3")
    assert chart is not None
    assert [g.label for g in chart.groups] == [
        "steady, N = 20k",
        "random, N = 20k, contended",
    ]


def test_scaling_lines_follow_n() -> None:
    lines = scaling_lines(_run())
    ours = lines[0]
    assert (ours.series.impl, ours.series.variant) == ("aioscheduler", "start_at")
    assert ours.points == ((10_000, 1.4), (100_000, 1.7))


def test_lateness_panels_per_variant_and_flag() -> None:
    panels = lateness_panels(_run())
    assert [p.title for p in panels] == [
        "steady, N = 20k",
        "random",  # the run without lateness figures: an empty panel
        "random, N = 20k, contended",
    ]
    steady, empty, contended = panels
    (curve,) = steady.curves
    assert not curve.partial
    # the median over the runs, quantile by quantile
    assert [ms for _, ms in curve.points] == pytest.approx([1.5 * x for x in SKETCH])
    assert empty.curves == ()
    (partial,) = contended.curves
    assert partial.partial
    assert partial.points == ((0.0, 0.01), (50.0, 0.5), (99.0, 3.0), (100.0, 9.0))


def test_charts_draw_reproducibly(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    # Imported by name: matplotlib is not a test dependency, so the type
    # checker of the test suite must not follow this import either.
    charts = importlib.import_module("benchmarks._charts")
    stale = tmp_path / "w7.svg"
    stale.write_text("<svg/>")
    kept = tmp_path / "notes.svg"
    kept.write_text("<svg/>")
    drawn = charts.draw(_run(), tmp_path)
    names = [c.name for c in drawn]
    assert names == ["w1.svg", "w1-scaling.svg", "w2.svg", "w3.svg", "w3-lateness.svg"]
    assert all(c.caption for c in drawn)
    assert not stale.exists()  # an earlier run's chart that this run lacks
    assert kept.exists()  # not a chart's name: not ours to remove
    first = {name: (tmp_path / name).read_bytes() for name in names}
    assert b"no distribution recorded" in first["w3-lateness.svg"]
    charts.draw(_run(), tmp_path)
    assert {name: (tmp_path / name).read_bytes() for name in names} == first
    assert charts.draw([], tmp_path / "empty") == []
