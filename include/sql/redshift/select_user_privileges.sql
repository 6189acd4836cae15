-- What the connected user holds of what grants/pipeline_user.sql gives it, read without
-- touching data (plan_run's preflight: tracking_sync.privileges): CREATE and TEMP on the
-- database; on the target schema, when it exists, USAGE and CREATE; on each of the
-- pipeline's tables in it that exists, SELECT, INSERT, UPDATE and DELETE (all of them the
-- owner's, when the user created the schema). Params: schema (identifier), table_names (the
-- pipeline's table names, from tracking_sync.core.tables and load.sync_state).
select
    'database' as object_kind,
    current_database() as object_name,
    'create' as privilege,
    has_database_privilege(current_database(), 'create') as held
union all
select
    'database' as object_kind,
    current_database() as object_name,
    'temp' as privilege,
    has_database_privilege(current_database(), 'temp') as held
{%- for privilege in ("usage", "create") %}
union all
select
    'schema' as object_kind,
    n.nspname::varchar as object_name,
    '{{ privilege }}' as privilege,
    has_schema_privilege(n.nspname, '{{ privilege }}') as held
from pg_namespace as n
where n.nspname = '{{ schema }}'
{%- endfor %}
{%- for privilege in ("select", "insert", "update", "delete") %}
union all
select
    'table' as object_kind,
    (t.schemaname || '.' || t.tablename)::varchar as object_name,
    '{{ privilege }}' as privilege,
    has_table_privilege(t.schemaname || '.' || t.tablename, '{{ privilege }}') as held
from pg_tables as t
where t.schemaname = '{{ schema }}'
  and t.tablename in ({% for table in table_names %}'{{ table }}'{{ ", " if not loop.last }}{% endfor %})
{%- endfor %}
