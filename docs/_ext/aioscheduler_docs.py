"""Sphinx helpers for the aioscheduler docs.

``.. runnable::``
    A complete Python program, shown as a code block whose caption says which
    event loops it runs on. ``tests/test_docs_examples.py`` finds every one
    in the ``.rst`` sources and runs it on each backend listed in
    ``:backends:`` (``asyncio``, ``trio``), or with pytest (``pytest``).

    ``:needs: postgres`` marks a program that needs a PostgreSQL server: it
    reads the server's URL from the ``DATABASE_URL`` environment variable,
    and the test runs it against the test suite's throwaway cluster.

``.. output::``
    What the preceding ``runnable`` prints (stdout and stderr together); the
    same test compares it, with ``...`` matching anything, as in doctest.

``.. include-if-exists:: path``
    Include a Markdown (MyST) or reST file if it exists; otherwise render the
    directive's own content. The performance page uses it for the benchmark
    table that ``benchmarks/`` writes.

Public classes have ``__module__ = "aioscheduler"`` (the package rewrites it,
so reprs and docs show ``aioscheduler.Task``); autodoc then looks for
attribute docstrings (``Task.callback``, ``Manager.schedulers``) in
``aioscheduler/__init__.py`` and finds none. ``_attribute_docs_from_source``
hands it the ones from the private modules where the classes are defined.

Python names that the docs reference but cannot resolve offline (no
intersphinx inventories are fetched: builds must work without a network) are
turned into plain links to the Python, AnyIO and Trio documentation here, so
``nitpicky`` can stay on and catch our own broken references.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from pathlib import Path
from typing import Any, ClassVar

from docutils import nodes
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.directives.code import CodeBlock
from sphinx.environment import BuildEnvironment
from sphinx.pycode import ModuleAnalyzer
from sphinx.util.docutils import SphinxDirective

BACKENDS = {"asyncio": "asyncio", "trio": "Trio", "pytest": "pytest"}


def _backends(argument: str) -> list[str]:
    names = argument.split()
    unknown = [name for name in names if name not in BACKENDS]
    if not names or unknown:
        raise ValueError(
            f"backends must be some of {sorted(BACKENDS)}, got {argument!r}"
        )
    return names


NEEDS = {"postgres"}


def _needs(argument: str) -> list[str]:
    names = argument.split()
    unknown = [name for name in names if name not in NEEDS]
    if not names or unknown:
        raise ValueError(f"needs must be some of {sorted(NEEDS)}, got {argument!r}")
    return names


class Runnable(CodeBlock):
    """A complete program that the test suite runs on the backends it names."""

    required_arguments = 0
    optional_arguments = 0
    option_spec: ClassVar[dict[str, Any]] = {
        **CodeBlock.option_spec,
        "backends": _backends,
        "needs": _needs,
    }

    def run(self) -> list[nodes.Node]:
        backends: list[str] = self.options.pop("backends", None) or []
        needs: list[str] = self.options.pop("needs", None) or []
        if not backends:
            raise self.error(
                "runnable needs a :backends: option (asyncio, trio, pytest)"
            )
        if "caption" not in self.options:
            if backends == ["pytest"]:
                caption = "Run with pytest"
            else:
                caption = "Runs on " + " and ".join(BACKENDS[b] for b in backends)
            if needs:
                caption += ", with a PostgreSQL server in DATABASE_URL"
            self.options["caption"] = caption
        self.arguments = ["python"]
        return super().run()


class Output(CodeBlock):
    """What the preceding runnable prints."""

    required_arguments = 0
    optional_arguments = 0

    def run(self) -> list[nodes.Node]:
        self.arguments = ["text"]
        self.options.setdefault("caption", "Output")
        self.options.setdefault("class", []).append("runnable-output")
        return super().run()


class IncludeIfExists(SphinxDirective):
    """Include a file if present, else render the directive's content."""

    required_arguments = 1
    has_content = True

    def run(self) -> list[nodes.Node]:
        rel, path = self.env.relfn2path(self.arguments[0], self.env.docname)
        self.env.note_dependency(rel)
        source = self.state_machine.get_source(self.lineno)
        if Path(path).is_file():
            # "/" + rel: a path from the docs root; an absolute filesystem
            # path would be read as docs-relative too.
            lines = [f".. include:: /{rel}"]
            if path.endswith(".md"):
                lines.append("   :parser: myst_parser.sphinx_")
            self.state_machine.insert_input(lines, source)
            return []
        container = nodes.container()
        self.state.nested_parse(self.content, self.content_offset, container)
        return container.children


# -- external references, resolved without inventories ----------------------

PYTHON = "https://docs.python.org/3/library/"
ANYIO = "https://anyio.readthedocs.io/en/stable/api.html#"
TRIO = "https://trio.readthedocs.io/en/stable/"

