"""``python -m benchmarks``: run the suite, write JSON and the markdown table.

    python -m benchmarks              # the full sizes (what `nox -s bench` runs)
    python -m benchmarks --quick      # small sizes, one run each, for development
    python -m benchmarks --only W2,W5 --backends asyncio --reps 5
    python -m benchmarks --list       # show the plan and stop

Every run of every case is a fresh subprocess (``benchmarks/_worker.py``;
aioscheduler 1.4.2 runs in ``benchmarks/_legacy142.py`` under Python 3.10).
The full default run writes ``benchmarks/results/full.json`` and
``docs/performance/results.md``, with its charts (SVG, by matplotlib, when
installed) in ``docs/performance/charts/``; any other run writes under
``benchmarks/results/tmp/`` (git-ignored) unless ``--json``/``--markdown``
say otherwise, charts in ``charts/`` beside the markdown.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import importlib.util
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from . import _plan, _report, _workloads
from ._contend import Contender, pinned_cpu
from ._worker import MARKER

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "benchmarks"
RESULTS = BENCH_DIR / "results"
DOCS_PAGE = ROOT / "docs" / "performance" / "results.md"
LEGACY_VERSION = "1.4.2"
LEGACY_DIR = BENCH_DIR / ".baselines" / f"aioscheduler-{LEGACY_VERSION}"


# -- aioscheduler 1.4.2 on Python 3.10 -------------------------------------------------


def find_python310() -> str | None:
    """Find a working Python 3.10: ``$AIOSCHEDULER_BENCH_PY310``, pyenv, PATH.

    Each candidate is run once: a pyenv shim on PATH may exist and still
    refuse to run a version that is not selected.
    """
    candidates = [os.environ.get("AIOSCHEDULER_BENCH_PY310", "")]
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"), "versions")
    candidates += [
        str(p / "bin" / "python3") for p in sorted(root.glob("3.10.*"))[::-1]
    ]
    candidates.append(shutil.which("python3.10") or "")
    for candidate in filter(None, candidates):
        try:
            done = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.stdout.strip() == "(3, 10)":
            return candidate
    return None


def ensure_legacy(python: str) -> str | None:
    """Install aioscheduler 1.4.2 into the git-ignored folder; ``None`` if done."""
    marker = LEGACY_DIR / "aioscheduler" / "__init__.py"
    if marker.exists() and f'"{LEGACY_VERSION}"' in marker.read_text():
        return None
    command = [
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-warn-script-location",
        "--upgrade",
        "--target",
        str(LEGACY_DIR),
        f"aioscheduler=={LEGACY_VERSION}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return f"pip failed: {done.stderr.strip()[-300:]}"
    return None


# -- running one case -----------------------------------------------------------------


def run_one(
    case: _plan.Case,
    rep: int,
    python310: str | None,
    timeout: float,
    pin: bool = True,
) -> dict[str, Any]:
    """Run repetition *rep* of *case* in a fresh process; return its record.

    A contended case runs beside a busy loop (:class:`Contender`), both pinned
    to one core unless *pin* is false.
    """
    spec = case.spec(rep)
    env = dict(os.environ)
    if case.impl == _plan.LEGACY:
        assert python310 is not None
        # Run as a script, not with -m: -m would put the source tree (and its
        # aioscheduler 2) first on the path; 1.4.2 must come before it, and the
        # tree only serves the script's imports of `benchmarks`.
        command = [python310, str(BENCH_DIR / "_legacy142.py"), json.dumps(spec)]
        env["PYTHONPATH"] = os.pathsep.join((str(LEGACY_DIR), str(ROOT)))
    else:
        command = [sys.executable, "-m", "benchmarks._worker", json.dumps(spec)]
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT), env.get("PYTHONPATH")) if p
        )
    record: dict[str, Any] = {"case": spec, "rep": rep}
    cpu = pinned_cpu() if case.contended and pin else None
    affinity = None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))
    # The busy loop starts first and is running before the worker starts;
    # both are pinned to the same core, and the seed of the busy loop is the
    # repetition's, like the workload's.
    with Contender(rep, cpu, ROOT) if case.contended else nullcontext():
        begin = time.perf_counter()
        try:
            done = subprocess.run(
                command,
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                preexec_fn=affinity,
            )
        except subprocess.TimeoutExpired:
            record["error"] = f"timed out after {timeout:.0f} s"
            record["seconds"] = time.perf_counter() - begin
            return record
        record["seconds"] = time.perf_counter() - begin
    if case.contended:
        record["pinned_cpu"] = cpu
    for line in done.stdout.splitlines():
        if line.startswith(MARKER):
            record["result"] = json.loads(line[len(MARKER) :])
            break
    else:
        record["error"] = (
            f"exit {done.returncode}: {_last_error(done.stderr or done.stdout)}"
        )
    return record


def _last_error(output: str) -> str:
    """Return the line naming the exception, even inside a printed group."""
    lines = [line.strip(" |+-") for line in output.strip().splitlines()]
    lines = [line for line in lines if line]
    for line in reversed(lines):
        name = line.split(":", 1)[0].split(".")[-1]
        if name.isidentifier() and name.endswith(("Error", "Exception", "Group")):
            return line[:300]
    return lines[-1][:300] if lines else "no output"


# -- the charts -----------------------------------------------------------------------


def draw_charts(
    summaries: list[_report.Summary], md_path: Path
) -> list[tuple[str, str, str]]:
    """Draw the charts into ``charts/`` beside the page; ``(link, title, caption)``.

    Without matplotlib the page goes without charts, and the run says so:
    ``nox -s bench`` installs it, a bare ``python -m benchmarks`` may not.
    """
    if importlib.util.find_spec("matplotlib") is None:
        print("matplotlib is not installed: no charts (`nox -s bench` installs it)")
        return []
    from . import _charts  # matplotlib takes a moment to import: only when drawing

    outdir = md_path.parent / "charts"
    try:
        drawn = _charts.draw(summaries, outdir)
    except Exception as error:
        # A chart must not cost the page: the runs took up to 15 minutes.
        print(f"drawing the charts failed, the page goes without: {error!r}")
        return []
    print(f"drew {len(drawn)} charts into {outdir}")
    return [(_link(md_path, outdir / c.name), c.title, c.caption) for c in drawn]


def _link(page: Path, target: Path) -> str:
    """How *page* links to *target*.

    Under ``docs/``, from the docs' root: Sphinx includes the page into
    ``docs/performance.rst`` and resolves its images from there. Elsewhere
    (a quick run's page), relative to the page.
    """
    target = target.resolve()
    try:
        return "/" + target.relative_to(ROOT / "docs").as_posix()
    except ValueError:
        return os.path.relpath(target, page.resolve().parent).replace(os.sep, "/")


# -- the command line ----------------------------------------------------------------


def _versions(python310: str | None, legacy_ok: bool) -> dict[str, str]:
    # Versions only: the page is published, and where the interpreter lives
    # on the measuring machine tells a reader nothing.
    versions = {"Python": platform.python_version()}
    for name in ("aioscheduler", "anyio", "trio", "uvloop", "aiojobs", "APScheduler"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    if legacy_ok and python310:
        py = subprocess.run(
            [python310, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        versions["aioscheduler (1.x baseline)"] = f"{LEGACY_VERSION} on Python {py}"
    return versions


def _machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} \u00d7 {model}, {platform.system()} {platform.release()}"


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _git() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "aioscheduler")
    return commit + (" + uncommitted changes in aioscheduler/" if dirty else "")


def _command(argv: list[str]) -> str:
    args = shlex.join(argv)
    if os.environ.get("NOX_CURRENT_SESSION"):
        return "nox -s bench" + (f" -- {args}" if args else "")
    return "python -m benchmarks" + (f" {args}" if args else "")


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, 1 run each")
    parser.add_argument("--reps", type=int, help="runs per figure (default 3; quick 1)")
    parser.add_argument("--only", type=str.upper, help="workloads, e.g. W2,W5")
    parser.add_argument(
        "--backends", default="asyncio,uvloop,trio", help="default: all installed"
    )
    parser.add_argument(
        "--impls",
        help="implementations (default all but aioscheduler-anyio): "
        + ", ".join(_plan.IMPL_LABELS),
    )
    parser.add_argument(
        "--portable",
        action="store_true",
        help="also run aioscheduler's portable AnyIO engine on asyncio",
    )
    parser.add_argument("--no-legacy", action="store_true", help="skip 1.4.2")
    contention = parser.add_mutually_exclusive_group()
    contention.add_argument(
        "--idle-only", action="store_true", help="leave out the contended cases"
    )
    contention.add_argument(
        "--contended",
        action="store_true",
        help="only the contended cases (each run beside a busy loop on its core)",
    )
    parser.add_argument(
        "--contention",
        choices=("pinned", "shared"),
        default="pinned",
        help="contended cases: the busy loop and the run pinned to one core "
        "(default: the run gets about half a core on any machine), or both "
        "free to use every core",
    )
    parser.add_argument("--timeout", type=float, default=300, help="per run, seconds")
    parser.add_argument(
        "--budget",
        type=float,
        default=_plan.SUITE_MINUTES - 1.0,
        help="minutes; after the first round, runs that would end past it are "
        f"skipped (default {_plan.SUITE_MINUTES - 1}; 0: no limit)",
    )
    parser.add_argument("--json", type=Path, help="where the JSON goes")
    parser.add_argument("--markdown", type=Path, help="where the markdown table goes")
    parser.add_argument("--list", action="store_true", help="show the plan and stop")
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="only rewrite the markdown (--markdown, default the docs page) "
        "and its charts from the runs in a results JSON",
    )
    options = parser.parse_args(args)
    if options.render:
        saved = json.loads(options.render.read_text())
        summaries = _report.summarise(saved["runs"])
        backends_run = {s["backend"] for s in summaries}
        targets = _report.check_targets(
            summaries, [b for b in ("asyncio", "uvloop", "trio") if b in backends_run]
        )
        md_path = options.markdown or DOCS_PAGE
        charts = draw_charts(summaries, md_path)
        md_path.write_text(_report.markdown(saved["meta"], summaries, targets, charts))
        print(f"wrote {md_path}")
        return 0

    notes: list[str] = []
    backends = _split(options.backends)
    for backend, module in (("uvloop", "uvloop"), ("trio", "trio")):
        if backend in backends and importlib.util.find_spec(module) is None:
            backends = tuple(b for b in backends if b != backend)
            notes.append(f"{module} is not installed: no {backend} figures")
    impls = _split(options.impls) if options.impls else tuple(_plan.IMPL_LABELS)
    if not options.portable and not options.impls:
        impls = tuple(i for i in impls if i != _plan.PORTABLE)
    if importlib.util.find_spec("aiojobs") is None and _plan.AIOJOBS in impls:
        impls = tuple(i for i in impls if i != _plan.AIOJOBS)
        notes.append("aiojobs is not installed: no aiojobs figures")
    if importlib.util.find_spec("apscheduler") is None and _plan.APSCHEDULER in impls:
        impls = tuple(i for i in impls if i != _plan.APSCHEDULER)
        notes.append("APScheduler is not installed: no APScheduler figures")
    python310 = None
    if _plan.LEGACY in impls and not options.no_legacy and not options.list:
        python310 = find_python310()
        problem = "no Python 3.10 found" if python310 is None else None
        if python310 is not None:
            print(f"installing aioscheduler {LEGACY_VERSION} into {LEGACY_DIR} ...")
            problem = ensure_legacy(python310)
        if problem:
            notes.append(f"aioscheduler {LEGACY_VERSION} skipped: {problem}")
            python310 = None
    if python310 is None and not options.list:
        impls = tuple(i for i in impls if i != _plan.LEGACY)

    workloads = _split(options.only) if options.only else tuple(_workloads.WORKLOADS)
    reps = options.reps or (1 if options.quick else 3)
    cases = _plan.build(
        quick=options.quick,
        reps=reps,
        backends=backends,
        workloads=workloads,
        impls=impls,
        idle_only=options.idle_only,
        contended_only=options.contended,
    )
    total = sum(c.reps for c in cases)
    if options.list:
        for c in cases:
            print(
                f"{c.workload} {c.label:<21} {c.size:>10,} {c.impl:<20} "
                f"{c.backend:<8} x{c.reps}" + (" tracemalloc" if c.tracemalloc else "")
            )
        print(f"{len(cases)} cases, {total} runs")
        return 0

    complete = (
        not options.quick
        and not options.only
        and not options.impls
        and not options.idle_only
        and not options.contended
        and reps >= 3
        and backends == ("asyncio", "uvloop", "trio")
    )
    name = "full" if complete else ("quick" if options.quick else "partial")
    json_path = options.json or (
        RESULTS / "full.json" if complete else RESULTS / "tmp" / f"{name}.json"
    )
    md_path = options.markdown or (
        DOCS_PAGE if complete else RESULTS / "tmp" / f"{name}.md"
    )

    # Rounds: every case once, then every case again, and so on; so drift on
    # the shared machine hits every implementation alike, and the time budget
    # can drop whole later rounds' runs rather than some cases entirely.
    order = [
        (c, rep)
        for rep in range(max(c.reps for c in cases))
        for c in cases
        if rep < c.reps
    ]
    budget = options.budget * 60

    load_start = _load()
    started = time.perf_counter()
    print(f"{len(cases)} cases, {total} runs; load average {load_start}", flush=True)
    runs = []
    failures = skipped = 0
    last: dict[tuple[Any, ...], float] = {}
    for done, (case, rep) in enumerate(order, 1):
        elapsed = time.perf_counter() - started
        if rep and budget and elapsed + last.get(case.key, 0.0) > budget:
            skipped += 1
            continue
        record = run_one(
            case, rep, python310, options.timeout, options.contention == "pinned"
        )
        runs.append(record)
        last[case.key] = record["seconds"]
        elapsed = time.perf_counter() - started
        text = record.get("error") or _report.key_figure(
            case.workload, record["result"]
        )
        failures += "error" in record
        print(
            f"[{done:>3}/{total} {elapsed / 60:4.1f}m] {case.workload} "
            f"{case.label:<21} {case.size:>10,} {case.impl:<19} {case.backend:<7} "
            f"#{rep + 1}{' tm' if case.tracemalloc else '':3} "
            f"{record['seconds']:5.1f}s  {text}",
            flush=True,
        )
    if any(c.contended for c in cases):
        pinned = options.contention == "pinned" and pinned_cpu() is not None
        notes.append(
            "Contended runs: the busy loop and the run "
            + (
                "pinned to one core."
                if pinned
                else "free to use every core (`--contention shared`, or no "
                "`os.sched_setaffinity` here)."
            )
        )
    if skipped:
        notes.append(
            f"{skipped} of {total} runs were skipped to stay within the "
            f"{options.budget:g}-minute budget (`--budget`): later rounds only, "
            "so every figure has at least one run; the runs column counts them."
        )
    wall = time.perf_counter() - started

    summaries = _report.summarise(runs)
    targets = _report.check_targets(
        summaries, [b for b in ("asyncio", "uvloop", "trio") if b in backends]
    )
    meta = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": _command(args),
        "mode": "quick" if options.quick else "full",
        "reps": reps,
        "machine": _machine(),
        "versions": _versions(python310, python310 is not None),
        "git": _git(),
        "load_start": load_start,
        "load_end": _load(),
        "wall_minutes": wall / 60,
        "notes": notes,
    }
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(
        json.dumps(
            {"meta": meta, "targets": targets, "summary": summaries, "runs": runs},
            indent=1,
        )
        + "\n"
    )
    md_path.parent.mkdir(parents=True, exist_ok=True)
    charts = draw_charts(summaries, md_path)
    md_path.write_text(_report.markdown(meta, summaries, targets, charts))
    missed = [t for t in targets if t["met"] is False]
    print(
        f"done in {wall / 60:.1f} min: {failures} failed runs, {skipped} skipped, "
        f"{len(targets) - len(missed)}/{len(targets)} targets met"
    )
    for t in missed:
        print(
            f"  missed: {t['workload']} {t['backend']}: {t['target']}: {t['measured']}"
        )
    print(f"wrote {json_path} and {md_path}")
    return 1 if failures else 0
