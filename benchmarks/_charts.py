"""Draw the performance page's charts as SVG files, with matplotlib.

:func:`draw` turns a run's summaries into ``w1.svg`` ... ``w7.svg`` (each
workload's key metric, grouped bars on a log scale), ``w1-scaling.svg``
(W1's cost per call against N, log-log) and ``w3-lateness.svg`` (W3's
lateness distributions). :mod:`benchmarks._chartdata` picks the figures;
this module only draws them.

The files are reproducible: the same summaries and matplotlib version give
byte-identical SVGs (fixed ids, text kept as text, no date), so committing
them shows a diff only when the numbers change. No pyplot: figures are
drawn on their own canvas, and nothing here needs a display.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

from ._chartdata import (
    BarChart,
    Panel,
    Series,
    bar_chart,
    lateness_panels,
    scaling_lines,
)
from ._common import LATENESS_QUANTILES
from ._plan import (
    AIOJOBS,
    AIOSCHEDULER,
    ASYNCIO_FLOOR,
    LEGACY,
    PORTABLE,
    TRIO_FLOOR,
    TRIO_HEAP,
)
from ._workloads import WORKLOADS

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

#: rcParams for every chart: reproducible SVG, small text.
STYLE: dict[RcKeyType, Any] = {
    "svg.hashsalt": "aioscheduler-benchmarks",  # fixed clip-path and glyph ids
    "svg.fonttype": "none",  # text as text: smaller, and no font's glyphs
    # Laid out in DejaVu Sans (shipped with matplotlib: the same layout on any
    # machine); the SVG names fallbacks for a browser without it, all narrower.
    "font.family": ["sans-serif"],
    "font.sans-serif": ["DejaVu Sans", "Helvetica", "Arial", "sans-serif"],
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.5,
    "hatch.linewidth": 0.6,
    "legend.frameon": False,
    "legend.fontsize": 7,
}

#: One colour per implementation, whatever else a run holds: aioscheduler 2
#: in blues, the bare-loop floors in greys, the other libraries apart.
COLOURS = {
    AIOSCHEDULER: "#1f77b4",
    PORTABLE: "#6baed6",
    ASYNCIO_FLOOR: "#525252",
    TRIO_FLOOR: "#a3a3a3",
    TRIO_HEAP: "#8c564b",  # a grey of its own would be lost beside the others
    AIOJOBS: "#2ca02c",
    LEGACY: "#ff7f0e",
    "apscheduler": "#9467bd",
}
#: for implementations not listed above, in order of their names
SPARE_COLOURS = ("#e377c2", "#bcbd22", "#17becf", "#d62728", "#393b79")

#: backend -> bar hatching, line style and marker (the colour is the impl's).
#: Hatches of lines only: a dotted hatch is thousands of circles in the SVG.
HATCHES = {"asyncio": "", "uvloop": "////", "trio": "\\\\"}
LINESTYLES = {"asyncio": "-", "uvloop": "--", "trio": ":"}
MARKERS = {"asyncio": "o", "uvloop": "s", "trio": "^"}

#: lateness at or below this (ms) is drawn at it: a log axis has no zero
LATENESS_FLOOR_MS = 1e-3

#: the names :func:`draw` writes, so a rerun can remove charts no longer drawn
CHART_NAME = re.compile(r"w\d+(-[a-z]+)?\.svg")


@dataclass(frozen=True)
class Chart:
    """A chart written: its file name, a title and what to read from it."""

    name: str
    title: str
    caption: str


def _colour(impl: str, spare: dict[str, str]) -> str:
    if impl in COLOURS:
        return COLOURS[impl]
    if impl not in spare:
        spare[impl] = SPARE_COLOURS[len(spare) % len(SPARE_COLOURS)]
    return spare[impl]


class _Palette:
    """Colours for the implementations of one set of charts, fixed by name."""

    def __init__(self, impls: Sequence[str]) -> None:
        self._spare: dict[str, str] = {}
        for impl in sorted(set(impls) - set(COLOURS)):
            _colour(impl, self._spare)

    def colour(self, series: Series) -> str:
        return _colour(series.impl, self._spare)


def _short(value: float) -> str:
    """A bar's value in three significant figures: 2.06, 15.1, 293k, 1.2M."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def _log_axis(axis: Any, low: float, high: float) -> None:
    """Label a log axis in plain numbers, at 1, 2 and 5 of each decade.

    A range of a decade or two (the usual here) would otherwise show one or
    two labels, in powers of ten. Over more than three decades, 1 of each.
    """
    subs = (1.0,) if high / low > 1e3 else (1.0, 2.0, 5.0)
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda value, _: _short(value)))
    axis.set_minor_locator(NullLocator())


