"""The PostgreSQL store against a real server (a throwaway cluster)."""

from __future__ import annotations

import psycopg
import pytest

from tests._postgres import Cluster

pytestmark = pytest.mark.anyio


def test_cluster_is_loopback_and_password_protected(
    postgres_cluster: Cluster, postgres_dsn: str
) -> None:
    with psycopg.connect(postgres_dsn) as con:
        row = con.execute("SELECT inet_server_addr()::text, current_user").fetchone()
    assert row == ("127.0.0.1/32", "aioscheduler_test")
    with pytest.raises(psycopg.OperationalError, match="password authentication"):
        psycopg.connect(postgres_cluster.dsn(password="wrong")).close()
