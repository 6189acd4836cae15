from __future__ import annotations

import os

import psycopg2
import pytest

from devstack.net import port_is_open
from devstack.postgres import LocalPostgres

pytestmark = pytest.mark.integration  # starts a PostgreSQL server of its own


def test_cluster_starts_serves_md5_and_is_removed():
    pg = LocalPostgres().start()
    data_dir, port = pg.base_dir, pg.port
    try:
        with psycopg2.connect(pg.dsn()) as conn, conn.cursor() as cur:
            cur.execute("show fsync")
            assert cur.fetchone()[0] == "off"
            cur.execute("show wal_level")
            assert cur.fetchone()[0] == "logical"  # change capture reads a logical slot
            cur.execute("select rolpassword like 'md5%%' from pg_authid where rolname = current_user")
            assert cur.fetchone()[0] is True  # SCRAM would break the Redshift driver
        if os.geteuid() == 0:
            assert os.stat(data_dir / "data").st_uid != 0  # initdb refuses root
    finally:
        pg.stop()
    assert not port_is_open("127.0.0.1", port)
    assert not data_dir.exists()