def _title(ax: Axes, figure: Figure, lines: Sequence[str]) -> None:
    """A left-aligned title, wrapped to the width the axes get."""
    # ~13 characters per inch at the title's size; the legend takes ~2.4 in.
    width = max(30, int((figure.get_figwidth() - 2.4) * 13))
    ax.set_title("\n".join(textwrap.fill(line, width) for line in lines), loc="left")


def _save(figure: Figure, path: Path) -> None:
    # No date and a fixed hash salt: identical input, identical file.
    figure.savefig(path, format="svg", metadata={"Date": None})


def _legend(ax: Axes, handles: Sequence[Any]) -> None:
    ax.legend(
        handles=list(handles), loc="upper left", bbox_to_anchor=(1.01, 1.0), ncols=1
    )


def _bars(chart: BarChart, palette: _Palette, path: Path) -> None:
    count = sum(len(g.bars) for g in chart.groups)
    width = min(11.0, max(6.0, 3.5 + 0.32 * count))
    figure = Figure(figsize=(width, 3.6), layout="constrained")
    ax = figure.add_subplot()
    x = 0.0
    centres, names = [], []
    seen: dict[Series, Patch] = {}
    for group in chart.groups:
        start = x
        for bar in group.bars:
            colour = palette.colour(bar.series)
            hatch = HATCHES.get(bar.series.backend, "xx")
            ax.bar(
                x,
                bar.value,
                width=0.85,
                color=colour,
                hatch=hatch,
                edgecolor="white" if not hatch else "#333333",
                linewidth=0.3,
            )
            if bar.runs > 1 and bar.high > bar.low:
                ax.errorbar(
                    x,
                    bar.value,
                    yerr=[[bar.value - bar.low], [bar.high - bar.value]],
                    fmt="none",
                    ecolor="black",
                    elinewidth=0.6,
                    capsize=1.5,
                )
            ax.annotate(
                _short(bar.value),
                (x, bar.high),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                va="bottom",
                rotation=90,
                fontsize=6,
            )
            seen.setdefault(
                bar.series,
                Patch(
                    facecolor=colour,
                    hatch=hatch,
                    edgecolor="#333333" if hatch else colour,
                    linewidth=0.3,
                    label=bar.series.label,
                ),
            )
            x += 1.0
        centres.append((start + x - 1.0) / 2)
        names.append(group.label)
        x += 0.8  # the gap between groups
    ax.set_yscale("log")
    low = min(b.low for g in chart.groups for b in g.bars)
    high = max(b.high for g in chart.groups for b in g.bars)
    # From a power of ten below the lowest bar (a bar shows its length from
    # the axis), and room above the tallest for its value, written upwards.
    bottom = 10 ** math.floor(math.log10(low))
    ax.set_ylim(bottom, high * 8)
    _log_axis(ax.yaxis, bottom, high * 8)
    ax.set_xticks(centres, names)
    ax.tick_params(axis="x", length=0)
    ax.grid(axis="x", visible=False)
    ax.set_axisbelow(True)
    better = "higher" if chart.bigger_is_better else "lower"
    unit = f" ({chart.unit})" if chart.unit else ""
    ax.set_ylabel(f"{chart.label}{unit}, log scale")
    _title(ax, figure, [chart.title, f"{chart.label}{unit}: {better} is better"])
    order = sorted(seen, key=lambda s: s.order)
    _legend(ax, [seen[s] for s in order])
    _save(figure, path)


