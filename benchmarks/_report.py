"""Aggregate the runs (median, min-max), check the targets, write markdown."""

from __future__ import annotations

import os
import re
import statistics
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ._common import CONTENDED_LEAD
from ._plan import (
    AIOSCHEDULER,
    ASYNCIO_FLOOR,
    IMPL_LABELS,
    IMPL_NOTES,
    REDUCTIONS,
    SUITE_MINUTES,
    TRIO_FLOOR,
    TRIO_HEAP,
)
from ._workloads import METRICS, WORKLOADS

Summary = dict[str, Any]

X = "\u00d7"  # multiplication sign, for ratios
DASH = "\u2013"  # en dash, for ranges

#: metrics where a bigger figure is better (the others: smaller is better)
_BIGGER_IS_BETTER = {"jobs_per_s"}


def summarise(runs: Iterable[dict[str, Any]]) -> list[Summary]:
    """Group runs by case; give each numeric metric's median, min, max and n."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for run in runs:
        case = run["case"]
        key = (
            case["workload"],
            case["variant"],
            case["size"],
            case["impl"],
            case["backend"],
            case["tracemalloc"],
            case.get("contended", False),  # results from before it existed
        )
        groups.setdefault(key, []).append(run)
    summaries = []
    for key, group in groups.items():
        ok = [r["result"] for r in group if r.get("result") is not None]
        metrics: dict[str, dict[str, Any]] = {}
        for name in {k for result in ok for k in result}:
            values = [result[name] for result in ok if name in result]
            numbers = [v for v in values if isinstance(v, int | float)]
            if (
                numbers
                and len(numbers) == len(values)
                and not isinstance(values[0], bool)
            ):
                metrics[name] = {
                    "median": statistics.median(numbers),
                    "min": min(numbers),
                    "max": max(numbers),
                    "n": len(numbers),
                }
            else:
                metrics[name] = {"values": values}
        summaries.append(
            {
                "workload": key[0],
                "variant": key[1],
                "size": key[2],
                "impl": key[3],
                "backend": key[4],
                "tracemalloc": key[5],
                "contended": key[6],
                "runs": len(group),
                "failed": [r["error"] for r in group if r.get("error")],
                "metrics": metrics,
            }
        )
    return summaries


def _find(
    summaries: list[Summary],
    workload: str,
    impl: str,
    backend: str,
    size: int | None = None,
    variant: str | None = None,
    tracemalloc: bool = False,
    contended: bool = False,
) -> Summary | None:
    for s in summaries:
        if (
            s["workload"] == workload
            and s["impl"] == impl
            and s["backend"] == backend
            and (size is None or s["size"] == size)
            and (variant is None or s["variant"] == variant)
            and s["tracemalloc"] == tracemalloc
            and s.get("contended", False) == contended
        ):
            return s
    return None


def median(summary: Summary | None, metric: str) -> float | None:
    """The median of *metric* in *summary*, or ``None``."""
    if summary is None:
        return None
    value = summary["metrics"].get(metric, {}).get("median")
    return None if value is None else float(value)


def _all_values(summary: Summary | None, metric: str) -> list[Any]:
    if summary is None:
        return []
    entry = summary["metrics"].get(metric, {})
    if "values" in entry:
        return list(entry["values"])
    if "median" in entry:
        return [entry["min"], entry["max"]]
    return []


#: workload -> (metric compared, backend -> floor impl) for the "vs floor" column
FLOORS: dict[str, tuple[str, dict[str, str]]] = {
    "W1": (
        "us_per_call",
        {"asyncio": ASYNCIO_FLOOR, "uvloop": ASYNCIO_FLOOR, "trio": TRIO_FLOOR},
    ),
    "W2": (
        "jobs_per_s",
        {"asyncio": ASYNCIO_FLOOR, "uvloop": ASYNCIO_FLOOR, "trio": TRIO_HEAP},
    ),
    "W4": (
        "us_per_cancel",
        {"asyncio": ASYNCIO_FLOOR, "uvloop": ASYNCIO_FLOOR, "trio": TRIO_FLOOR},
    ),
    "W5": (
        "jobs_per_s",
        {"asyncio": ASYNCIO_FLOOR, "uvloop": ASYNCIO_FLOOR, "trio": TRIO_FLOOR},
    ),
    "W7": (
        "us_per_completion",
        {"asyncio": ASYNCIO_FLOOR, "uvloop": ASYNCIO_FLOOR, "trio": TRIO_FLOOR},
    ),
}


def floor_ratio(summaries: list[Summary], s: Summary) -> float | None:
    """*s*'s figure over its backend's floor: same workload, size and mode."""
    if s["workload"] not in FLOORS or s["tracemalloc"]:
        return None
    metric, floors = FLOORS[s["workload"]]
    floor_impl = floors.get(s["backend"])
    if floor_impl is None or floor_impl == s["impl"]:
        return None
    variant = "serial" if s["workload"] == "W5" else None
    floor = _find(
        summaries,
        s["workload"],
        floor_impl,
        s["backend"],
        s["size"],
        variant,
        contended=s.get("contended", False),
    )
    mine, theirs = median(s, metric), median(floor, metric)
    if mine is None or not theirs:
        return None
    return mine / theirs


# -- targets ------------------------------------------------------------------------

Target = dict[str, Any]


def check_targets(summaries: list[Summary], backends: Iterable[str]) -> list[Target]:
    """Evaluate the targets on aioscheduler 2's medians."""
    rows: list[Target] = []

    def row(
        workload: str,
        target: str,
        backend: str,
        measured: str,
        ok: bool | None,
        contended: bool = False,
    ) -> None:
        rows.append(
            {
                "workload": workload,
                "target": target,
                "backend": backend,
                "measured": measured,
                "met": ok,
                "contended": contended,
            }
        )

    def get(
        workload: str,
        backend: str,
        size: int | None = None,
        variant: str | None = None,
        impl: str = AIOSCHEDULER,
        tracemalloc: bool = False,
        contended: bool = False,
    ) -> Summary | None:
        return _find(
            summaries, workload, impl, backend, size, variant, tracemalloc, contended
        )

    def fmt(value: float | None, spec: str = "{:.3g}") -> str:
        return "n/a" if value is None else spec.format(value)

    def at_most(value: float | None, limit: float) -> bool | None:
        return None if value is None else value <= limit

    def at_least(value: float | None, limit: float | None) -> bool | None:
        return None if value is None or limit is None else value >= limit

    for backend in backends:
        trio = backend == "trio"
        floor_name = "trio start_soon floor" if trio else "loop.call_at floor"
        mine = get("W1", backend, 1_000_000, "start_at")
        us = median(mine, "us_per_call")
        if mine is not None:
            row(
                "W1",
                "start_at ≤ 1.5 µs/call at 1M",
                backend,
                f"{fmt(us)} µs",
                at_most(us, 1.5),
            )
            # The trio start_soon floor stops at 100k (see REDUCTIONS).
            at = get("W1", backend, 100_000, "start_at") if trio else mine
            ratio = None if at is None else floor_ratio(summaries, at)
            row(
                "W1",
                f"start_at ≤ 0.5{X} the {floor_name} at {'100k' if trio else '1M'}",
                backend,
                "n/a" if ratio is None else f"{ratio:.2f}{X}",
                at_most(ratio, 0.5),
            )
        for form, limit in (("start_at", 200), ("schedule", 500)):
            tm = get("W1", backend, None, form, tracemalloc=True)
            if tm is not None:
                value = median(tm, "tm_per_job")
                row(
                    "W1",
                    f"{form}: ≤ {limit} B per pending job (tracemalloc)",
                    backend,
                    f"{fmt(value, '{:.0f}')} B",
                    at_most(value, limit),
                )
            rss = get("W1", backend, 1_000_000, form)
            if rss is not None:
                value = median(rss, "rss_per_job")
                row(
                    "W1",
                    f"{form}: ≤ {limit} B per pending job (RSS at 1M)",
                    backend,
                    f"{fmt(value, '{:.0f}')} B",
                    at_most(value, limit),
                )

        burst = get("W2", backend, 100_000)
        if burst is not None:
            floor_impl = TRIO_HEAP if trio else ASYNCIO_FLOOR
            floor = _find(summaries, "W2", floor_impl, backend, 100_000)
            mine_rate, floor_rate = (
                median(burst, "jobs_per_s"),
                median(floor, "jobs_per_s"),
            )
            row(
                "W2",
                f"100k burst ≥ 0.8{X} the {IMPL_LABELS[floor_impl]} jobs/s",
                backend,
                f"{fmt(mine_rate, '{:,.0f}')} vs {fmt(floor_rate, '{:,.0f}')} jobs/s"
                + (
                    f" ({mine_rate / floor_rate:.2f}{X})"
                    if mine_rate and floor_rate
                    else ""
                ),
                at_least(mine_rate, None if floor_rate is None else 0.8 * floor_rate),
            )
            first = median(burst, "first_ms")
            row(
                "W2",
                "100k burst: first job ≤ 50 ms after due",
                backend,
                f"{fmt(first, '{:.1f}')} ms",
                at_most(first, 50),
            )
            if trio:
                ratio = floor_ratio(summaries, burst)
                row(
                    "W2",
                    f"100k burst ≥ 0.9{X} the {IMPL_LABELS[TRIO_HEAP]} jobs/s",
                    backend,
                    "n/a" if ratio is None else f"{ratio:.2f}{X}",
                    at_least(ratio, 0.9),
                )
        busy_burst = get("W2", backend, 100_000, contended=True)
        if busy_burst is not None:
            first = median(busy_burst, "first_ms")
            row(
                "W2",
                f"{CONTENDED}: 100k burst: first job ≤ 50 ms after due",
                backend,
                f"{fmt(first, '{:.1f}')} ms",
                at_most(first, 50),
                contended=True,
            )

        steady = get("W3", backend, 200_000, "steady")
        if steady is not None:
            limit = 100.0 if trio else 5.0
            p99 = median(steady, "p99_ms")
            row(
                "W3",
                f"200k over 5 s: lateness p99 ≤ {limit:g} ms",
                backend,
                f"{fmt(p99, '{:.2f}')} ms",
                at_most(p99, limit),
            )
            never = _all_values(steady, "never_run")
            early = _all_values(steady, "early")
            bad = max([*never, *early], default=None)
            row(
                "W3",
                "200k over 5 s: 0 never run, 0 early (every run)",
                backend,
                f"never run {max(never, default='n/a')}, "
                f"early {max(early, default='n/a')}",
                None if bad is None else bad == 0,
            )
        for contended in (False, True):
            _random_targets(summaries, backend, contended, row)

        small, large = get("W4", backend, 100_000), get("W4", backend, 1_000_000)
        if large is not None:
            us = median(large, "us_per_cancel")
            row(
                "W4",
                "≤ 1 µs per cancel at 1M pending",
                backend,
                f"{fmt(us)} µs",
                at_most(us, 1.0),
            )
            us_small = median(small, "us_per_cancel")
            if us is not None and us_small:
                flat = us / us_small
                row(
                    "W4",
                    "flat from 100k to 1M (ratio ≤ 1.5)",
                    backend,
                    f"{fmt(us_small)} → {fmt(us)} µs ({flat:.2f}{X})",
                    flat <= 1.5,
                )
            wrong = [
                *_all_values(small, "wrong_runs"),
                *_all_values(large, "wrong_runs"),
            ]
            row(
                "W4",
                "cancelled never run, the rest do",
                backend,
                f"wrong outcomes {max(wrong, default='n/a')}",
                None if not wrong else max(wrong) == 0,
            )
        if trio and small is not None:
            ratio = floor_ratio(summaries, small)
            us_small = median(small, "us_per_cancel")
            row(
                "W4",
                f"≤ 1{X} the {IMPL_LABELS[TRIO_FLOOR]} per cancel at 100k "
                "(its `CancelScope.cancel()` of a sleeping task)",
                backend,
                f"{fmt(us_small)} µs ({fmt(ratio, '{:.2f}')}{X})",
                at_most(ratio, 1.0),
            )

        serial = get("W5", backend, None, "serial")
        if serial is not None:
            rate = median(serial, "jobs_per_s")
            if trio:
                floor = _find(
                    summaries, "W5", TRIO_FLOOR, backend, serial["size"], "serial"
                )
                floor_rate = median(floor, "jobs_per_s")
                row(
                    "W5",
                    f"serial queue ≥ 0.8{X} the trio channel floor",
                    backend,
                    f"{fmt(rate, '{:,.0f}')} vs {fmt(floor_rate, '{:,.0f}')} jobs/s",
                    at_least(rate, None if floor_rate is None else 0.8 * floor_rate),
                )
            else:
                row(
                    "W5",
                    "serial queue ≥ 400k jobs/s",
                    backend,
                    f"{fmt(rate, '{:,.0f}')} jobs/s",
                    at_least(rate, 400_000),
                )
            for variant in ("serial", "manager8"):
                s = get("W5", backend, None, variant)
                kept = _all_values(s, "order_ok")
                if kept:
                    row(
                        "W5",
                        f"{variant}: order kept",
                        backend,
                        str(all(kept)),
                        all(kept),
                    )

        per_size = {
            size: median(get("W7", backend, size), "us_per_completion")
            for size in (2_000, 8_000)
        }
        for size, us in per_size.items():
            s = get("W7", backend, size)
            if s is None:
                continue
            ratio = floor_ratio(summaries, s)
            row(
                "W7",
                f"{size // 1000}k running: ≤ 1.5{X} the floor per completion",
                backend,
                f"{fmt(us, '{:.2f}')} µs ({fmt(ratio, '{:.2f}')}{X})",
                at_most(ratio, 1.5),
            )
            if trio:
                row(
                    "W7",
                    f"{size // 1000}k running: ≤ 1.3{X} the trio floor per completion",
                    backend,
                    f"{fmt(us, '{:.2f}')} µs ({fmt(ratio, '{:.2f}')}{X})",
                    at_most(ratio, 1.3),
                )
        if per_size[2_000] and per_size[8_000]:
            flat = per_size[8_000] / per_size[2_000]
            row(
                "W7",
                "flat from 2k to 8k (ratio ≤ 1.25)",
                backend,
                f"{flat:.2f}{X}",
                flat <= 1.25,
            )

        big = get("W6", backend)
        if big is not None:
            n = big["size"]
            seconds = median(big, "schedule_s")
            row(
                "W6",
                f"{n / 1e6:g}M pending: scheduled in ≤ 15 s",
                backend,
                f"{fmt(seconds, '{:.1f}')} s",
                at_most(seconds, 15),
            )
            peak = median(big, "peak_rss_mb")
            row(
                "W6",
                f"{n / 1e6:g}M pending: peak RSS ≤ 2.5 GB",
                backend,
                f"{fmt(None if peak is None else peak / 1e3, '{:.2f}')} GB",
                at_most(peak, 2500),
            )
            lost = [*_all_values(big, "lost"), *_all_values(big, "far_ran")]
            p99 = median(big, "p99_ms")
            row(
                "W6",
                "every due job run once, nothing else run",
                backend,
                f"lost/duplicated/unexpected {max(lost, default='n/a')}; "
                f"lateness p99 {fmt(p99, '{:.2f}')} ms",
                None if not lost else max(lost) == 0,
            )
    return rows


