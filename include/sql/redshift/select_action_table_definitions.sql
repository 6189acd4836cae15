-- The column definitions (type, encoding, distribution and sort key, not null) of the
-- target and of the staging table a full refresh swaps in, which must be the same: the
-- swap must not change the target's DDL. PG_TABLE_DEF shows only the schemas on the
-- search_path (docs: r_PG_TABLE_DEF): the publish sets it to the target schema first.
-- Params: schema (identifier); %(target)s and %(staging)s bound by the driver.
select
    tablename,
    "column",
    type,
    encoding,
    distkey,
    sortkey,
    "notnull"
from pg_table_def
where schemaname = '{{ schema }}'
  and tablename in (%(target)s, %(staging)s)
