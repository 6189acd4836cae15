-- The staging tables in the target schema (action_staging_<slice label>, and a capture
-- run's action_changes_<slice label>), to drop those that no running run owns. Params: schema (identifier).
select tablename
from pg_tables
where schemaname = '{{ schema }}'
  and (tablename like 'action_staging%' or tablename like 'action_changes%')
order by tablename
