"""Fail unless every public name has a docstring and a place in the built API reference.

Run after the HTML build (``nox -s docs`` does)::

    python docs/check_api.py docs/_build/html

Public names are ``aioscheduler.__all__`` and, for each class among them,
the members that do not start with ``_`` (instance attributes included, as
found on an instance made with default arguments). autodoc leaves out a
member that has no docstring, so a missing docstring shows up here as a
name missing from ``objects.inv``.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sphinx.util.inventory import InventoryFile

import aioscheduler

# Members inherited from builtins (Exception.args, ...) are not ours to document.
OUR_MODULE = "aioscheduler"


def _ours(owner: type, name: str) -> bool:
    for cls in inspect.getmro(owner):
        if name in vars(cls):
            return getattr(cls, "__module__", "").startswith(OUR_MODULE)
    return True  # an instance attribute, set in __init__


def _instance(cls: type) -> Any:
    try:
        return cls()
    except (TypeError, ValueError):
        return None  # Task: made by schedulers only; a trigger needs arguments


def public_names() -> Iterator[tuple[str, Any]]:
    """Yield (dotted name, object) for every public name and member."""
    for name in aioscheduler.__all__:
        obj = getattr(aioscheduler, name)
        yield f"aioscheduler.{name}", obj
        if not inspect.isclass(obj):
            continue
        members = set(dir(obj))
        if not issubclass(obj, BaseException):
            instance = _instance(obj)
            if instance is not None:
                members |= set(dir(instance))
        for member in sorted(members):
            if member.startswith("_") or not _ours(obj, member):
                continue
            yield (
                f"aioscheduler.{name}.{member}",
                inspect.getattr_static(obj, member, None),
            )


def main(build_dir: str) -> int:
    inventory_path = Path(build_dir, "objects.inv")
    with inventory_path.open("rb") as stream:
        inventory = InventoryFile.load(stream, "", lambda base, uri: uri)
    data = getattr(inventory, "data", inventory)  # Sphinx >= 8.2 wraps it
    documented = {
        name
        for kind, entries in data.items()
        if kind.startswith("py:")
        for name in entries
    }

    problems = []
    for dotted, obj in public_names():
        if dotted not in documented:
            problems.append(f"{dotted}: not in the API reference (no docstring?)")
        elif inspect.isclass(obj) and not (vars(obj).get("__doc__") or "").strip():
            problems.append(f"{dotted}: the class has no docstring of its own")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} public name(s) undocumented", file=sys.stderr)
        return 1
    print(f"API reference complete: {sum(1 for _ in public_names())} public names")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "docs/_build/html"))
