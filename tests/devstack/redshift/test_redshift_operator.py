"""The Amazon provider's S3ToRedshiftOperator, unchanged, against the stand-in.

It runs through RedshiftSQLHook → redshift_connector (extended protocol, cached
statements) with AIRFLOW_CONN_REDSHIFT_DEFAULT / AIRFLOW_CONN_AWS_DEFAULT from the
stack; the COPY carries the aws connection's keys in a CREDENTIALS clause.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def table_rows(redshift, sql):
    import psycopg2

    conn = psycopg2.connect(redshift.dsn())
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            result = cur.fetchall() if cur.description else None
        conn.commit()
        return result
    finally:
        conn.close()


def put_manifest_load(files, name, rows, compression):
    """Two compressed CSV parts and a manifest listing both; returns the manifest's key."""
    half = len(rows) // 2
    urls = [
        files.put(f"{name}/part-{i}.csv", "".join(f"{r[0]},{r[1]}\n" for r in chunk), compression)
        for i, chunk in enumerate((rows[:half], rows[half:]))
    ]
    manifest = files.put_manifest(f"{name}/load.manifest", [(u, True) for u in urls])
    return manifest.split("/", 3)[3]


def copy_operator(method, schema, key, compression, s3):
    from airflow.providers.amazon.aws.transfers.s3_to_redshift import S3ToRedshiftOperator

    return S3ToRedshiftOperator(
        task_id=f"load_{method.lower()}",
        schema=schema,
        table="events",
        s3_bucket=s3.bucket,
        s3_key=key,
        method=method,
        copy_options=["CSV", compression.upper(), "MANIFEST"],
    )


# docs: r_COPY, loading-data-files-using-manifest, merge-replacing-existing-rows
@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_s3_to_redshift_operator_append_replace_upsert(
    airflow_db, stack_env, redshift, schema, files, s3, compression
):
    table_rows(
        redshift,
        f"create table {schema}.events (id int primary key, name varchar(20)) "
        "diststyle key distkey(id) sortkey(id)",
    )

    first = put_manifest_load(files, "first", [(1, "a"), (2, "b")], compression)
    copy_operator("APPEND", schema, first, compression, s3).execute(context={})
    copy_operator("APPEND", schema, first, compression, s3).execute(context={})
    # constraints are informational on Redshift: APPEND twice duplicates the rows
    assert table_rows(redshift, f"select id, name from {schema}.events order by id") == [
        (1, "a"),
        (1, "a"),
        (2, "b"),
        (2, "b"),
    ]

    replacement = put_manifest_load(files, "second", [(2, "b2"), (3, "c")], compression)
    copy_operator("REPLACE", schema, replacement, compression, s3).execute(context={})
    assert table_rows(redshift, f"select id, name from {schema}.events order by id") == [(2, "b2"), (3, "c")]

    # UPSERT reads the primary key from information_schema (kept, though not enforced)
    changes = put_manifest_load(files, "third", [(3, "c2"), (4, "d")], compression)
    copy_operator("UPSERT", schema, changes, compression, s3).execute(context={})
    assert table_rows(redshift, f"select id, name from {schema}.events order by id") == [
        (2, "b2"),
        (3, "c2"),
        (4, "d"),
    ]


# docs: r_COPY — a failed COPY inside REPLACE rolls the DELETE back with it
def test_replace_with_a_bad_file_leaves_the_table_as_it_was(
    airflow_db, stack_env, redshift, schema, files, s3
):
    import redshift_connector

    table_rows(
        redshift,
        f"create table {schema}.events (id int, name varchar(20)); "
        f"insert into {schema}.events values (1, 'kept')",
    )
    bad = put_manifest_load(files, "bad", [(2, "ok"), ("x", "bad")], "gzip")
    with pytest.raises(redshift_connector.ProgrammingError, match="Load into table 'events' failed"):
        copy_operator("REPLACE", schema, bad, "gzip", s3).execute(context={})
    assert table_rows(redshift, f"select id, name from {schema}.events") == [(1, "kept")]
