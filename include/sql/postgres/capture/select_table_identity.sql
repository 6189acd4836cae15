-- A table's replica identity (d default, n nothing, f full, i index), its primary key's
-- columns and the columns of its replica identity index (null when it has none); no row
-- when the table does not exist.
-- Params (bound by the driver): schema, table.
select
    c.relreplident::text,
    (
        select array_agg(a.attname::text order by a.attnum)
        from pg_index as i
        join pg_attribute as a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
        where i.indrelid = c.oid and i.indisprimary
    ) as primary_key,
    (
        select array_agg(a.attname::text order by a.attnum)
        from pg_index as i
        join pg_attribute as a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
        where i.indrelid = c.oid and i.indisreplident
    ) as identity_index
from pg_class as c
join pg_namespace as n on n.oid = c.relnamespace
where n.nspname = %(schema)s
  and c.relname = %(table)s
  and c.relkind in ('r', 'p')
