"""What the pipeline says to Redshift, without a database: the exact SQL of the schema,
the COPY and the publish, and the text of a rejected load (as the Amazon provider's own
tests assert the BEGIN / DELETE / COPY / COMMIT they send)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tracking_sync.core.plan import RunSlice
from tracking_sync.core.sql import render_sql, render_statements
from tracking_sync.load.copy import COPY_OPTIONS, describe_load_error, preview
from tracking_sync.load.publish import publish_statements
from tracking_sync.load.schema import action_staging_statements, target_tables_statements
from tracking_sync.load.swap import Grant, parse_acl, swap_statements

DAY = RunSlice(False, datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 2, tzinfo=UTC))
ACTION_COLUMNS = (
    "id, user_profile_id, session_id, action_type_id, action_time, course_id, exercise_id, "
    "is_exercise_checked, is_async, query"
)
INSERT = (
    f"insert into tracking.action ({ACTION_COLUMNS})\nselect\n    "
    + ",\n    ".join(ACTION_COLUMNS.split(", ")[:-1])
    + ",\n    case when query_is_marker then chr(92) || 'N' else query end\n"
    "from tracking.action_staging_x"
)


def test_an_incremental_publish_replaces_the_interval_and_the_staged_ids_wherever_they_are():
    assert publish_statements("tracking", "action_staging_x", DAY) == [
        "delete from tracking.action\nwhere action_time >= %(start)s\n  and action_time < %(end)s",
        # the ids as a list, not a join: hashed by the stand-in's backend whatever its estimates
        "delete from tracking.action\nwhere action.id in (select staged.id from tracking.action_staging_x as staged)",
        INSERT,
        "drop table tracking.action_staging_x",
    ]


def test_a_full_refresh_publish_replaces_every_row():
    assert publish_statements("tracking", "action_staging_x", RunSlice(True)) == [
        "delete from tracking.action",
        INSERT,
        "drop table tracking.action_staging_x",
    ]


def test_the_publish_takes_the_target_lock_first():
    assert render_statements("redshift/lock_action.sql", schema="tracking") == ["lock tracking.action"]


def test_rows_that_moved_into_the_interval_are_found_by_their_staged_ids_as_a_list():
    sql = render_sql("redshift/select_moved_in_action_ids.sql", schema="tracking", staging="action_staging_x")
    assert "t.id in (select s.id from tracking.action_staging_x as s)" in sql and " join " not in sql


def test_rows_that_left_the_interval_are_found_by_a_join_on_id():
    sql = render_sql("redshift/select_departed_action_ids.sql", schema="tracking", staging="action_staging_x")
    assert "left join tracking.action_staging_x as s on s.id = t.id" in sql
    assert "t.action_time >= %(start)s" in sql and "s.id is null" in sql
    carried = render_sql(
        "redshift/insert_carried_actions.sql", schema="tracking", staging="s", columns=["a", "b"], rows=2
    )
    assert carried.split() == "insert into tracking.s (a, b) values (%s, %s), (%s, %s)".split()


def test_the_target_ddl_comes_from_the_one_column_list():
    create_schema, action_type, action = target_tables_statements("tracking")
    assert create_schema == "create schema if not exists tracking"
    assert action_type.endswith("diststyle all")
    assert "    action_time timestamptz not null," in action
    assert "    query varchar(65535)\n" in action
    assert action.endswith("distkey (user_profile_id) sortkey (action_time)")


def test_the_staging_table_is_recreated_with_the_marker_flag():
    drop, create = action_staging_statements("tracking", "action_staging_x")
    assert drop == "drop table if exists tracking.action_staging_x"
    assert "    query varchar(65535),\n    query_is_marker boolean not null\n)" in create


def test_the_staging_table_is_the_target_plus_the_flag_so_a_full_refresh_can_swap_it_in():
    _, _, action = target_tables_statements("tracking")
    _, staging = action_staging_statements("tracking", "action_staging_x")
    target_body = action.split("(", 1)[1]
    staging_body = staging.split("(", 1)[1].replace(",\n    query_is_marker boolean not null", "")
    assert staging_body == target_body


def test_a_full_refresh_swaps_the_staging_table_in_and_grants_again_in_one_transaction():
    grants = [Grant('"analyst"', ("select",)), Grant('group "readers"', ("select", "references"), True)]
    assert swap_statements("tracking", "action_staging_full_refresh", grants) == [
        "alter table tracking.action rename to action_replaced_by_full_refresh",
        "update tracking.action_staging_full_refresh set query = chr(92) || 'N' where query_is_marker",
        "alter table tracking.action_staging_full_refresh drop column query_is_marker",
        "alter table tracking.action_staging_full_refresh rename to action",
        'grant select on tracking.action to "analyst"',
        'grant select, references on tracking.action to group "readers" with grant option',
        "drop table tracking.action_replaced_by_full_refresh",
    ]


def test_grants_are_read_back_from_relacl_as_both_engines_write_it():
    acl = 'owner=arwdDxt/owner|analyst=r/owner|group readers=r*x/owner|=r/owner|"odd ""name"""=aw/owner'
    with pytest.raises(ValueError, match="letter 'D'"):
        parse_acl(acl, "someone_else")  # D: DROP on Redshift, TRUNCATE on PostgreSQL
    assert parse_acl(acl, "owner") == [
        Grant('"analyst"', ("select",)),
        Grant('group "readers"', ("references",)),
        Grant('group "readers"', ("select",), grant_option=True),
        Grant("public", ("select",)),
        Grant('"odd ""name"""', ("insert", "update")),
    ]
    assert parse_acl(None, "owner") == []


