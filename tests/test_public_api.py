"""The public surface: names, ``__all__``, ``__module__``, docstrings, typing."""

from __future__ import annotations

import importlib
import importlib.resources
import inspect
from typing import Any

import pytest

import aioscheduler

SPEC_NAMES = {
    "TimedScheduler",
    "QueuedScheduler",
    "LifoQueuedScheduler",
    "Manager",
    "Task",
    "SchedulerError",
    "TaskLimitReached",
    "SchedulerClosed",
    "TaskCancelled",
    "SchedulerStatistics",  # issue 9: statistics() returns it
    "Schedule",  # issue 10: recurring schedules
    "ScheduleConflict",
    "Every",  # issue 10: triggers
    "Cron",
    "Calendar",
    "At",
    "AnyOf",
    "durable",  # issue 11: durable jobs
    "current_job",
    "JobContext",
    "DurableBatch",
    "JobConflict",
    "JobStore",
    "SQLiteStore",
    "PostgresStore",  # issue 12: the shared PostgreSQL store
    "StoreError",
    "StoreLocked",
    "__version__",
}
FUNCTION_NAMES = ["current_job", "durable"]
CLASS_NAMES = sorted(SPEC_NAMES - {"__version__", *FUNCTION_NAMES})
ONE_X_NAMES = ["TimedScheduler", "QueuedScheduler", "Manager"]


def public_members(cls: type) -> list[tuple[str, Any]]:
    """Public attributes that the library itself defines on *cls* or a base."""
    members = []
    for name in dir(cls):
        if name.startswith("_"):
            continue
        for klass in cls.__mro__:
            if name in vars(klass):
                if klass.__module__.startswith("aioscheduler"):
                    members.append((name, vars(klass)[name]))
                break
    return members


class TestExports:
    def test_all_is_exactly_the_spec_names(self) -> None:
        assert set(aioscheduler.__all__) == SPEC_NAMES
        assert len(aioscheduler.__all__) == len(SPEC_NAMES)

    @pytest.mark.parametrize("name", sorted(SPEC_NAMES))
    def test_name_importable(self, name: str) -> None:
        assert hasattr(aioscheduler, name)

    def test_star_import(self) -> None:
        namespace: dict[str, Any] = {}
        exec("from aioscheduler import *", namespace)
        assert set(namespace) >= SPEC_NAMES

    @pytest.mark.parametrize("name", ONE_X_NAMES)
    def test_one_x_names_importable(self, name: str) -> None:
        module = importlib.import_module("aioscheduler")
        assert isinstance(getattr(module, name), type)

    @pytest.mark.parametrize("name", CLASS_NAMES)
    def test_module_is_the_package(self, name: str) -> None:
        obj = getattr(aioscheduler, name)
        assert isinstance(obj, type)
        assert obj.__module__ == "aioscheduler"
        assert repr(obj) == f"<class 'aioscheduler.{name}'>"

    @pytest.mark.parametrize("name", FUNCTION_NAMES)
    def test_function_module_is_the_package(self, name: str) -> None:
        obj = getattr(aioscheduler, name)
        assert callable(obj)
        assert obj.__module__ == "aioscheduler"

    def test_version_is_a_string(self) -> None:
        assert isinstance(aioscheduler.__version__, str)
        assert aioscheduler.__version__
        assert aioscheduler.__version__[0].isdigit()

    def test_py_typed_shipped(self) -> None:
        marker = importlib.resources.files("aioscheduler") / "py.typed"
        assert marker.is_file()


class TestDocstrings:
    def test_package_docstring(self) -> None:
        assert inspect.getdoc(aioscheduler)

    @pytest.mark.parametrize("name", CLASS_NAMES)
    def test_class_docstring(self, name: str) -> None:
        cls = getattr(aioscheduler, name)
        assert cls.__doc__
        assert cls.__doc__.strip()

    @pytest.mark.parametrize("name", CLASS_NAMES)
    def test_public_methods_documented(self, name: str) -> None:
        cls = getattr(aioscheduler, name)
        missing = []
        for member_name, member in public_members(cls):
            if isinstance(member, staticmethod | classmethod):
                member = member.__func__
            if isinstance(member, property) or callable(member):
                doc = member.__doc__
                if not (doc and doc.strip()):
                    missing.append(member_name)
        assert missing == []

    @pytest.mark.parametrize(
        ("name", "methods"),
        [
            (
                "TimedScheduler",
                ["schedule", "start_at", "start_after", "cancel", "start", "run"],
            ),
            ("QueuedScheduler", ["schedule", "start_soon", "cancel", "start", "run"]),
            ("LifoQueuedScheduler", ["schedule", "start_soon", "cancel"]),
            (
                "Manager",
                ["schedule", "start_at", "start_after", "start_soon", "cancel"],
            ),
            ("Task", ["cancel", "cancelled", "done", "result", "exception", "wait"]),
        ],
    )
    def test_spec_methods_exist_and_are_documented(
        self, name: str, methods: list[str]
    ) -> None:
        cls = getattr(aioscheduler, name)
        for method in methods:
            assert inspect.getdoc(getattr(cls, method)), f"{name}.{method}"

    @pytest.mark.parametrize(
        "name", ["TimedScheduler", "QueuedScheduler", "LifoQueuedScheduler", "Manager"]
    )
    def test_lifecycle_members(self, name: str) -> None:
        cls = getattr(aioscheduler, name)
        for method in ["start", "run", "join", "aclose", "__aenter__", "__aexit__"]:
            assert callable(getattr(cls, method)), f"{name}.{method}"
        for method in ["run", "join", "aclose"]:
            assert inspect.iscoroutinefunction(getattr(cls, method)), method
        assert isinstance(inspect.getattr_static(cls, "is_started"), property)
        assert inspect.getdoc(cls.is_started)

    def test_task_fields(self) -> None:
        for field in ["priority", "uuid", "when"]:
            member = inspect.getattr_static(aioscheduler.Task, field)
            assert isinstance(member, property), field
            assert inspect.getdoc(member), field
        assert hasattr(aioscheduler.Task, "callback")


class TestExceptionHierarchy:
    def test_scheduler_error(self) -> None:
        assert issubclass(aioscheduler.SchedulerError, Exception)

    def test_task_limit_reached(self) -> None:
        cls = aioscheduler.TaskLimitReached
        assert issubclass(cls, aioscheduler.SchedulerError)
        assert issubclass(cls, ValueError)

    def test_scheduler_closed(self) -> None:
        cls = aioscheduler.SchedulerClosed
        assert issubclass(cls, aioscheduler.SchedulerError)
        assert issubclass(cls, RuntimeError)

    def test_task_cancelled(self) -> None:
        cls = aioscheduler.TaskCancelled
        assert issubclass(cls, aioscheduler.SchedulerError)
        # Not the event loop's cancellation: catching Exception catches it,
        # and it is no BaseException-only cancellation signal.
        assert issubclass(cls, Exception)

    def test_errors_are_distinct(self) -> None:
        errors = [
            aioscheduler.TaskLimitReached,
            aioscheduler.SchedulerClosed,
            aioscheduler.TaskCancelled,
        ]
        for error in errors:
            others = [other for other in errors if other is not error]
            assert not any(issubclass(error, other) for other in others)
