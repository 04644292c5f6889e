"""``python -m benchmarks.charts [results.json] [outdir]``: draw the charts again.

Reads a results file written by ``python -m benchmarks`` (default
``benchmarks/results/full.json``) and writes its SVG charts (default
``docs/performance/charts/``). The full run draws them itself; this is for
a results file from elsewhere, or after changing how the charts look.
``python -m benchmarks --render results.json`` rewrites the page and its
charts together. Needs matplotlib.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ._report import summarise

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS = ROOT / "benchmarks" / "results" / "full.json"
DEFAULT_OUTDIR = ROOT / "docs" / "performance" / "charts"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.charts", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("results", nargs="?", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("outdir", nargs="?", type=Path, default=DEFAULT_OUTDIR)
    options = parser.parse_args(argv)
    try:
        from ._charts import draw
    except ImportError as error:
        print(f"cannot draw charts: {error} (pip install matplotlib)", file=sys.stderr)
        return 2
    # From the runs, as `--render` does: the summaries follow today's rules.
    summaries = summarise(json.loads(options.results.read_text())["runs"])
    for chart in draw(summaries, options.outdir):
        print(f"wrote {options.outdir / chart.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