#: how the targets table labels a target on a contended case
CONTENDED = "**contended**"


def _random_targets(
    summaries: list[Summary],
    backend: str,
    contended: bool,
    row: Callable[..., None],
) -> None:
    """W3 random at 200k, idle or contended: p50, p99 against the floor, outcomes.

    The p99 is compared with the asyncio floor on asyncio and uvloop; on Trio,
    with whichever of the two Trio floors had the lower p99 in this run (the
    better floor; the target names it).
    """
    mine = _find(
        summaries, "W3", AIOSCHEDULER, backend, 200_000, "random", contended=contended
    )
    if mine is None:
        return
    mode = CONTENDED if contended else "idle"
    what = f"random 200k over 5 s, {mode}"
    p50, p99 = median(mine, "p50_ms"), median(mine, "p99_ms")
    row(
        "W3",
        f"{what}: lateness p50 ≤ 2 ms",
        backend,
        "n/a" if p50 is None else f"{p50:.2f} ms",
        None if p50 is None else p50 <= 2.0,
        contended=contended,
    )
    candidates = (TRIO_HEAP, TRIO_FLOOR) if backend == "trio" else (ASYNCIO_FLOOR,)
    floors: list[tuple[float, str]] = []
    for impl in candidates:
        floor = _find(
            summaries, "W3", impl, backend, 200_000, "random", contended=contended
        )
        value = median(floor, "p99_ms")
        if value is not None:
            floors.append((value, impl))
    if floors:
        floor_p99, floor_impl = min(floors)
        if backend == "trio":
            which = "better trio floor's p99 (the lower in this run: "
            which += f"{IMPL_LABELS[floor_impl]})"
        else:
            which = f"{IMPL_LABELS[floor_impl]}'s p99"
        ratio = None if p99 is None or not floor_p99 else p99 / floor_p99
        row(
            "W3",
            f"{what}: lateness p99 ≤ 1.5{X} the {which}",
            backend,
            "n/a"
            if p99 is None
            else f"{p99:.2f} vs {floor_p99:.2f} ms"
            + ("" if ratio is None else f" ({ratio:.2f}{X})"),
            None if ratio is None else ratio <= 1.5,
            contended=contended,
        )
    never = _all_values(mine, "never_run")
    early = _all_values(mine, "early")
    bad = max([*never, *early], default=None)
    row(
        "W3",
        f"{what}: 0 never run, 0 early (every run)",
        backend,
        f"never run {max(never, default='n/a')}, early {max(early, default='n/a')}",
        None if bad is None else bad == 0,
        contended=contended,
    )