def _size_label(n: float) -> str:
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:g}{suffix}"
    return f"{n:g}"


def _scaling(lines: Sequence[Any], palette: _Palette, path: Path) -> None:
    figure = Figure(figsize=(7.5, 3.6), layout="constrained")
    ax = figure.add_subplot()
    sizes = sorted({n for line in lines for n, _ in line.points})
    handles = []
    for line in lines:
        xs = [n for n, _ in line.points]
        ys = [v for _, v in line.points]
        (drawn,) = ax.plot(
            xs,
            ys,
            color=palette.colour(line.series),
            linestyle=LINESTYLES.get(line.series.backend, "-."),
            marker=MARKERS.get(line.series.backend, "D"),
            markersize=4,
            linewidth=1.2,
            label=line.series.label,
        )
        handles.append(drawn)
    ax.set_xscale("log")
    ax.set_yscale("log")
    values = [v for line in lines for _, v in line.points]
    _log_axis(ax.yaxis, min(values), max(values))
    ax.set_xticks(sizes, [_size_label(n) for n in sizes])
    ax.minorticks_off()
    ax.set_xlabel("N, jobs pending (log scale)")
    ax.set_ylabel("µs per scheduling call (log scale)")
    _title(
        ax,
        figure,
        ["W1: cost per scheduling call against N pending", "lower is better"],
    )
    _legend(ax, handles)
    _save(figure, path)


def _lateness(panels: Sequence[Panel], palette: _Palette, path: Path) -> None:
    figure = Figure(
        figsize=(max(4.5, 3.6 * len(panels)) + 2.2, 3.8), layout="constrained"
    )
    axes = figure.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    # Quantiles evenly spaced, so the tail (95, 99, 99.9 %) gets as much room
    # as the bulk; the tick labels give each row's quantile.
    rows = {q: i for i, q in enumerate(LATENESS_QUANTILES)}
    labels = [f"{q:g}" for q in LATENESS_QUANTILES]
    labels[0], labels[-1] = "0 (min)", "100 (max)"
    seen: dict[Series, Line2D] = {}
    partial = False
    drawn_ms = [
        max(ms, LATENESS_FLOOR_MS)
        for panel in panels
        for curve in panel.curves
        for _, ms in curve.points
    ]
    for ax, panel in zip(axes, panels, strict=True):
        ax.set_title(f"W3, {panel.title}", loc="left")
        ax.set_xscale("log")
        ax.set_yticks(range(len(labels)), labels)
        ax.set_ylim(-0.5, len(labels) - 0.5)
        ax.set_xlabel("lateness (ms, log scale)")
        if drawn_ms:
            _log_axis(ax.xaxis, min(drawn_ms), max(drawn_ms))
        if not panel.curves:
            ax.text(
                0.5,
                0.5,
                "no distribution recorded",
                transform=ax.transAxes,
                ha="center",
                va="center",
                color="#666666",
            )
            ax.set_xlim(LATENESS_FLOOR_MS, 1e3)
            continue
        for curve in panel.curves:
            partial |= curve.partial
            xs = [max(ms, LATENESS_FLOOR_MS) for _, ms in curve.points]
            ys = [rows.get(q, 0) for q, _ in curve.points]
            # Four recorded quantiles joined by lines would invent the rows
            # between them: a partial sketch is drawn as points only.
            style = "none" if curve.partial else LINESTYLES.get(curve.series.backend)
            (drawn,) = ax.plot(
                xs,
                ys,
                color=palette.colour(curve.series),
                linestyle=style or "-.",
                marker=MARKERS.get(curve.series.backend, "D"),
                markersize=3,
                linewidth=1.0,
                label=curve.series.label,
            )
            seen.setdefault(curve.series, drawn)
    axes[0].set_ylabel("quantile (%)")
    if partial:
        figure.supxlabel(
            "Only min, p50, p99 and max were recorded in this results file; "
            "the next full run records 12 quantiles.",
            fontsize=7,
            color="#666666",
        )
    if seen:
        _legend(axes[-1], [seen[s] for s in sorted(seen, key=lambda s: s.order)])
    _save(figure, path)


