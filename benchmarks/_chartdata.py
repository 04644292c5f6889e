"""What the performance page's charts show, picked from a run's summaries.

Plain data, no matplotlib: :mod:`benchmarks._charts` draws what this module
selects, so the choice of figures can be checked without a plotting library.
Missing data (a quick run, a skipped implementation, a failed run) leaves a
chart or a bar out; it is never an error.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ._common import LATENESS_QUANTILES
from ._plan import IMPL_LABELS
from ._workloads import METRICS, WORKLOADS

Summary = dict[str, Any]

#: workload -> (the metric its bar chart shows, whether bigger is better)
KEY_METRICS: dict[str, tuple[str, bool]] = {
    "W1": ("us_per_call", False),
    "W2": ("jobs_per_s", True),
    "W3": ("p99_ms", False),
    "W4": ("us_per_cancel", False),
    "W5": ("jobs_per_s", True),
    "W6": ("schedule_s", False),
    "W7": ("us_per_completion", False),
}

#: Workloads whose variants are separate comparisons (W3's evenly spaced and
#: random deadlines, W5's one queue and Manager of 8): a group of bars each.
#: Elsewhere the variants are forms of one figure (W1's ``start_at`` and
#: ``schedule``), and each implementation shows its first (see :func:`_rank`).
SPLIT_VARIANTS = frozenset({"W3", "W5"})

BACKEND_ORDER = ("asyncio", "uvloop", "trio")

_IMPL_ORDER = list(IMPL_LABELS)


@dataclass(frozen=True)
class Series:
    """One implementation on one backend: a colour and a legend entry."""

    impl: str
    backend: str
    #: the variant, where a chart shows different ones (W1: ``start_at``)
    variant: str = ""

    @property
    def label(self) -> str:
        name = IMPL_LABELS.get(self.impl, self.impl)
        form = f" · {self.variant}" if self.variant else ""
        return f"{name} · {self.backend}{form}"

    @property
    def order(self) -> tuple[int, str, int, str]:
        """Sort key: the report's implementation order, then the backend."""
        known = self.impl in _IMPL_ORDER
        return (
            _IMPL_ORDER.index(self.impl) if known else len(_IMPL_ORDER),
            "" if known else self.impl,  # unknown ones (APScheduler) by name
            BACKEND_ORDER.index(self.backend)
            if self.backend in BACKEND_ORDER
            else len(BACKEND_ORDER),
            self.backend,
        )


@dataclass(frozen=True)
class Bar:
    """One figure: the median over the runs, and their range."""

    series: Series
    value: float
    low: float
    high: float
    runs: int


@dataclass(frozen=True)
class Group:
    """The bars of one size (and variant, and contended flag)."""

    label: str
    bars: tuple[Bar, ...]


@dataclass(frozen=True)
class BarChart:
    """One workload's key metric, per size, for every implementation run."""

    workload: str
    title: str
    metric: str
    label: str
    unit: str
    bigger_is_better: bool
    groups: tuple[Group, ...]


@dataclass(frozen=True)
class Line:
    """A series' figure against N: ``(N, value)`` points in order of N."""

    series: Series
    points: tuple[tuple[int, float], ...]


@dataclass(frozen=True)
class Curve:
    """A series' lateness at some of :data:`LATENESS_QUANTILES`."""

    series: Series
    #: ``(quantile in %, lateness in ms)``, in order of the quantile
    points: tuple[tuple[float, float], ...]
    #: only min, p50, p99 and max were recorded (results from before the
    #: runs kept ``quantiles_ms``)
    partial: bool


@dataclass(frozen=True)
class Panel:
    """The W3 lateness distributions of one variant and contended flag."""

    title: str
    curves: tuple[Curve, ...]


def _usable(summaries: Iterable[Summary], workload: str) -> list[Summary]:
    return [
        s
        for s in summaries
        if s["workload"] == workload and not s.get("tracemalloc", False)
    ]


def _rank(workload: str, variant: str) -> tuple[int, str]:
    """Which variant an implementation shows first: the catalogue's order."""
    variants = WORKLOADS[workload].variants
    known = variant in variants
    return (variants.index(variant) if known else len(variants), variant)


