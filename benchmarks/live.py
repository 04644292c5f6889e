"""``python -m benchmarks.live``: one benchmark workload on aioscheduler, live.

    python -m benchmarks.live --workload W2 --size 100000 --backend trio

Runs one workload (W1-W7) on aioscheduler itself, in this process, with a
live progress line and a summary table: a quick look while working on the
scheduler. ``python -m benchmarks`` runs the whole suite, with baselines.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from typing import Any

from aioscheduler import __version__

from ._aioscheduler import run
from ._common import Result
from ._progress import Progress
from ._workloads import BACKENDS, METRICS, WORKLOADS


def _summarise(values: Sequence[Any], fmt: str) -> str:
    texts = [fmt.format(v) for v in values]
    if len(set(texts)) == 1:
        return texts[0]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return ", ".join(texts)
    low, high = min(values), max(values)
    return (
        f"{fmt.format(statistics.median(values))}"
        f" ({fmt.format(low)}-{fmt.format(high)})"
    )


def _table(results: Sequence[Result]) -> list[str]:
    rows: list[tuple[str, str]] = []
    for key, (label, unit, fmt) in METRICS.items():
        values = [r[key] for r in results if key in r]
        if len(values) == len(results):
            text = _summarise(values, fmt)
            rows.append((label, f"{text} {unit}".rstrip()))
    width = max(len(label) for label, _ in rows) if rows else 0
    return [f"  {label:<{width}}  {value}" for label, value in rows]


def main(argv: list[str]) -> int:
    """Parse *argv*, run one workload, print a summary table; return exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.live",
        description="Run one benchmark workload on aioscheduler, in this process. "
        + "; ".join(f"{w.id}: {w.title}" for w in WORKLOADS.values())
        + ". The full suite with baselines is `python -m benchmarks`.",
    )
    parser.add_argument(
        "--workload", "-w", choices=sorted(WORKLOADS), default="W2", type=str.upper
    )
    parser.add_argument(
        "--size",
        "-n",
        type=lambda s: int(s.replace("_", "").replace(",", "")),
        help="number of jobs (default: the workload's smallest full size)",
    )
    parser.add_argument("--backend", "-b", choices=BACKENDS, default="asyncio")
    parser.add_argument(
        "--variant",
        help="W1: start_at (default), schedule or start_after; W5: serial "
        "(default) or manager8",
    )
    parser.add_argument(
        "--engine",
        choices=["native", "anyio"],
        default=None,
        help="asyncio engine: native (default) or the portable AnyIO one "
        "(set through the library's private test hook)",
    )
    parser.add_argument("--repeat", "-r", type=int, default=1, help="runs (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args(argv)

    spec = WORKLOADS[options.workload]
    size: int = options.size or spec.sizes[0]
    variant: str = options.variant or spec.variants[0]
    if variant not in spec.variants:
        parser.error(f"{spec.id} has variants {', '.join(spec.variants)}")
    if size < 10 or options.repeat < 1:
        parser.error("--size must be at least 10 and --repeat at least 1")
    engine = options.engine or "native"
    if engine == "anyio":
        import aioscheduler.backends

        aioscheduler.backends._PORTABLE = True  # the library's private test hook
    if options.backend == "trio":
        try:
            import trio  # noqa: F401
        except ImportError:
            parser.error("--backend trio needs trio: python3 -m pip install '.[trio]'")

    title = f"{spec.id} {variant} N={size:,} {options.backend}"
    results: list[Result] = []
    for rep in range(options.repeat):
        label = (
            title if options.repeat == 1 else f"{title} [{rep + 1}/{options.repeat}]"
        )
        progress = Progress(label)
        try:
            results.append(
                run(
                    spec.id,
                    size,
                    options.backend,
                    variant=variant,
                    progress=progress,
                    seed=options.seed + rep,
                )
            )
        finally:
            progress.close()

    python = sys.version.split()[0]
    print(f"aioscheduler {__version__} bench: {spec.id} - {spec.title}")
    print(
        f"  N={size:,}  variant={variant}  backend={options.backend}"
        f" ({engine} engine)  Python {python}  runs={options.repeat}"
        + ("  (median, min-max)" if options.repeat > 1 else "")
    )
    for line in _table(results):
        print(line)
    if any(r.get("setup_overran") for r in results):
        print("  warning: scheduling overran the first deadline; figures are biased")
    bad = any(
        r.get("never_run") or r.get("wrong_runs") or r.get("lost") or r.get("far_ran")
        for r in results
    ) or not all(r.get("order_ok", True) for r in results)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