#: chart file -> what to read from it (the page puts it above the chart)
CAPTIONS = {
    "w1.svg": "The time one scheduling call takes with N jobs already pending: "
    "aioscheduler 2's `start_at` beside the bare event-loop floors "
    "(`loop.call_at`; Trio's `start_soon` and a one-task heap's `heappush`) "
    "and aioscheduler 1.4.2's `schedule`. Lower is better.",
    "w1-scaling.svg": "The same cost per call against the number of jobs "
    "pending, log-log: a flat line is a cost that does not grow with N. "
    "Only aioscheduler 2 on asyncio runs at 10M (see the reductions below).",
    "w2.svg": "How fast a burst of N jobs, all due at one instant, gets run: "
    "jobs per second from the due instant to the last job's end. Higher is "
    "better.",
    "w3.svg": "The 99th percentile of lateness (a job's start minus its "
    "deadline) with N jobs due over 5 s; the floors show what the event loop "
    "gives by itself. Lower is better.",
    "w3-lateness.svg": "The whole lateness distribution behind that figure, "
    "at the largest N run: each curve is one implementation and backend, "
    "from the earliest job (bottom) to the latest (top), so the top rows are "
    "the tail. Further left is better; lateness below 1 µs is drawn at 1 µs.",
    "w4.svg": "What one cancel costs with N jobs pending; it should stay "
    "about the same from 100k to 1M. Lower is better.",
    "w5.svg": "Jobs per second through one queue (serial) and through a "
    "Manager of 8 queues. Higher is better.",
    "w6.svg": "Seconds to schedule N jobs across a Manager of 20 schedulers "
    "(aioscheduler 1.4.2 only at 200k: its Manager sorts its schedulers on "
    "every call). Lower is better.",
    "w7.svg": "What each job's completion costs with N jobs running at once, "
    "from their release to the last one's end; the floor is a bare task "
    "that ends. Lower is better.",
}


def _chart(name: str, title: str) -> Chart:
    return Chart(name, title, CAPTIONS.get(name, ""))


def draw(summaries: Sequence[dict[str, Any]], outdir: Path) -> list[Chart]:
    """Write the charts of *summaries* into *outdir*; return those written.

    Charts without data are not drawn, and files of earlier runs that this
    run did not draw are removed, so *outdir* holds exactly this run's.
    """
    outdir.mkdir(parents=True, exist_ok=True)
    palette = _Palette([s["impl"] for s in summaries])
    charts: list[Chart] = []
    with matplotlib.rc_context(STYLE):
        for workload in WORKLOADS:
            bars = bar_chart(summaries, workload)
            if bars is not None:
                charts.append(_chart(f"{workload.lower()}.svg", bars.title))
                _bars(bars, palette, outdir / charts[-1].name)
            if workload == "W1":
                lines = scaling_lines(summaries)
                if len({n for line in lines for n, _ in line.points}) > 1:
                    charts.append(
                        _chart("w1-scaling.svg", "W1: cost per call against N")
                    )
                    _scaling(lines, palette, outdir / charts[-1].name)
            if workload == "W3":
                panels = lateness_panels(summaries)
                if panels:
                    charts.append(
                        _chart("w3-lateness.svg", "W3: lateness distributions")
                    )
                    _lateness(panels, palette, outdir / charts[-1].name)
    written = {c.name for c in charts}
    for old in outdir.glob("*.svg"):
        if CHART_NAME.fullmatch(old.name) and old.name not in written:
            old.unlink()
    return charts


__all__ = ["Chart", "draw"]
