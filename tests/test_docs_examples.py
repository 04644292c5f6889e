"""Run every code example in the docs, on the event loops it claims.

Two kinds of example are collected:

* ``.. runnable::`` blocks in ``docs/**/*.rst``: complete programs. Each runs
  in a fresh interpreter, as a reader would run it, once per event loop path
  its ``:backends:`` option names (``asyncio`` runs on the native engine and
  on the portable AnyIO engine; ``trio`` likewise on Trio; ``pytest`` runs the block as
  a test file under pytest). Warnings are errors. What it prints (stdout and
  stderr together) must match the ``.. output::`` block that follows, where
  ``...`` matches anything as in doctest; with no output block it must print
  nothing. An example that claims several backends and starts its loop with
  ``anyio.run`` is run with ``anyio.run``'s backend set to each in turn; every
  run also checks that the scheduler really ran on the claimed loop. An
  example with ``:needs: postgres`` reads a server's URL from
  ``DATABASE_URL``: it runs against the throwaway cluster of the
  ``postgres_dsn`` fixture (skipped, with one line saying why, where there
  is none; under ``CI=true`` it must run), one run at a time, with the
  schemas it may have made dropped before each run.
* ``Example::`` blocks in the docstrings of public names, which the API
  reference shows: fragments, run inside ``async def main()`` with a few
  helpers (``work``, ``fetch``, ``urls``) defined, in virtual time, on every
  path.

A Python block that is none of these (``.. code-block:: python``, a plain
``::`` literal block, a doctest) fails the suite: every example is executed.
"""

from __future__ import annotations

import doctest
import inspect
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

import aioscheduler
from tests._engines import child_env, use_engine

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

pytestmark = pytest.mark.skipif(
    not (DOCS / "conf.py").is_file(), reason="docs/ is not part of this tree"
)

# (event loop, engine) paths per claimed backend, as in conftest.py.
PATHS = {
    "asyncio": [("asyncio", "native"), ("asyncio", "anyio")],
    "trio": [("trio", "native"), ("trio", "anyio")],
    "pytest": [("pytest", "native")],
}

# Only one warning is tolerated: the 1.x README examples, kept verbatim on the
# migration page, call datetime.utcnow(), deprecated since Python 3.12.
WARNING_FILTERS = [
    "-W",
    "error",
    "-W",
    "ignore:datetime.datetime.utcnow:DeprecationWarning",
]

EXAMPLE_TIMEOUT = 60


# -- collecting ------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """One ``.. runnable::`` block and the output it must print."""

    source: str  # docs-relative path
    line: int
    backends: tuple[str, ...]
    code: str
    output: str | None
    needs: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.source}:{self.line}"


def _directive_block(lines: list[str], start: int) -> tuple[dict[str, str], str, int]:
    """Parse the directive whose ``..`` line is ``lines[start]``.

    Return its options, its dedented content, and the index after it.
    """
    indent = len(lines[start]) - len(lines[start].lstrip())
    options: dict[str, str] = {}
    i = start + 1
    option = re.compile(r"^\s+:([\w-]+):\s*(.*)$")
    while i < len(lines) and (match := option.match(lines[i])):
        options[match[1]] = match[2].strip()
        i += 1
    body: list[str] = []
    while i < len(lines):
        line = lines[i]
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        body.append(line)
        i += 1
    return options, textwrap.dedent("\n".join(body)).strip("\n") + "\n", i


def _examples_in(path: Path) -> Iterator[Example]:
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() != ".. runnable::":
            i += 1
            continue
        start = i
        options, code, i = _directive_block(lines, start)
        j = i
        while j < len(lines) and not lines[j].strip():
            j += 1
        output = None
        if j < len(lines) and lines[j].strip() == ".. output::":
            _, output, i = _directive_block(lines, j)
        yield Example(
            source=path.relative_to(DOCS).as_posix(),
            line=start + 1,
            backends=tuple(options.get("backends", "").split()),
            code=code,
            output=output,
            needs=tuple(options.get("needs", "").split()),
        )


def _rst_files() -> list[Path]:
    if not DOCS.is_dir():
        return []
    return sorted(p for p in DOCS.rglob("*.rst") if "_build" not in p.parts)


EXAMPLES = [example for path in _rst_files() for example in _examples_in(path)]

RUNS = [
    pytest.param(
        example,
        loop,
        engine,
        id=f"{example.name}-{loop}+{engine}",
        marks=[pytest.mark.postgres] if "postgres" in example.needs else [],
    )
    for example in EXAMPLES
    for backend in example.backends
    for loop, engine in PATHS.get(backend, [("unknown", backend)])
]


# -- running ---------------------------------------------------------------------

