-- (Re)create the run's staging table for action, empty, with the columns of the
-- exported files (the target's, plus query_is_null: see tracking_sync.tables).
-- A real table, not #temp: the COPY (S3ToRedshiftOperator) and the publish run on
-- different connections. Named after the run's slice, so a rerun reuses it and
-- concurrent runs of other intervals (backfills) never share one.
-- Params: params.target_schema; the macros tracking_tables and action_staging_table.
{% from "redshift/_columns.sql" import column_definitions %}
{% set staging = action_staging_table(params, data_interval_start, data_interval_end) %}
drop table if exists {{ params.target_schema }}.{{ staging }};
create table {{ params.target_schema }}.{{ staging }} (
{{- column_definitions(tracking_tables["action"].file_columns) }}
)
{{ tracking_tables["action"].table_attributes }};
