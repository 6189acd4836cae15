-- Create the target schema and its tables (action, action_type) if they do not exist.
-- Idempotent. Params: params.target_schema (validated identifier); the macro
-- tracking_tables (tracking_sync.tables.TABLES) gives the columns, types and keys.
{% from "redshift/_columns.sql" import column_definitions %}
create schema if not exists {{ params.target_schema }};
{% for table in tracking_tables.values() %}
create table if not exists {{ params.target_schema }}.{{ table.name }} (
{{- column_definitions(table.columns) }}
)
{{ table.table_attributes }};
{% endfor %}
