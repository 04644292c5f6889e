"""A throwaway PostgreSQL cluster for the tests that need a real server.

``initdb`` into a temporary directory, ``pg_ctl start`` on 127.0.0.1 and a
free port (loopback only; the Unix socket in the same temporary directory),
one database and one login role with a password; stopped and deleted at the
end of the session (and at interpreter exit, should the session end early).

The binaries are looked up in ``$AIOSCHEDULER_PG_BIN``, then on ``PATH``,
then in ``/usr/lib/postgresql/<version>/bin`` (Debian's ``postgresql``
package; the newest version wins). As root, the cluster runs as the
``postgres`` user (``runuser``): the server refuses to run as root.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = [
    "HOW_TO_GET",
    "Cluster",
    "find_bin_dir",
    "start_cluster",
]

#: The one line a skipped run prints.
HOW_TO_GET: Final = (
    "PostgreSQL server binaries (initdb, pg_ctl) not found: "
    "`apt-get install postgresql` (Debian/Ubuntu), or set AIOSCHEDULER_PG_BIN "
    "to the directory that holds them"
)

DATABASE: Final = "aioscheduler_test"
ROLE: Final = "aioscheduler_test"


def find_bin_dir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or ``None``."""

    def usable(directory: Path) -> bool:
        return all(
            os.access(directory / name, os.X_OK) for name in ("initdb", "pg_ctl")
        )

    env = os.environ.get("AIOSCHEDULER_PG_BIN")
    if env:
        return Path(env) if usable(Path(env)) else None
    on_path = shutil.which("initdb")
    if on_path is not None and usable(Path(on_path).parent):
        return Path(on_path).parent
    found: list[tuple[int, Path]] = []
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        for version in root.iterdir():
            directory = version / "bin"
            if version.name.isdigit() and usable(directory):
                found.append((int(version.name), directory))
    return max(found)[1] if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Cluster:
    """A running throwaway cluster."""

    bin_dir: Path
    directory: Path
    port: int
    password: str
    as_postgres: bool
    stopped: bool = False

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def socket_dir(self) -> Path:
        return self.directory

    def dsn(
        self,
        *,
        user: str = ROLE,
        password: str | None = None,
        dbname: str = DATABASE,
    ) -> str:
        """A ``postgresql://`` URL over TCP on the loopback interface."""
        secret = self.password if password is None else password
        return f"postgresql://{user}:{secret}@127.0.0.1:{self.port}/{dbname}"

    def admin_dsn(self, dbname: str = DATABASE) -> str:
        """The superuser, over the cluster's Unix socket (trusted)."""
        return f"host={self.socket_dir} port={self.port} user=postgres dbname={dbname}"

    def command(self, *argv: str) -> list[str]:
        if self.as_postgres:
            return ["runuser", "-u", "postgres", "--", *argv]
        return list(argv)

    def run(self, *argv: str, timeout: float = 120) -> None:
        result = subprocess.run(
            self.command(*argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode:
            raise RuntimeError(
                f"{' '.join(argv[:2])} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )

    def psql_admin(self, statement: str, dbname: str = "postgres") -> None:
        """Run one statement as the superuser (through psycopg)."""
        import psycopg

        with psycopg.connect(self.admin_dsn(dbname), autocommit=True) as con:
            con.execute(statement.encode())

    def stop(self) -> None:
        """Stop the server and delete its directory; idempotent."""
        if self.stopped:
            return
        self.stopped = True
        try:
            if (self.data / "postmaster.pid").exists():
                with contextlib.suppress(Exception):
                    self.run(
                        str(self.bin_dir / "pg_ctl"),
                        "-D",
                        str(self.data),
                        "-m",
                        "immediate",
                        "-w",
                        "stop",
                        timeout=60,
                    )
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


def start_cluster(bin_dir: Path) -> Cluster:
    """Create and start a cluster; stop it at exit if no one else does."""
    as_postgres = os.geteuid() == 0
    directory = Path(tempfile.mkdtemp(prefix="aioscheduler-pg-"))
    if as_postgres:
        shutil.chown(directory, "postgres", "postgres")
    password = secrets.token_urlsafe(18)
    cluster = Cluster(bin_dir, directory, 0, password, as_postgres)
    atexit.register(cluster.stop)
    try:
        cluster.run(
            str(bin_dir / "initdb"),
            "-D",
            str(cluster.data),
            "-U",
            "postgres",
            "-A",
            "trust",  # the superuser, on the private Unix socket only
            "--auth-host=scram-sha-256",  # TCP: the test role's password
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        for attempt in range(5):
            cluster.port = _free_port()
            options = (
                f"-h 127.0.0.1 -p {cluster.port} -k {directory} -F "
                "-c shared_buffers=32MB -c max_connections=100"
            )
            try:
                cluster.run(
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(cluster.data),
                    "-l",
                    str(directory / "server.log"),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "60",
                    "start",
                )
                break
            except RuntimeError:
                # Most likely the port was taken meanwhile: try another.
                if attempt == 4:
                    log = directory / "server.log"
                    tail = log.read_text()[-2000:] if log.exists() else ""
                    raise RuntimeError(f"the server did not start:\n{tail}") from None
                time.sleep(0.2)
        cluster.psql_admin(
            f"CREATE ROLE {ROLE} LOGIN PASSWORD '{password}'"  # token_urlsafe: no '
        )
        cluster.psql_admin(f"CREATE DATABASE {DATABASE} OWNER {ROLE}")
    except BaseException:
        cluster.stop()
        raise
    return cluster
