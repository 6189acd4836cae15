-- The table a session's running COPY writes to, found by the RowExclusiveLock the
-- COPY holds on it (the session is in COPY-in mode and cannot be asked itself).
-- Its own #temp tables first. Params (psycopg2 pyformat): pid, table, schema (or null).
select c.oid, pg_catalog.starts_with(n.nspname, 'pg_temp') as is_temp
from pg_catalog.pg_locks l
join pg_catalog.pg_class c on c.oid = l.relation
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where l.pid = %(pid)s
  and l.locktype = 'relation'
  and l.mode = 'RowExclusiveLock'
  and l.database = (
      select oid from pg_catalog.pg_database where datname = pg_catalog.current_database()
  )
  and c.relname = %(table)s
  and (%(schema)s::text is null or n.nspname = %(schema)s::text)
  and c.relkind in ('r', 'p')
order by is_temp desc
