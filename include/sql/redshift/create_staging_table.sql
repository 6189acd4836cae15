-- (Re)create the run's staging table for action, empty, with the columns of the
-- exported files (the target's, plus query_is_marker: see tracking_sync.tables; a full
-- refresh swaps this table in as the target, so it comes from the same template).
-- A capture run's staging table, of changes, is create_action_changes.sql.
-- A real table, not #temp: the COPY (S3ToRedshiftOperator) and the publish run on
-- different connections. Named after the run's slice, so a rerun reuses it and
-- concurrent runs of other intervals (backfills) never share one.
-- Params: schema, staging (identifiers from the run plan); table (tables.ACTION).
{% from "redshift/_columns.sql" import column_definitions %}
drop table if exists {{ schema }}.{{ staging }};
create table {{ schema }}.{{ staging }} (
{{- column_definitions(table.file_columns) }}
)
{{ table.table_attributes }};
