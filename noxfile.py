"""Development sessions for aioscheduler.

``python3 -m nox`` runs the default sessions (lint, types, tests on every
supported Python, tests without trio, the docs with every example run);
``python3 -m nox --list`` shows all. ``tests_anyio_floor`` (the tests on the
oldest AnyIO allowed) is not a default: it takes about 5 minutes more.
Python versions and dependency groups come from ``pyproject.toml``.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

import nox
from packaging.requirements import Requirement

nox.needs_version = ">=2025.2.9"  # nox.project.dependency_groups

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHONS = nox.project.python_versions(PYPROJECT)  # from the classifiers
OLDEST = PYTHONS[0]

nox.options.sessions = ["lint", "types", "tests", "tests_no_trio", "tests_ran", "docs"]
nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True  # a fresh clone has no .nox/
# Skip a session whose Python is missing, even under CI=true (where nox would
# otherwise fail it); `tests_ran` fails the run if that left no tests at all.
nox.options.error_on_missing_interpreters = False


def _groups(*names: str) -> tuple[str, ...]:
    """Return the requirements of the named dependency groups."""
    return nox.project.dependency_groups(PYPROJECT, *names)


def _add_pyenv_pythons() -> None:
    """Let nox find pyenv's installed CPythons, not only the activated one.

    nox looks on PATH and at pyenv's *active* versions; appending every
    ``$PYENV_ROOT/versions/3.X.Y/bin`` (newest first) lets ``tests-3.12`` run
    wherever 3.12 is merely installed. Appended, so PATH keeps priority.
    """
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"), "versions")
    if not root.is_dir():
        return
    found = [d for d in root.iterdir() if re.fullmatch(r"3\.\d+\.\d+", d.name)]
    found.sort(key=lambda d: tuple(map(int, d.name.split("."))), reverse=True)
    path = os.environ.get("PATH", "").split(os.pathsep)
    path += [str(d / "bin") for d in found if str(d / "bin") not in path]
    os.environ["PATH"] = os.pathsep.join(path)


_add_pyenv_pythons()

# How `tests_ran` learns which `tests-3.X` sessions passed: each leaves a marker
# named after this nox run. The id is put in the environment so `--parallel`
# workers (child nox processes that re-import this file) share it, and markers
# left by earlier runs never count.
RUN_ID = os.environ.setdefault("AIOSCHEDULER_NOX_RUN", uuid.uuid4().hex)
RAN_DIR = Path(".nox", ".tests-passed", RUN_ID)


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Run the test suite on asyncio, asyncio+uvloop and trio."""
    session.install(".", *_groups("test"))
    session.run("pytest", *session.posargs)
    RAN_DIR.mkdir(parents=True, exist_ok=True)
    (RAN_DIR / str(session.python)).touch()


@nox.session(python=False, requires=["tests"])
def tests_ran(session: nox.Session) -> None:
    """Fail unless at least one Python ran the test suite (others may be missing).

    nox only *skips* ``tests-3.X`` when that Python is not installed, and a run
    where everything was skipped would still exit 0. This session comes after
    all of them (``requires``); a failed ``tests-3.X`` already aborts it.
    """
    ran = sorted(p.name for p in RAN_DIR.glob("*"))
    if not ran:
        session.error(
            f"no Python in {PYTHONS} was found, so no tests ran; install one"
            " (e.g. `pyenv install 3.13`) and run `python3 -m nox` again"
        )
    session.log(f"tests passed on Python {', '.join(ran)}")
    shutil.rmtree(RAN_DIR)


@nox.session(python=OLDEST)
def tests_no_trio(session: nox.Session) -> None:
    """Prove trio is optional: import and run on asyncio without trio installed."""
    wanted = {"pytest", "pytest-timeout", "looptime"}  # looptime: virtual time
    session.install(".", *(r for r in _groups("test") if Requirement(r).name in wanted))
    session.run(
        "python",
        "-c",
        "import importlib.util, sys;"
        " sys.exit('trio is installed' if importlib.util.find_spec('trio') else 0)",
    )
    session.run("pytest", "tests/test_optional_trio.py", *session.posargs)