def _size(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return f"{n:,}"


def _figure(summary: Summary, metric: str) -> tuple[float, float, float] | None:
    """``(median, min, max)`` of a positive *metric*, else ``None``.

    Charts use log scales, where zero (a run that did not finish: W2 reports
    0 jobs/s) cannot be drawn; the tables below the charts show it.
    """
    entry = summary["metrics"].get(metric)
    if not entry or "median" not in entry:
        return None
    values = (float(entry["median"]), float(entry["min"]), float(entry["max"]))
    return values if min(values) > 0 else None


def _pick(
    summaries: Sequence[Summary], workload: str, metric: str
) -> dict[tuple[Any, ...], Summary]:
    """(group key, impl, backend) -> the summary shown: first variant with data."""
    split = workload in SPLIT_VARIANTS
    chosen: dict[tuple[Any, ...], Summary] = {}
    ranked = sorted(
        (s for s in _usable(summaries, workload) if _figure(s, metric) is not None),
        key=lambda s: _rank(workload, s["variant"]),
    )
    for s in ranked:
        group = (
            _rank(workload, s["variant"]) if split else (),
            bool(s.get("contended", False)),
            s["size"],
        )
        chosen.setdefault((group, s["impl"], s["backend"]), s)
    return chosen


def _series(s: Summary, labelled: bool) -> Series:
    return Series(s["impl"], s["backend"], s["variant"] if labelled else "")


def _labelled(workload: str, picked: Iterable[Summary]) -> bool:
    """Name the variant in the legend where one chart shows several forms."""
    if workload in SPLIT_VARIANTS:
        return False
    return len({s["variant"] for s in picked}) > 1


def bar_chart(summaries: Sequence[Summary], workload: str) -> BarChart | None:
    """The bar chart of *workload*'s key metric, or ``None`` without data."""
    metric, bigger = KEY_METRICS[workload]
    picked = _pick(summaries, workload, metric)
    if not picked:
        return None
    labelled = _labelled(workload, picked.values())
    groups: dict[tuple[Any, ...], list[Bar]] = {}
    names: dict[tuple[Any, ...], str] = {}
    for (group, _, _), s in picked.items():
        median, low, high = _figure(s, metric) or (0.0, 0.0, 0.0)
        bar = Bar(_series(s, labelled), median, low, high, int(s.get("runs", 1)))
        groups.setdefault(group, []).append(bar)
        parts = [s["variant"]] if workload in SPLIT_VARIANTS else []
        parts.append(f"N = {_size(s['size'])}")
        if group[1]:
            parts.append("contended")
        names[group] = ", ".join(parts)
    label, unit, _ = METRICS.get(metric, (metric, "", ""))
    return BarChart(
        workload=workload,
        title=f"{workload}: {WORKLOADS[workload].title}",
        metric=metric,
        label=label,
        unit=unit,
        bigger_is_better=bigger,
        groups=tuple(
            Group(names[key], tuple(sorted(groups[key], key=lambda b: b.series.order)))
            for key in sorted(groups)  # (variant's rank, contended, size)
        ),
    )


def scaling_lines(
    summaries: Sequence[Summary], workload: str = "W1", metric: str = "us_per_call"
) -> list[Line]:
    """*metric* against N, one line per implementation and backend."""
    picked = _pick(summaries, workload, metric)
    labelled = _labelled(workload, picked.values())
    lines: dict[Series, list[tuple[int, float]]] = {}
    for (group, _, _), s in picked.items():
        if group[1]:  # contended runs are another comparison
            continue
        figure = _figure(s, metric)
        if figure is not None:
            lines.setdefault(_series(s, labelled), []).append((s["size"], figure[0]))
    return [
        Line(series, tuple(sorted(points)))
        for series, points in sorted(lines.items(), key=lambda kv: kv[0].order)
    ]


#: the quantiles every W3 run has recorded, with or without ``quantiles_ms``
_RECORDED = ((0.0, "min_ms"), (50.0, "p50_ms"), (99.0, "p99_ms"), (100.0, "max_ms"))


def _quantiles(s: Summary) -> tuple[tuple[tuple[float, float], ...], bool] | None:
    """A summary's lateness sketch: the median over its runs, per quantile.

    The median of each quantile over the runs is not a quantile of all the
    runs' jobs pooled, but the runs are repetitions of one workload, and it
    is robust to one disturbed run, as the tables' medians are.
    """
    metrics = s["metrics"]
    sketches = [
        v
        for v in metrics.get("quantiles_ms", {}).get("values", [])
        if isinstance(v, list) and len(v) == len(LATENESS_QUANTILES)
    ]
    if sketches:
        values = [statistics.median(column) for column in zip(*sketches, strict=True)]
        return tuple(zip(LATENESS_QUANTILES, values, strict=True)), False
    known = [
        (q, float(metrics[name]["median"]))
        for q, name in _RECORDED
        if "median" in metrics.get(name, {})
    ]
    return (tuple(known), True) if known else None


def lateness_panels(summaries: Sequence[Summary], workload: str = "W3") -> list[Panel]:
    """One panel per variant and contended flag present, at its largest N."""
    rows = _usable(summaries, workload)
    keys = sorted(
        {(s["variant"], bool(s.get("contended", False))) for s in rows},
        key=lambda k: (_rank(workload, k[0]), k[1]),
    )
    panels = []
    for variant, contended in keys:
        mine = [
            s
            for s in rows
            if s["variant"] == variant
            and bool(s.get("contended", False)) == contended
            and _quantiles(s) is not None
        ]
        size = max((s["size"] for s in mine), default=None)
        curves = []
        for s in mine:
            sketch = _quantiles(s)
            if s["size"] == size and sketch is not None:
                curves.append(Curve(_series(s, False), *sketch))
        curves.sort(key=lambda c: c.series.order)
        title = variant + (f", N = {_size(size)}" if size else "")
        if contended:
            title += ", contended"
        panels.append(Panel(title, tuple(curves)))
    return panels


__all__ = [
    "KEY_METRICS",
    "Bar",
    "BarChart",
    "Curve",
    "Group",
    "Line",
    "Panel",
    "Series",
    "bar_chart",
    "lateness_panels",
    "scaling_lines",
]