# Runs one example file as __main__; argv: file, loop, force ("1" to force
# anyio.run's backend), record file for the loops the scheduler bound to.
RUNNER = """
import runpy, sys
path, loop, force, record = sys.argv[1:5]
sys.argv = [path]
import anyio
import aioscheduler.backends as backends
seen = set()
_binding = backends.current_binding
def current_binding():
    binding = _binding()
    seen.add(binding.name)
    return binding
backends.current_binding = current_binding
if force == "1":
    _run = anyio.run
    def run(func, *args, backend="asyncio", backend_options=None):
        return _run(func, *args, backend=loop, backend_options=backend_options)
    anyio.run = run
try:
    runpy.run_path(path, run_name="__main__")
finally:
    with open(record, "w") as f:
        f.write(" ".join(sorted(seen)))
"""


@dataclass
class Outcome:
    returncode: int
    output: str
    loops: str


def _run_example(
    example: Example,
    loop: str,
    engine: str,
    workdir: Path,
    database_url: str | None = None,
) -> Outcome:
    workdir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.pop("PYTHONWARNINGS", None)
    env.pop("DATABASE_URL", None)
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    env["PYTHONUNBUFFERED"] = "1"
    env = child_env(engine, env)
    if loop == "pytest":
        script = workdir / "test_example.py"
        script.write_text(example.code, encoding="utf-8")
        command = [
            sys.executable,
            *WARNING_FILTERS,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:looptime_plugin",  # as the testing guide tells readers to
            "-W",
            "error",
            "--rootdir",
            str(workdir),
            str(script),
        ]
        record = None
    else:
        script = workdir / "example.py"
        script.write_text(example.code, encoding="utf-8")
        record = workdir / "loops.txt"
        force = "1" if len(example.backends) > 1 else "0"
        command = [
            sys.executable,
            *WARNING_FILTERS,
            "-c",
            RUNNER,
            str(script),
            loop,
            force,
            str(record),
        ]
    proc = subprocess.run(
        command,
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=EXAMPLE_TIMEOUT,
        check=False,
    )
    loops = record.read_text() if record is not None and record.exists() else ""
    return Outcome(proc.returncode, proc.stdout, loops)


@pytest.fixture(scope="module")
def outcomes(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[tuple[str, str, str], Future[Outcome]]]:
    """Start every run at once, a few at a time: each is mostly interpreter start-up."""
    base = tmp_path_factory.mktemp("docs-examples")
    workers = max(2, min(8, os.cpu_count() or 2))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures: dict[tuple[str, str, str], Future[Outcome]] = {}
        for n, param in enumerate(RUNS):
            example, loop, engine = param.values
            assert isinstance(example, Example)
            if example.needs:
                continue  # run by the test itself, with its server
            key = (example.name, str(loop), str(engine))
            futures[key] = pool.submit(
                _run_example, example, str(loop), str(engine), base / f"run{n}"
            )
        yield futures
        for future in futures.values():
            future.cancel()


