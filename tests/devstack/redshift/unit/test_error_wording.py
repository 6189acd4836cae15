"""Errors in Redshift's words, without a server (docs: r_Character_types, r_COPY, r_STL_LOAD_ERRORS)."""

from __future__ import annotations

import pytest

from devstack.redshift import protocol
from devstack.redshift.copy import RejectedRow
from devstack.redshift.errors import (
    load_failed,
    serializable_isolation_violation,
    translate_error,
    written_table,
)


def _postgres_error(**fields: str) -> bytes:
    return protocol.payload_of(protocol.error_response_from_fields({"S": "ERROR", "V": "ERROR", **fields}))


def test_the_byte_length_check_reads_value_too_long():
    payload = _postgres_error(
        C="23514",
        M='new row for relation "t" violates check constraint "rs_2_varchar_5"',
        D="Failing row contains (ééé).",
        n="rs_2_varchar_5",
    )
    fields = protocol.error_fields(protocol.payload_of(translate_error(payload)))
    assert (fields["C"], fields["M"], fields["n"]) == (
        "22001",
        "value too long for type character varying(5)",
        "rs_2_varchar_5",
    )
    assert "D" not in fields


def test_other_errors_pass_unchanged():
    payload = _postgres_error(C="23514", M="check", n="a_user_check")
    assert translate_error(payload) == protocol.message(protocol.Backend.ERROR_RESPONSE, payload)
    payload = _postgres_error(C="42P01", M='relation "x" does not exist')
    assert translate_error(payload) == protocol.message(protocol.Backend.ERROR_RESPONSE, payload)


def test_a_failed_load_names_the_table_and_stl_load_errors():
    first = RejectedRow("s3://b/k.csv", 3, "id", "integer", "", 0, "x,a", "x", 1207, "Invalid digit")
    message, detail = load_failed("t", first, 42)
    assert message == "Load into table 't' failed. Check 'stl_load_errors' system table for details."
    assert "  error:  Invalid digit\n" in detail
    assert "  code:      1207\n" in detail
    assert "  context:   id\n" in detail
    assert "  query:     42\n" in detail
    assert "  location:  s3://b/k.csv:3\n" in detail


# docs: c_serial_isolation-serializable-isolation-troubleshooting — ERROR: 1023,
# DETAIL: Serializable isolation violation on table - <id>, ... (pid:<pid>); SQLSTATE
# XX000 as redshift_connector reports it
def test_a_serialization_failure_reads_as_error_1023():
    fields = {
        "S": "ERROR",
        "V": "ERROR",
        "C": "40001",
        "M": "could not serialize access due to concurrent update",
        "F": "heapam.c",
    }
    assert serializable_isolation_violation(fields, 16423, 4242) == {
        "S": "ERROR",
        "V": "ERROR",
        "C": "XX000",
        "M": "1023",
        "D": "Serializable isolation violation on table - 16423, "
        "transactions forming the cycle are: unknown to the stand-in (pid:4242)",
        "H": "PostgreSQL: could not serialize access due to concurrent update.",
    }


@pytest.mark.parametrize(
    "sql,table",
    [
        ("delete from tracking.action where id = 1", "tracking.action"),
        ('DELETE FROM ONLY "Sch"."T" USING x', '"Sch"."T"'),
        ("insert into #stage values (1)", "#stage"),
        ("update s.t set v = 1", "s.t"),
        ("merge into s.t using s.u on t.id = u.id when matched then delete", "s.t"),
        ("copy s.t from 's3://b/k' iam_role 'r'", "s.t"),
        ("truncate table s.t", "s.t"),
        ("commit", None),
        ("select * from s.t", None),
        (None, None),
    ],
)
def test_the_table_a_statement_writes_to(sql, table):
    assert written_table(sql) == table


class _Catalog:
    def relation_id(self, name: str) -> int:
        return {"s.written_last": 16500, "s.written_first": 16400}.get(name, 0)


class _Proxy:
    catalog = _Catalog()


def test_error_1023_names_the_table_the_transaction_wrote_last():
    import asyncio

    from devstack.redshift.session import Session

    session = Session(_Proxy(), None, None, None, None, user="u")
    session.backend_pid = 77
    for sql in ("begin transaction", "insert into s.written_first values (1)", "delete from s.written_last"):
        session.transaction_sql.append(sql)
    session.transaction_sql.append("select 1")
    payload = _postgres_error(C="40001", M="could not serialize access due to concurrent update")
    fields = protocol.error_fields(protocol.payload_of(asyncio.run(session.serialization_failure(payload))))
    assert fields["D"] == (
        "Serializable isolation violation on table - 16500, "
        "transactions forming the cycle are: unknown to the stand-in (pid:77)"
    )