# -- markdown -------------------------------------------------------------------------

#: workload -> the metrics its table shows, in order
COLUMNS: dict[str, list[str]] = {
    "W1": ["us_per_call", "rss_per_job"],
    "W2": ["first_ms", "all_ms", "jobs_per_s"],
    "W3": ["p50_ms", "p99_ms", "max_ms", "drift_ms", "end_ms", "never_run", "early"],
    "W4": ["us_per_cancel", "wrong_runs"],
    "W5": ["jobs_per_s", "order_ok"],
    "W6": [
        "schedule_s",
        "us_per_call",
        "peak_rss_mb",
        "p50_ms",
        "p99_ms",
        "max_ms",
        "lost",
        "far_ran",
    ],
    "W7": ["us_per_completion"],
}

_IMPL_ORDER = list(IMPL_LABELS)
_FLOOR_IMPLS = {ASYNCIO_FLOOR, TRIO_FLOOR, TRIO_HEAP}
_BACKEND_ORDER = ["asyncio", "uvloop", "trio"]


def _cell(summary: Summary, metric: str) -> str:
    entry = summary["metrics"].get(metric)
    if entry is None:
        return DASH
    _, _, fmt = METRICS.get(metric, ("", "", "{:.3g}"))
    if "values" in entry:
        values = entry["values"]
        return fmt.format(values[0]) if len(set(map(str, values))) == 1 else str(values)
    if metric in ("never_run", "early", "wrong_runs", "lost", "far_ran"):
        return fmt.format(entry["max"])  # the worst run: these must all be 0
    text = fmt.format(entry["median"])
    if entry["n"] > 1 and fmt.format(entry["min"]) != fmt.format(entry["max"]):
        text += f" ({fmt.format(entry['min'])}{DASH}{fmt.format(entry['max'])})"
    return text