def _drop_example_schemas(dsn: str) -> None:
    """Drop what an earlier run of a PostgreSQL example left: the store's
    default schema ``aioscheduler``, and any schema ``docs_*``."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as con:
        rows = con.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname = 'aioscheduler' "
            "OR starts_with(nspname, 'docs_')"
        ).fetchall()
        for (name,) in rows:
            quoted = '"' + str(name).replace('"', '""') + '"'
            con.execute(f"DROP SCHEMA {quoted} CASCADE".encode())


def _matches(want: str, got: str) -> bool:
    checker = doctest.OutputChecker()
    return checker.check_output(want, got, doctest.ELLIPSIS)


def test_docs_have_examples() -> None:
    assert len(EXAMPLES) >= 10, "no runnable examples found in docs/"


@pytest.mark.parametrize(("example", "loop", "engine"), RUNS)
def test_docs_example(
    example: Example,
    loop: str,
    engine: str,
    outcomes: dict[tuple[str, str, str], Future[Outcome]],
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    """The example runs on the claimed loop and prints what the docs show."""
    assert loop != "unknown", (
        f"{example.name}: :backends: must name asyncio, trio or pytest,"
        f" got {example.backends}"
    )
    if "postgres" in example.needs:
        dsn: str = request.getfixturevalue("postgres_dsn")
        _drop_example_schemas(dsn)
        outcome = _run_example(example, loop, engine, tmp_path, database_url=dsn)
    else:
        outcome = outcomes[(example.name, loop, engine)].result(
            timeout=EXAMPLE_TIMEOUT * 2
        )
    assert outcome.returncode == 0, (
        f"{example.name} failed on {loop}+{engine}:\n{outcome.output}"
    )
    if loop == "pytest":
        assert re.search(r"\b\d+ passed\b", outcome.output), outcome.output
        assert "failed" not in outcome.output
        assert "warning" not in outcome.output
        return
    assert outcome.loops == loop, (
        f"{example.name} claims {loop}, but its scheduler ran on "
        f"{outcome.loops or 'no event loop'}"
    )
    want = example.output or ""
    assert _matches(want, outcome.output), (
        f"{example.name} on {loop}+{engine} printed:\n{outcome.output}\n"
        f"but the docs show:\n{want}"
    )


# Python blocks that would escape the runs above.
UNCHECKED = re.compile(
    r"^\s*\.\. (code-block|code|sourcecode|highlight)::\s*(python|py|python3|pycon)\s*$"
    r"|^\s*\.\. (testcode|doctest|testsetup|literalinclude)::"
    r"|^\s*>>> "
    r"|^(?!\s*\.\. ).*::\s*$"
)


@pytest.mark.parametrize(
    "path", _rst_files(), ids=lambda p: p.relative_to(DOCS).as_posix()
)
def test_no_unexecuted_python_blocks(path: Path) -> None:
    """Python code in the docs is only ever a runnable (or a docstring example)."""
    in_runnable = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip() in {".. runnable::", ".. output::"}:
            in_runnable = True
            continue
        if in_runnable:
            if line.strip() and not line.startswith((" ", "\t")):
                in_runnable = False
            else:
                continue
        assert not UNCHECKED.search(line), (
            f"{path.relative_to(DOCS)}:{number}: a Python block that no test "
            f"runs; use '.. runnable::' instead:\n{line}"
        )


# -- docstring examples ----------------------------------------------------------


def _public_objects() -> Iterator[tuple[str, Any]]:
    for name in aioscheduler.__all__:
        obj = getattr(aioscheduler, name)
        if not inspect.isclass(obj):
            continue
        yield name, obj
        for member_name, member in inspect.getmembers(obj):
            if member_name.startswith("_"):
                continue
            if isinstance(member, property):
                member = member.fget
            if getattr(member, "__module__", "").startswith("aioscheduler"):
                yield f"{name}.{member_name}", member


def _docstring_examples() -> list[tuple[str, str]]:
    found: dict[str, str] = {}
    for qualname, obj in _public_objects():
        doc = inspect.getdoc(obj) or ""
        lines = doc.splitlines()
        for i, line in enumerate(lines):
            if not line.rstrip().endswith("::") or "xample" not in line:
                continue
            indent = len(line) - len(line.lstrip())
            block: list[str] = []
            for following in lines[i + 1 :]:
                if (
                    following.strip()
                    and len(following) - len(following.lstrip()) <= indent
                ):
                    break
                block.append(following)
            code = textwrap.dedent("\n".join(block)).strip()
            if code and code not in found.values():
                found[f"{qualname}:{i + 1}"] = code
    return sorted(found.items())


DOCSTRING_EXAMPLES = _docstring_examples()


async def _work(n: int) -> int:
    await anyio.sleep(0.01)
    return n


async def _fetch(url: str) -> str:
    await anyio.sleep(0.01)
    return f"<html>{url}</html>"


def _virtual_time(loop: str) -> dict[str, Any]:
    if loop == "trio":
        from trio.testing import MockClock

        return {"clock": MockClock(autojump_threshold=0)}
    import looptime

    return {"loop_factory": looptime.new_event_loop}


@pytest.mark.parametrize(
    ("loop", "engine"),
    [
        pytest.param(*path, id="+".join(path))
        for path in PATHS["asyncio"] + PATHS["trio"]
    ],
)
@pytest.mark.parametrize(
    "code", [pytest.param(code, id=name) for name, code in DOCSTRING_EXAMPLES]
)
def test_docstring_example(
    code: str, loop: str, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A docstring's ``Example::`` runs in async code, in virtual time."""
    if engine == "anyio":
        use_engine(monkeypatch, "anyio")
    else:
        use_engine(monkeypatch, "native")
    namespace: dict[str, Any] = {
        name: getattr(aioscheduler, name) for name in aioscheduler.__all__
    }
    namespace.update(
        anyio=anyio,
        datetime=datetime,
        timedelta=timedelta,
        UTC=UTC,
        work=_work,
        fetch=_fetch,
        urls=[f"https://example.org/{n}" for n in range(3)],
    )
    source = "async def main():\n" + textwrap.indent(code, "    ") + "\n"
    exec(compile(source, "<docstring example>", "exec"), namespace)
    anyio.run(namespace["main"], backend=loop, backend_options=_virtual_time(loop))


def test_docstring_examples_found() -> None:
    assert DOCSTRING_EXAMPLES, "no Example:: blocks found in public docstrings"
