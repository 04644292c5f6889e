"""Sphinx configuration for the aioscheduler docs.

Build: ``nox -s docs`` (HTML with warnings as errors, then the examples and
the API coverage check), or ``sphinx-build -W --keep-going -b html docs
docs/_build/html``. Needs Graphviz's ``dot`` on PATH (Debian/Ubuntu: ``apt-get
install graphviz``) for the front page's diagram.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "_ext"))

import aioscheduler  # noqa: E402

project = "aioscheduler"
author = "aioscheduler developers"
copyright = "aioscheduler developers"
release = aioscheduler.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.graphviz",
    "sphinxcontrib_trio",
    "myst_parser",
    "aioscheduler_docs",
]

# Only .rst pages; Markdown is included on purpose (the benchmark table),
# never built as a page of its own.
source_suffix = {".rst": "restructuredtext"}
exclude_patterns = ["_build", "performance", "README.md"]
templates_path: list[str] = []

# Every reference must resolve: a renamed API breaks the build.
nitpicky = True
nitpick_ignore_regex = [
    # Type variables and private helpers that show up in signatures.
    (
        "py:class",
        r"(aioscheduler\.)?(_\w+\.)*(SchedulerT|PosArgsT|ErrorHandler|T|T_co)",
    ),
    # Task as its private module names it in generic signatures (Task[T]).
    ("py:class", r"aioscheduler\._task\.Task"),
    # The Literal aliases of add_schedule's policies.
    ("py:class", r"(aioscheduler\.)?(_\w+\.)*(Coalesce|Overlap|OnConflict)"),
    ("py:class", r"Unpack\[.*\]|\*PosArgsT"),
    # The triggers' private base class (AnyOf's arguments): Every, Cron,
    # Calendar, At and AnyOf are the public ones.
    ("py:class", r"(aioscheduler\.)?(_\w+\.)*Trigger"),
    ("py:class", r"(typing\.)?(Any|Literal|Callable|Coroutine|Generic)"),
    # The records in JobStore's signatures (NewJob, Claim, JobRecord, ...):
    # private until a second store implementation settles them.
    ("py:class", r"aioscheduler\.stores\._interface\.\w+"),
    ("py:class", r"Task"),
]

# Plain ``::`` blocks are Python: only docstrings use them (their examples
# run in tests/test_docs_examples.py, which also refuses such blocks in the
# .rst pages, where every Python example is a ``.. runnable::``).
highlight_language = "python3"
pygments_style = "friendly"
pygments_dark_style = "monokai"

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autodoc_inherit_docstrings = True
autoclass_content = "class"

# Diagrams as SVG: sharp at any zoom, and their text stays text.
graphviz_output_format = "svg"

html_theme = "furo"
html_title = f"aioscheduler {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_theme_options = {
    "navigation_with_keys": True,
}
html_show_sourcelink = False
