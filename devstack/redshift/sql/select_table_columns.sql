-- The columns a COPY loads, in table order: name, type name, typmod, not null,
-- format_type() (for stl_load_errors) and the table's oid. {relation} is a
-- regclass expression: the oid bound by the proxy's own connection, or
-- to_regclass('<target>') when the query runs in the client's session (where its
-- #temp tables and uncommitted tables are visible). The first column's alias marks
-- the answer in the session's result stream: the client never sees it.
select a.attname::text as __rs_copy_target__,
       t.typname::text,
       a.atttypmod,
       a.attnotnull,
       pg_catalog.format_type(a.atttypid, a.atttypmod),
       a.attrelid::int
from pg_catalog.pg_attribute a
join pg_catalog.pg_type t on t.oid = a.atttypid
where a.attrelid = {relation}
  and a.attnum > 0
  and not a.attisdropped
  and a.attgenerated = ''
order by a.attnum
