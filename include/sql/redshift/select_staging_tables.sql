-- The staging tables in the target schema (names action_staging_<slice label>), to drop
-- those that no running run owns. Params: schema (identifier).
select tablename
from pg_tables
where schemaname = '{{ schema }}'
  and tablename like 'action_staging%'
order by tablename
