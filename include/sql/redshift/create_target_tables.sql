-- Create the target schema and its tables (action, action_type) if they do not exist.
-- Idempotent. Params: schema (checked identifier, from the run plan); tables
-- (tracking_sync.tables.TABLES) gives the columns, types and keys.
{% from "redshift/_columns.sql" import column_definitions %}
create schema if not exists {{ schema }};
{% for table in tables %}
create table if not exists {{ schema }}.{{ table.name }} (
{{- column_definitions(table.columns) }}
)
{{ table.table_attributes }};
{% endfor %}