BUILTIN_EXCEPTIONS = {
    "BaseException",
    "Exception",
    "ExceptionGroup",
    "BaseExceptionGroup",
    "KeyboardInterrupt",
    "SystemExit",
    "ValueError",
    "TypeError",
    "RuntimeError",
    "KeyError",
    "LookupError",
    "ConnectionError",
}


def _external_url(target: str) -> str | None:
    name = target.lstrip("~.")
    if name in BUILTIN_EXCEPTIONS:
        return f"{PYTHON}exceptions.html#{name}"
    if name in {"int", "float", "bool", "str", "object", "tuple", "type", "list"}:
        return f"{PYTHON}functions.html#{name}"
    if name == "None":
        return f"{PYTHON}constants.html#None"
    if name.startswith("anyio."):
        return ANYIO + name
    if name.startswith("trio.testing."):
        return f"{TRIO}reference-testing.html#{name}"
    if name.startswith("trio."):
        return f"{TRIO}reference-core.html#{name}"
    module = name.split(".", 1)[0]
    if module in {
        "asyncio",
        "collections",
        "contextvars",
        "datetime",
        "gc",
        "logging",
        "os",
        "pathlib",
        "sqlite3",
        "time",
        "typing",
        "uuid",
        "zoneinfo",
    }:
        page = {"collections": "collections.abc"}.get(module, module)
        if name.startswith("asyncio."):
            page = "asyncio"
        return f"{PYTHON}{page}.html#{name}"
    return None


def _missing_reference(
    app: Sphinx, env: BuildEnvironment, node: pending_xref, contnode: nodes.Element
) -> nodes.Element | None:
    if node.get("refdomain") != "py":
        return None
    url = _external_url(node["reftarget"])
    if url is None:
        return None
    reference = nodes.reference("", "", internal=False, refuri=url)
    reference.append(contnode)
    return reference


def _defining_analyzer(cls: type) -> ModuleAnalyzer | None:
    """Return the analyzer of the private module whose source defines *cls*."""
    for modname, module in sorted(sys.modules.items()):
        if not modname.startswith("aioscheduler._") or module is None:
            continue
        if getattr(module, cls.__name__, None) is not cls:
            continue
        analyzer = ModuleAnalyzer.for_module(modname)
        analyzer.analyze()
        if analyzer.tags.get(cls.__qualname__, ("",))[0] == "class":
            return analyzer
    return None


def _attribute_docs_from_source(app: Sphinx) -> None:
    package = importlib.import_module("aioscheduler")
    public = ModuleAnalyzer.for_module("aioscheduler")
    public.analyze()
    for name in package.__all__:
        cls = getattr(package, name)
        if not inspect.isclass(cls) or cls.__module__ != "aioscheduler":
            continue
        real = _defining_analyzer(cls)
        if real is None:
            continue
        prefix = cls.__qualname__
        for (namespace, attr), doc in real.attr_docs.items():
            if namespace == prefix:
                public.attr_docs.setdefault((namespace, attr), doc)
        for tag, order in real.tagorder.items():
            if tag == prefix or tag.startswith(prefix + "."):
                public.tagorder.setdefault(tag, order)


# Type annotations as written for type checkers, and as shown to readers.
# Names come qualified, as in "~collections.abc.Callable".
_Q = r"~?(?:[\w]+\.)*"
_ANY3 = rf"{_Q}Any, {_Q}Any, {_Q}Any"
_SIGNATURE_REWRITES = [
    (
        re.compile(
            rf"{_Q}Callable\[\[{_Q}Unpack\[PosArgsT\]\], {_Q}Coroutine\[{_ANY3}\]\]"
        ),
        "~collections.abc.Callable[..., ~collections.abc.Coroutine]",
    ),
    (re.compile(rf"\*args: {_Q}Unpack\[PosArgsT\]"), "*args: ~typing.Any"),
    (re.compile(rf"{_Q}Coroutine\[{_ANY3}\]"), "~collections.abc.Coroutine"),
    (
        re.compile(rf"type\[{_Q}SchedulerT\]"),
        "type[~aioscheduler.TimedScheduler | ~aioscheduler.QueuedScheduler]",
    ),
]


def _readable_signature(
    app: Sphinx,
    what: str,
    name: str,
    obj: object,
    options: object,
    signature: str | None,
    return_annotation: str | None,
) -> tuple[str | None, str | None] | None:
    if not name.startswith("aioscheduler."):
        return None
    for pattern, replacement in _SIGNATURE_REWRITES:
        if signature:
            signature = pattern.sub(replacement, signature)
        if return_annotation:
            return_annotation = pattern.sub(replacement, return_annotation)
    return signature, return_annotation


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("autodoc-process-signature", _readable_signature)
    app.connect("builder-inited", _attribute_docs_from_source)
    app.add_directive("runnable", Runnable)
    app.add_directive("output", Output)
    app.add_directive("include-if-exists", IncludeIfExists)
    app.connect("missing-reference", _missing_reference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