def _anyio_floor() -> str:
    """Return the oldest AnyIO that ``pyproject.toml`` allows, e.g. ``"4.11.0"``."""
    for spec in PYPROJECT["project"]["dependencies"]:
        requirement = Requirement(spec)
        if requirement.name == "anyio":
            floors = [s.version for s in requirement.specifier if s.operator == ">="]
            if len(floors) == 1:
                return floors[0]
    raise ValueError("pyproject.toml must require anyio>=X.Y.Z exactly once")


@nox.session(python=OLDEST, default=False)
def tests_anyio_floor(session: nox.Session) -> None:
    """Run the test suite on the oldest supported Python with the oldest AnyIO.

    The AnyIO version is the floor in ``pyproject.toml`` (``anyio>=X.Y.Z``),
    installed exactly, so raising the floor there is all it takes.
    """
    floor = _anyio_floor()
    # AnyIO's pytest plugin before 4.15 imports CallSpec2, which pytest 9.2
    # deprecates: a warning, so an error under our filterwarnings = error.
    session.install(".", *_groups("test"), f"anyio=={floor}", "pytest<9.2")
    session.run("pytest", *session.posargs)


@nox.session(python=None)
def lint(session: nox.Session) -> None:
    """Check style and formatting with ruff (run `ruff format .` to fix)."""
    session.install(*_groups("lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=None)
def types(session: nox.Session) -> None:
    """Type-check the package and the tests with mypy --strict."""
    session.install(".", *_groups("types"))
    session.run("mypy", "--strict", *(session.posargs or ["aioscheduler", "tests"]))


@nox.session(python=None)
def docs(session: nox.Session) -> None:
    """Build the docs (warnings as errors), run every example, check the API reference.

    Needs Graphviz's ``dot`` on PATH for the front page's diagram
    (``sphinx.ext.graphviz``); ``.ci/run`` installs it in CI. Arguments after
    ``--`` go to pytest, e.g. ``nox -s docs -- -k tutorial``.
    """
    if shutil.which("dot") is None:
        # Checked first, so a missing program fails in one line, not as a
        # Sphinx warning after the install and half the build.
        session.error(
            "Graphviz's `dot` is not on PATH; install Graphviz"
            " (Debian/Ubuntu: `sudo apt-get install graphviz`, macOS:"
            " `brew install graphviz`) and run `nox -s docs` again"
        )
    session.install(".", *_groups("docs"))
    # -E: a fresh environment, so warnings from unchanged pages are not hidden.
    session.run(
        "sphinx-build",
        "-E",
        "-W",
        "--keep-going",
        "-b",
        "html",
        "docs",
        "docs/_build/html",
    )
    session.run("python", "docs/check_api.py", "docs/_build/html")
    session.run("pytest", "tests/test_docs_examples.py", *session.posargs)


@nox.session(python=None, default=False)
def bench(session: nox.Session) -> None:
    """Run the benchmarks (< 25 min): `nox -s bench -- <options>`, e.g. `-- --quick`.

    The suite is ``benchmarks/`` in this tree (not part of the package).
    aioscheduler 1.4.2, a baseline, is installed by the benchmarks themselves
    into the git-ignored `benchmarks/.baselines/`, for a Python 3.10 found on
    the machine (`python -m benchmarks --help`); aiojobs and APScheduler 3.x,
    the other baselines, are installed here. One workload, live:
    ``python -m benchmarks.live --help``. matplotlib draws the performance
    page's charts (``docs/performance/charts/``) from the run's results.
    """
    session.install(
        ".[trio,uvloop]", "aiojobs>=1.2", "APScheduler>=3.11,<4", "matplotlib>=3.8"
    )
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session(python=None, default=False)
def soak(session: nox.Session) -> None:
    """Run the long soak tests (marked `soak`); pass pytest options after `--`."""
    session.install(".", *_groups("test"))
    session.run("pytest", "-m", "soak", "tests/", *session.posargs)
