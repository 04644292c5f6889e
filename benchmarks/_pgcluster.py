"""A throwaway PostgreSQL cluster for ``benchmarks/postgres.py``.

The tests' cluster (``tests/_postgres.py``: ``initdb`` into a temporary
directory, ``pg_ctl`` on 127.0.0.1 and a free port, a login role with a
password, stopped and deleted at exit) with the settings of a benchmark:
``fsync`` on by default (every commit waits for the disk, as in
production; the tests turn it off for speed) and more shared buffers
(200,000 rows and their indexes fit).
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path

from tests._postgres import (
    DATABASE,
    HOW_TO_GET,
    ROLE,
    Cluster,
    _free_port,
    find_bin_dir,
)

__all__ = ["HOW_TO_GET", "Cluster", "find_bin_dir", "start"]

#: Server settings of the benchmark cluster (besides fsync).
SETTINGS = (
    "-c shared_buffers=256MB",
    "-c max_connections=100",
    "-c max_wal_size=2GB",
)


def start(bin_dir: Path, *, fsync: bool = True) -> Cluster:
    """Create and start a cluster; stopped at exit if no one stops it."""
    as_postgres = os.geteuid() == 0
    directory = Path(tempfile.mkdtemp(prefix="aioscheduler-pgbench-"))
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
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        for attempt in range(5):
            cluster.port = _free_port()
            options = " ".join(
                (
                    f"-h 127.0.0.1 -p {cluster.port} -k {directory}",
                    *SETTINGS,
                    "" if fsync else "-F",
                )
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
                if attempt == 4:
                    raise
                time.sleep(0.2)
        cluster.psql_admin(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{password}'")
        cluster.psql_admin(f"CREATE DATABASE {DATABASE} OWNER {ROLE}")
    except BaseException:
        cluster.stop()
        raise
    return cluster


def server_version(cluster: Cluster) -> str:
    """The server's ``server_version``."""
    import psycopg

    with psycopg.connect(cluster.admin_dsn(), autocommit=True) as con:
        row = con.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "-"
