"""What the stand-in asks its backend, and how it opens a backend session, without a server."""

from __future__ import annotations

from devstack.redshift.catalog import COPY_TARGET_MARKER, copy_target_from_rows, copy_target_query
from devstack.redshift.copy import TargetColumn, parse_copy
from devstack.redshift.server import BackendConfig, RedshiftProxy


def spec(target: str = "s.t", columns: str = ""):
    return parse_copy(f"copy {target} {columns} from 's3://b/k' iam_role 'arn:r' csv")


def test_the_in_session_catalog_query_names_the_target_as_a_literal():
    sql = copy_target_query(spec('"it\'s"'))
    assert COPY_TARGET_MARKER.decode() in sql
    assert "pg_catalog.to_regclass('\"it''s\"')" in sql


# rows as the session returns them: text values, 't'/'f' booleans
ROWS = [
    ["id", "int4", "-1", "t", "integer", "16400"],
    ["name", "varchar", "14", "f", "character varying(10)", "16400"],
]


def test_the_target_columns_come_in_copy_order():
    assert copy_target_from_rows(ROWS, spec()) == (
        16400,
        [
            TargetColumn("id", "int4", -1, True, "integer"),
            TargetColumn("name", "varchar", 14, False, "character varying(10)"),
        ],
    )
    oid, columns = copy_target_from_rows(ROWS, spec(columns="(name, id)"))
    assert [c.name for c in columns] == ["name", "id"]


def test_an_unknown_table_or_column_is_left_to_postgresql_to_report():
    assert copy_target_from_rows([], spec()) is None
    assert copy_target_from_rows(ROWS, spec(columns="(id, missing)")) is None


def proxy() -> RedshiftProxy:
    config = BackendConfig("127.0.0.1", 5432, "u", "p", "dev", "http://127.0.0.1:1")
    server = RedshiftProxy(config)  # connects to nothing until it serves
    server.setting_names = {"application_name", "datestyle", "default_transaction_isolation"}
    return server


# docs: c_serial_isolation — every backend session SERIALIZABLE, whatever the client asked;
# redshift_connector's own startup parameters are dropped (PostgreSQL would refuse them)
def test_backend_sessions_start_serializable_without_the_drivers_extra_parameters():
    client = {
        b"user": b"u",
        b"database": b"dev",
        b"application_name": b"airflow",
        b"client_protocol_version": b"2",
        b"driver_version": b"2.2",
        b"default_transaction_isolation": b"read committed",
    }
    assert proxy().backend_parameters(client) == {
        b"user": b"u",
        b"database": b"dev",
        b"application_name": b"airflow",
        b"default_transaction_isolation": b"serializable",
    }
