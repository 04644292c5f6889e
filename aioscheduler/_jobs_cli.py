"""``python -m aioscheduler jobs``: look inside a durable store.

python -m aioscheduler jobs --store jobs.db list [--state S]... [--due-from ISO]
    [--due-to ISO] [--key-prefix P] [--limit N]
python -m aioscheduler jobs --store jobs.db show KEY
python -m aioscheduler jobs --store jobs.db cancel KEY
python -m aioscheduler jobs --store jobs.db stats
python -m aioscheduler jobs --store jobs.db schedules
python -m aioscheduler jobs --store postgresql://app@db/app [--schema S] stats

Every command prints an aligned table, or JSON with ``--json``; times are
ISO 8601 in UTC. ``--store``, ``--schema`` and ``--json`` go before or after
the command. The store is opened for inspection: without its process lock,
so this works while schedulers run on the same store, and it never creates
or migrates a store (a missing file, or a PostgreSQL schema without the
store's tables, is refused). A PostgreSQL URL is given to psycopg as it is
(TLS settings included); its password never appears in the output or in an
error message (prefer ``PGPASSWORD`` or a ``~/.pgpass`` file to a password
in the URL: a command line is visible to other users of the machine).

Exit status: 0 done; 1 the job asked for is absent, or ``cancel`` found it
not pending; 2 a usage error or a store that cannot be read (missing file,
not an aioscheduler store, made by a newer version, an unsupported URL,
a database that cannot be reached).
Output cut short by a closed pipe (``| head``) ends quietly with status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Protocol, get_args

import anyio

from ._exceptions import StoreError
from ._registry import decode_arguments
from ._triggers import trigger_from_dict
from .stores._fires import from_micros, to_micros
from .stores._interface import JobRecord, JobState, ScheduleRecord
from .stores._sqlite import SQLiteStore

__all__ = ["main"]

STATES: Final[tuple[str, ...]] = get_args(JobState)
#: Exit statuses.
OK: Final = 0
NOT_DONE: Final = 1  # the job is absent, or not pending for cancel
UNUSABLE: Final = 2  # usage error, or a store that cannot be read

# "scheme://...": a store URL, not a file path (a Windows drive "C:\" is not).
_URL: Final = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://")
_ARGUMENTS_WIDTH: Final = 40


class CliError(Exception):
    """A clear message for stderr, and the exit status."""

    def __init__(self, message: str, status: int = UNUSABLE) -> None:
        super().__init__(message)
        self.status = status


class InspectableStore(Protocol):
    """What the command line needs from a store (SQLite or PostgreSQL)."""

    async def open_for_inspection(self) -> None: ...
    async def close(self) -> None: ...
    async def list_jobs(
        self,
        *,
        states: Sequence[str] = (),
        due_from: int | None = None,
        due_to: int | None = None,
        key_prefix: str | None = None,
        limit: int | None = 100,
    ) -> list[JobRecord]: ...
    async def get_job(self, key: str) -> JobRecord | None: ...
    async def cancel(self, key: str) -> bool: ...
    async def list_schedules(self) -> list[ScheduleRecord]: ...
    async def stats(self) -> dict[str, Any]: ...


def _sqlite_store(location: str, schema: str | None) -> InspectableStore:
    if schema is not None:
        raise CliError(
            "--schema is for a PostgreSQL store (a postgresql:// URL); a SQLite "
            "store has no schema"
        )
    path = Path(location)
    # Checked first: opening a store creates a missing file, and looking
    # must never create one.
    if not path.exists():
        raise CliError(f"no store at {location!r}: the file does not exist")
    if path.is_dir():
        raise CliError(f"no store at {location!r}: it is a directory")
    return SQLiteStore(path)


def _postgres_store(location: str, schema: str | None) -> InspectableStore:
    from .stores._postgres import PostgresStore  # psycopg is imported when made

    try:
        if schema is None:
            return PostgresStore(location)
        return PostgresStore(location, schema=schema)
    except ImportError as exc:  # psycopg is missing: the message says how to get it
        raise CliError(str(exc)) from None
    except (TypeError, ValueError) as exc:
        # PostgresStore's own messages, which never quote the URL.
        raise CliError(str(exc)) from None


#: Stores by URL scheme: a factory of (the URL, ``--schema`` or ``None``).
URL_STORES: Final[dict[str, Callable[[str, str | None], InspectableStore]]] = {
    "postgresql": _postgres_store,
    "postgres": _postgres_store,
}

_WHAT_STORE: Final = "the path of a SQLite store, or a postgresql:// URL"


def store_for(location: str, schema: str | None = None) -> InspectableStore:
    """The store that ``--store`` names: a SQLite file path, or a store URL
    (``postgresql://``; *schema* chooses the PostgreSQL schema)."""
    if not location:
        raise CliError(f"--store needs a value: {_WHAT_STORE}")
    match = _URL.match(location)
    if match is None:
        return _sqlite_store(location, schema)
    scheme = match["scheme"].lower()
    factory = URL_STORES.get(scheme)
    if factory is None:
        raise CliError(
            f"store URLs of the form {scheme}://... are not supported; "
            f"give {_WHAT_STORE}"
        )
    return factory(location, schema)


# -- formatting -----------------------------------------------------------------


def iso(micros: int | None) -> str | None:
    """ISO 8601 in UTC, ``Z``-suffixed, to the microsecond when there is one."""
    if micros is None:
        return None
    return from_micros(micros).isoformat().replace("+00:00", "Z")


def _decoded_arguments(text: str) -> dict[str, Any]:
    try:
        args, kwargs = decode_arguments(text)
    except (ValueError, TypeError, IndexError, KeyError):
        return {"raw": text}  # not what a durable add writes; shown as stored
    return {"args": args, "kwargs": kwargs}


def _call_text(arguments: dict[str, Any]) -> str:
    if "raw" in arguments:
        return f"<raw {arguments['raw']}>"
    parts = [json.dumps(a, ensure_ascii=False) for a in arguments["args"]]
    parts += [
        f"{k}={json.dumps(v, ensure_ascii=False)}"
        for k, v in arguments["kwargs"].items()
    ]
    return ", ".join(parts)


def _json_or_text(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def job_dict(job: JobRecord) -> dict[str, Any]:
    """Every field of *job*, as JSON: times ISO, arguments and result decoded."""
    return {
        "key": job.key,
        "state": job.state,
        "function": job.function,
        "arguments": _decoded_arguments(job.arguments),
        "due": iso(job.due),
        "ready": iso(job.ready),
        "attempt": job.attempt,
        "delivery": job.delivery,
        "misfire_grace": job.misfire_grace,
        "schedule_id": job.schedule_id,
        "lease_owner": job.lease_owner,
        "lease_until": iso(job.lease_until),
        "finished": iso(job.finished),
        "result": _json_or_text(job.result),
        "error": job.error,
    }


def _trigger_text(text: str) -> str:
    try:
        return repr(trigger_from_dict(json.loads(text)))
    except (ValueError, TypeError, LookupError):
        return text  # an unreadable trigger is shown as stored


def schedule_dict(schedule: ScheduleRecord) -> dict[str, Any]:
    """Every field of *schedule*, as JSON: times ISO, trigger decoded."""
    return {
        "id": schedule.id,
        "trigger": _json_or_text(schedule.trigger),
        "trigger_text": _trigger_text(schedule.trigger),
        "function": schedule.function,
        "arguments": _decoded_arguments(schedule.arguments),
        "delivery": schedule.delivery,
        "misfire_grace": schedule.misfire_grace,
        "coalesce": schedule.coalesce,
        "max_catchup": schedule.max_catchup,
        "overlap": schedule.overlap,
        "jitter": schedule.jitter,
        "max_runs": schedule.max_runs,
        "next_fire": iso(schedule.next_fire),
        "high_water": iso(schedule.high_water),
        "runs": schedule.runs,
        "missed": schedule.missed,
        "skipped": schedule.skipped,
    }


def _cell(value: object) -> str:
    """A table cell: no control character from the store reaches the terminal."""
    text = "-" if value is None else str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def table(header: Sequence[str] | None, rows: Sequence[Sequence[object]]) -> str:
    """Rows under *header* (if any), each column padded to its widest cell."""
    cells = [[_cell(v) for v in row] for row in [*([header] if header else []), *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def _duration(seconds: float) -> str:
    """How long ago, roughly: "12.3 s ago", "5 min ago", "3 h ago", "4 days ago"."""
    if seconds < 120:
        return f"{max(seconds, 0):.1f} s ago"
    for unit, size in (("days", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size:.0f} {unit} ago"
    return f"{seconds // 60:.0f} min ago"


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


# -- the commands ---------------------------------------------------------------


async def _list(store: InspectableStore, options: argparse.Namespace) -> int:
    limit: int = options.limit
    jobs = await store.list_jobs(
        states=options.state or (),
        due_from=options.due_from,
        due_to=options.due_to,
        key_prefix=options.key_prefix,
        limit=None if limit == 0 else limit + 1,  # one more: are there more?
    )
    more = limit != 0 and len(jobs) > limit
    if more:
        jobs = jobs[:limit]
    if options.json:
        _print_json([job_dict(job) for job in jobs])
    elif jobs:
        print(
            table(
                ["DUE", "STATE", "ATTEMPT", "KEY", "FUNCTION", "ARGUMENTS"],
                [
                    [
                        iso(job.due),
                        job.state,
                        job.attempt,
                        job.key,
                        job.function,
                        _clip(
                            _call_text(_decoded_arguments(job.arguments)),
                            _ARGUMENTS_WIDTH,
                        ),
                    ]
                    for job in jobs
                ],
            )
        )
    else:
        print("no jobs match")
    if more:
        print(
            f"(the first {limit} shown; more match: raise --limit, 0 for all)",
            file=sys.stderr,
        )
    return OK


async def _show(store: InspectableStore, options: argparse.Namespace) -> int:
    job = await store.get_job(options.key)
    if job is None:
        raise CliError(f"no job with key {options.key!r}", NOT_DONE)
    fields = job_dict(job)
    if options.json:
        _print_json(fields)
        return OK
    fields["arguments"] = _call_text(fields["arguments"])
    if fields["result"] is not None:
        fields["result"] = json.dumps(fields["result"], ensure_ascii=False)
    width = max(map(len, fields))
    for name, value in fields.items():
        print(f"{name.ljust(width)}  {_cell(value)}")
    return OK


async def _cancel(store: InspectableStore, options: argparse.Namespace) -> int:
    key: str = options.key
    if await store.cancel(key):
        if options.json:
            _print_json({"key": key, "cancelled": True})
        else:
            print(f"cancelled {key!r}")
        return OK
    job = await store.get_job(key)
    if job is None:
        why = f"no job with key {key!r}"
    elif job.state == "running":
        why = (
            f"job {key!r} is running (attempt {job.attempt}, lease held by "
            f"{job.lease_owner} until {iso(job.lease_until)}): only a pending job "
            "can be cancelled"
        )
    elif job.state == "pending":  # it ended and was re-added in between
        why = f"job {key!r} changed while cancelling it; try again"
    else:
        why = (
            f"job {key!r} is not pending: it is {job.state} (finished "
            f"{iso(job.finished)}); only a pending job can be cancelled"
        )
    if options.json:
        _print_json({"key": key, "cancelled": False, "reason": why})
    raise CliError(f"cannot cancel: {why}", NOT_DONE)


async def _stats(store: InspectableStore, options: argparse.Namespace) -> int:
    raw = await store.stats()
    counts: dict[str, int] = {state: 0 for state in STATES}
    counts.update(raw["counts"])
    result = {
        "counts": counts,
        "total": sum(counts.values()),
        "schedules": raw["schedules"],
        "next_due": iso(raw["next_due"]),
        "oldest_overdue": iso(raw["oldest_overdue"]),
    }
    if options.json:
        _print_json(result)
        return OK
    oldest = result["oldest_overdue"]
    if oldest is not None:
        oldest = f"{oldest} ({_duration(time.time() - raw['oldest_overdue'] / 1e6)})"
    rows: list[list[object]] = [[state, n] for state, n in counts.items()]
    rows += [
        ["total", result["total"]],
        ["schedules", result["schedules"]],
        ["next due", result["next_due"]],
        ["oldest overdue", oldest],
    ]
    print(table(None, rows))
    return OK


async def _schedules(store: InspectableStore, options: argparse.Namespace) -> int:
    schedules = await store.list_schedules()
    if options.json:
        _print_json([schedule_dict(s) for s in schedules])
    elif schedules:
        print(
            table(
                ["ID", "TRIGGER", "NEXT FIRE", "RUNS", "MISSED", "FUNCTION"],
                [
                    [
                        s.id,
                        _trigger_text(s.trigger),
                        iso(s.next_fire),
                        s.runs,
                        s.missed,
                        s.function,
                    ]
                    for s in schedules
                ],
            )
        )
    else:
        print("no durable schedules")
    return OK


_COMMANDS: Final = {
    "list": _list,
    "show": _show,
    "cancel": _cancel,
    "stats": _stats,
    "schedules": _schedules,
}


async def _run(options: argparse.Namespace) -> int:
    store = store_for(options.store, options.schema)
    try:
        await store.open_for_inspection()
    except StoreError as exc:
        raise CliError(str(exc)) from None
    try:
        return await _COMMANDS[options.command](store, options)
    except StoreError as exc:
        raise CliError(str(exc)) from None
    finally:
        await store.close()


# -- arguments ------------------------------------------------------------------


def _instant(text: str) -> int:
    """An ISO 8601 date or datetime (naive: UTC), as microseconds."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 date or datetime "
            "(e.g. 2030-01-31 or 2030-01-31T09:00:00Z)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return to_micros(when)


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a count (0 or more; 0: no limit)"
        )
    return value


def _parser() -> argparse.ArgumentParser:
    # --store and --json are accepted before or after the command: the
    # command's copies default to SUPPRESS, so they do not override.
    def common(parser: argparse.ArgumentParser, suppress: bool) -> None:
        parser.add_argument(
            "--store",
            metavar="STORE",
            default=argparse.SUPPRESS if suppress else None,
            help=(
                "the store: the path of its SQLite file, or a postgresql:// URL "
                "(never created here; the password is never shown)"
            ),
        )
        parser.add_argument(
            "--schema",
            metavar="S",
            default=argparse.SUPPRESS if suppress else None,
            help="the schema of a PostgreSQL store (default: aioscheduler)",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            default=argparse.SUPPRESS if suppress else False,
            help="print JSON (times as ISO 8601 strings) instead of a table",
        )

    parser = argparse.ArgumentParser(
        prog="python -m aioscheduler jobs",
        description=(
            "Look inside a durable job store, also while a scheduler runs on it. "
            "Times are ISO 8601, UTC."
        ),
        epilog=(
            "exit status: 0 done; 1 the job is absent, or not pending for cancel; "
            "2 a usage error or a store that cannot be read"
        ),
    )
    common(parser, False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        common(sub, True)
        return sub

    listing = command("list", "list jobs in due order")
    listing.add_argument(
        "--state",
        action="append",
        choices=STATES,
        help="only jobs in this state (repeat for several)",
    )
    listing.add_argument(
        "--due-from",
        type=_instant,
        metavar="ISO",
        help="only jobs due at or after this time (naive: UTC)",
    )
    listing.add_argument(
        "--due-to",
        type=_instant,
        metavar="ISO",
        help="only jobs due before this time (naive: UTC)",
    )
    listing.add_argument(
        "--key-prefix", metavar="P", help="only jobs whose key starts with P"
    )
    listing.add_argument(
        "--limit",
        type=_limit,
        default=100,
        metavar="N",
        help="at most N jobs (default 100; 0: all)",
    )
    command("show", "show every field of one job").add_argument("key", metavar="KEY")
    command("cancel", "delete a pending job").add_argument("key", metavar="KEY")
    command("stats", "counts by state, schedules, next due, oldest overdue")
    command("schedules", "list the durable schedules")
    return parser


def main(argv: Sequence[str]) -> int:
    """Run ``python -m aioscheduler jobs`` with *argv* (after ``jobs``);
    return the exit status."""
    parser = _parser()
    try:
        options = parser.parse_args(list(argv))
    except SystemExit as exc:  # usage error (2) or --help (0)
        return exc.code if isinstance(exc.code, int) else UNUSABLE
    if options.store is None:
        parser.print_usage(sys.stderr)
        print(
            f"{parser.prog}: error: --store is required: {_WHAT_STORE}",
            file=sys.stderr,
        )
        return UNUSABLE
    try:
        return anyio.run(_run, options)
    except CliError as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return exc.status
    except BrokenPipeError:  # e.g. piped into head: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return NOT_DONE