def test_the_copy_reads_the_manifest_as_the_export_writes_it():
    from tracking_sync.operators import ReportingS3ToRedshiftOperator

    operator = ReportingS3ToRedshiftOperator(
        task_id="load",
        schema="tracking",
        table="action_staging_x",
        source_table="action",
        s3_bucket="bucket",
        s3_key="tracking/action/x/manifest.json",
        copy_options=COPY_OPTIONS,
        method="REPLACE",
    )
    copy = operator._build_copy_query(
        "tracking.action_staging_x", "aws_iam_role=arn:aws:iam::1:role/r", "", " ".join(COPY_OPTIONS)
    )
    assert " ".join(copy.split()) == (
        "COPY tracking.action_staging_x FROM 's3://bucket/tracking/action/x/manifest.json' credentials "
        "'aws_iam_role=arn:aws:iam::1:role/r' manifest format as csv zstd null as '\\N' timeformat 'auto';"
    )
    assert not {"emptyasnull", "truncatecolumns", "maxerror"} & {o.split()[0] for o in COPY_OPTIONS}


def test_a_rejected_row_names_its_source_id_column_limit_and_a_clean_preview():
    error = {
        "filename": "s3://b/tracking/action/x/part-0000.csv.zst",
        "line_number": 16,
        "colname": "query",
        "col_length": "65535",
        "err_code": 1204,
        "err_reason": "String length exceeds DDL length",
        "raw_field_value": "日" * 341 + "\ufffd",  # 1024 bytes kept: the last character cut in half
        "raw_line": '900,1000,"s",8,2025-03-01 13:00:00+00,\\N,\\N,\\N,f,"日日日',
    }
    text = describe_load_error(error, "action")
    assert text.startswith(
        "action row id 900, column query (limit 65535 bytes): String length exceeds DDL length [code 1204]; "
    )
    assert "value '" + "日" * 60 + "'... (1023 bytes shown of a longer value)" in text
    assert text.endswith("file s3://b/tracking/action/x/part-0000.csv.zst line 16")


@pytest.mark.parametrize(("value", "shown"), [(None, "NULL"), ("", "''"), ("ab\ufffd", "'ab'")])
def test_short_values_are_shown_whole(value, shown):
    assert preview(value) == shown


def _reading_action(statements: list[str]) -> list[str]:
    """The statements that scan the target's `action` (no index on Redshift or the stand-in):
    every one that names it in a FROM, but the empty read `where 1 = 0`."""
    import re

    return [s for s in statements if re.search(r"from tracking\.action\b", s) and "where 1 = 0" not in s]


def test_a_capture_batch_scans_action_twice_at_most_the_delete_by_a_list_of_ids():
    from tracking_sync.load.apply_changes import apply_statements

    reading = _reading_action(apply_statements("tracking", "action_changes_x"))
    assert [s.split()[0:4] for s in reading] == [
        ["create", "temp", "table", "replaced_rows"],
        ["delete", "from", "tracking.action", "where"],
    ]
    assert "a.id in (select replaced_ids.id from replaced_ids)" in reading[0]
    assert reading[1].endswith("where action.id in (select last_changes.id from last_changes)")


def test_a_batch_whose_ids_all_begin_with_an_insert_reads_action_only_to_delete():
    from tracking_sync.load.apply_changes import apply_statements

    statements = apply_statements("tracking", "action_changes_x", reads_target=False)
    assert [s.split()[0:3] for s in _reading_action(statements)] == [["delete", "from", "tracking.action"]]


def test_without_a_reload_waiting_no_change_is_set_aside():
    from tracking_sync.load.apply_changes import apply_statements

    without = "\n".join(apply_statements("tracking", "action_changes_x", reloads=False))
    assert "capture_reloads" not in without and "superseded_changes" not in without
    with_reloads = "\n".join(apply_statements("tracking", "action_changes_x", reloads=True))
    assert "capture_reloads" in with_reloads and "superseded_changes" in with_reloads