def _header(metric: str) -> str:
    label, unit, _ = METRICS.get(metric, (metric, "", ""))
    if metric in ("never_run", "early", "wrong_runs", "lost", "far_ran"):
        label += " (worst run)"
    return f"{label} ({unit})" if unit else label


def _size(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return f"{n:,}"


def _sort_key(s: Summary) -> tuple[Any, ...]:
    variants = WORKLOADS[s["workload"]].variants
    return (
        # W5's queue kinds are separate comparisons; elsewhere, size first.
        variants.index(s["variant"]) if s["workload"] == "W5" else 0,
        s["size"],
        # Each variant, idle then contended, is one comparison of its own.
        variants.index(s["variant"]) if s["workload"] == "W3" else 0,
        s.get("contended", False),
        _IMPL_ORDER.index(s["impl"]) if s["impl"] in _IMPL_ORDER else 99,
        variants.index(s["variant"]) if s["variant"] in variants else 99,
        _BACKEND_ORDER.index(s["backend"]),
    )


# "(/path/to/python)" or "(C:\\...)": results from older runs (and error
# notes) may name paths on the measuring machine, which the page must not.
_PATH_IN_PARENS = re.compile(r"\s*\((?:/|[A-Za-z]:\\)[^)]*\)")
# A bare absolute path, e.g. in a command's `--json /home/me/x.json`.
_BARE_PATH = re.compile(r"(?<![\w/.])(?:/|~/|[A-Za-z]:\\)(?:[^\s/\\`|]+[/\\])+")


def _public(text: str) -> str:
    """*text* without the file-system paths in it (a bare one keeps its name)."""
    return _BARE_PATH.sub("", _PATH_IN_PARENS.sub("", text))


def markdown(
    meta: dict[str, Any],
    summaries: list[Summary],
    targets: list[Target],
    charts: Sequence[tuple[str, str, str]] = (),
) -> str:
    """Render the results page; *charts* are ``(link, title, caption)``, first."""
    out: list[str] = []
    add = out.append
    add("# Benchmark results")
    add("")
    mode = meta["mode"].split(" (")[0]  # older results said "full (issue 3)"
    add(
        f"Measured {meta['date']} on {_public(meta['machine'])} with "
        f"`{_public(meta['command'])}` ({mode} sizes, up to {meta['reps']} runs "
        f"per figure, ¹ marking one run; {meta['wall_minutes']:.1f} min in all)."
    )
    add("")
    if charts:
        add("## Charts")
        add("")
        add(
            "Drawn from this run's results; the tables below give every "
            "figure. A bar is the median over the runs; where there were "
            "several, a whisker spans their lowest to highest figure. The "
            "colour is the implementation, and the backend is the hatching "
            "(none: asyncio, rising lines: uvloop, falling lines: trio) or the "
            "line (solid, dashed, dotted)."
        )
        add("")
        for link, title, caption in charts:
            add(caption)
            add("")
            add(f"![{title}]({link})")
            add("")
        add("## Environment")
        add("")
    add("| | |")
    add("| --- | --- |")
    for key, value in meta["versions"].items():
        add(f"| {key} | {_public(value)} |")
    add(f"| git | {meta['git']} |")
    add(f"| load average at start / end | {meta['load_start']} / {meta['load_end']} |")
    add("")
    try:
        busy = float(meta["load_start"].split()[0]) > (os.cpu_count() or 1)
    except (ValueError, IndexError):
        busy = False
    if busy:
        add(
            "**The machine was busy** (load average above its core count): "
            "other work competed for the cores, so absolute figures are "
            "inflated; ratios against the floors, measured in the same rounds, "
            "hold better."
        )
        add("")
    add(
        f"Each figure is the **median (min{DASH}max)** over the runs, each run in a "
        "fresh process; job = `async def job(i): counter += 1` (plus the "
        "timestamp or mark the workload needs, the same for every "
        "implementation). Ratios compare medians from this same run. The "
        "machine has 2 shared cores, so expect a few percent of noise."
    )
    add("")
    if targets:
        order = {w: k for k, w in enumerate(WORKLOADS)}
        targets = sorted(
            targets,
            key=lambda t: (order[t["workload"]], _BACKEND_ORDER.index(t["backend"])),
        )
        add("## Targets")
        add("")
        add("| workload | target | backend | measured | met |")
        add("| --- | --- | --- | --- | --- |")
        for t in targets:
            met = {True: "yes", False: "**no**", None: "n/a"}[t["met"]]
            cells = [t["workload"], t["target"], t["backend"], t["measured"], met]
            add("| " + " | ".join(cells) + " |")
        add("")
        if any(t.get("contended") for t in targets):
            add(
                f"{CONTENDED}: measured beside one competing CPU-bound process "
                "(a seeded busy loop) pinned to the same core as the run, the "
                "floors compared with too; see how each figure is measured."
            )
            add("")
    add("## Workloads")
    for workload in WORKLOADS.values():
        rows = [
            s
            for s in summaries
            if s["workload"] == workload.id and not s["tracemalloc"]
        ]
        if not rows:
            continue
        rows.sort(key=_sort_key)
        add("")
        add(f"### {workload.id}: {workload.title}")
        add("")
        columns = COLUMNS[workload.id]
        ratio_label = ""
        if workload.id in FLOORS:
            ratio_label = "vs floor"
        head = ["implementation", "variant", "backend", "N"] + [
            _header(c) for c in columns
        ]
        if ratio_label:
            head.append(f"{METRICS[FLOORS[workload.id][0]][0]} {ratio_label}")
        add("| " + " | ".join(head) + " |")
        add("|" + " --- |" * len(head))
        for s in rows:
            cells = [
                IMPL_LABELS.get(s["impl"], s["impl"]),
                s["variant"] + (" (contended)" if s.get("contended") else ""),
                s["backend"],
                _size(s["size"]) + ("" if s["runs"] > 1 else " ¹"),
            ]
            cells += [_cell(s, c) for c in columns]
            if ratio_label:
                ratio = None if s["impl"] in _FLOOR_IMPLS else floor_ratio(summaries, s)
                cells.append(DASH if ratio is None else f"{ratio:.2f}{X}")
            overran = sum(map(bool, _all_values(s, "setup_overran")))
            if overran:
                cells[0] += f" (set-up overran the first deadline in {overran} runs)"
            if s["failed"]:
                cells[0] += (
                    f" (failed {len(s['failed'])}/{s['runs']}: {s['failed'][0][:60]})"
                )
            add("| " + " | ".join(cells) + " |")
        if workload.id == "W1":
            tm = [s for s in summaries if s["workload"] == "W1" and s["tracemalloc"]]
            if tm:
                tm.sort(key=_sort_key)
                add("")
                add("Memory per pending job by tracemalloc (one run each):")
                add("")
                add("| implementation | variant | backend | N | tracemalloc (B/job) |")
                add("| --- | --- | --- | --- | --- |")
                for s in tm:
                    add(
                        f"| {IMPL_LABELS.get(s['impl'], s['impl'])} | {s['variant']} "
                        f"| {s['backend']} | {_size(s['size'])} "
                        f"| {_cell(s, 'tm_per_job')} |"
                    )
    add("")
    add("¹ one run (see the reductions below).")
    add("")
    add("## How each figure is measured")
    add("")
    for line in _METHOD:
        add(f"- {line}")
    add("")
    add("Baselines:")
    add("")
    for impl, note in IMPL_NOTES.items():
        add(f"- **{IMPL_LABELS[impl]}**: {note}.")
    add("")
    add(f"Reductions, to keep the suite under {SUITE_MINUTES} minutes:")
    add("")
    for line in REDUCTIONS:
        add(f"- {line}")
    for line in meta.get("notes", []):
        add(f"- {_public(line)}")
    add("")
    return "\n".join(out)


_METHOD = [
    "**W1**: N calls in a tight loop, timed with `perf_counter`; deadlines "
    f"from a pool of 65,536 random times 10 s{DASH}1 h ahead (plus 10 µs {X} N, so "
    "that none passes while 10M are scheduled); `start_at` takes aware UTC "
    "datetimes, `schedule` (1.x form) naive UTC ones and a fresh coroutine "
    "per call, `start_after` floats. RSS = `/proc/self/statm` after minus "
    "before, over N; tracemalloc = traced bytes after minus before, over N",
    f"**W2**: every job due at one instant 0.25 s + 10 µs {X} N ahead (the trio "
    f"floor gets 40 µs {X} N: its set-up is slower); figures from the due "
    "instant to the first job's start and to the last job's end; jobs/s = N "
    "over the latter",
    f"**W3**: deadlines over 5 s, starting 0.5 s + 10 µs {X} N ahead: evenly "
    "spaced (`steady`) or drawn uniformly at random from the run's seed, the "
    "same for every implementation, and scheduled in that random order "
    "(`random`: clusters and gaps happen); lateness = the job's start minus "
    "its deadline on the loop's own clock (uvloop's clock has 1 ms steps, so "
    "jobs read `time.monotonic`, its base). Whether a run kept up: drift = "
    "the median lateness of the last-due 10% of the jobs minus that of the "
    "first-due 10%, and the lateness of the last-due job",
    "**W4**: 10% of the jobs, chosen at random, cancelled in random order "
    "with `scheduler.cancel(task)` (floors: `TimerHandle.cancel()`, "
    "`CancelScope.cancel()`), timed with `perf_counter`",
    "**W5**: from the first `start_soon` / `put_nowait` to the end of the "
    "last job; order checked per queue",
    "**W6**: `Manager(20)`; all but the window scheduled far ahead "
    "(≥ 2 min), then 50,000 jobs due 5 s later (room for a full garbage "
    "collection while they are scheduled), spread over 2 s; peak RSS "
    "from `getrusage`",
    "**Flat**: W4 and W7 should be flat in N, with no number given; "
    f"the targets table calls W4 flat when 1M costs at most 1.5{X} of 100k "
    "(cache misses grow with the heap, for the floors too) and W7 when 8k "
    f"costs at most 1.25{X} of 2k",
    "**Contended** (a mode of W2, W3 random and W7 on Trio): each run, and "
    "each run of the floors it is compared with, has one competing CPU-bound "
    "process beside it: a seeded busy loop (`benchmarks/_contend.py`, integer "
    "arithmetic and SHA-256 on a `random.Random(seed)` stream), started "
    "before the run and killed after it, both pinned to the same core "
    "(`os.sched_setaffinity`), so that the run gets about half a core on any "
    f"machine; the per-job part of its set-up lead is {CONTENDED_LEAD:g}{X} as "
    "long, so that its set-up still ends before the first deadline",
    "**W7**: N jobs started (`start_after(0, ...)`), each waits on the "
    "loop's own `Event`; from `event.set()` until the scheduler's `join()` "
    "returns (floors: until the last job ends), over N",
]


def key_figure(workload: str, result: dict[str, Any]) -> str:
    """A short text of a run's main figure, for the progress line."""
    picks: dict[str, list[str]] = {
        "W1": ["us_per_call", "tm_per_job"],
        "W2": ["first_ms", "jobs_per_s"],
        "W3": ["p50_ms", "p99_ms", "drift_ms", "never_run"],
        "W4": ["us_per_cancel", "wrong_runs"],
        "W5": ["jobs_per_s", "order_ok"],
        "W6": ["schedule_s", "peak_rss_mb", "p99_ms", "lost"],
        "W7": ["us_per_completion"],
    }
    parts = []
    for key in picks[workload]:
        if key in result:
            label, unit, fmt = METRICS.get(key, (key, "", "{}"))
            if key == "tm_per_job":
                label, unit, fmt = "tracemalloc", "B/job", "{:.0f}"
            elif key == "drift_ms":
                label = "drift"
            parts.append(f"{label} {fmt.format(result[key])} {unit}".rstrip())
    if result.get("setup_overran"):
        parts.append("SETUP OVERRAN")
    return ", ".join(parts)


__all__ = [
    "check_targets",
    "floor_ratio",
    "key_figure",
    "markdown",
    "median",
    "summarise",
]
