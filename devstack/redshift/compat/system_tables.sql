-- Redshift's system tables and views the driver and a load check read.
-- Installed with the rest of devstack/redshift/compat/*.sql by
-- devstack.redshift.install_compat_catalog, in one transaction, as superuser. Objects
-- live in pg_catalog so that they resolve whatever search_path a client sets, as
-- Redshift's own system objects do. Idempotent: run on every start.

-- STL_LOAD_ERRORS (docs: r_STL_LOAD_ERRORS). Written by the proxy on a separate
-- autocommit connection, so the rows outlive the failed COPY's rollback.
create table if not exists pg_catalog.stl_load_errors (
    userid integer,
    slice integer,
    tbl integer,
    starttime timestamp,
    session integer,
    query integer,
    filename text,
    line_number bigint,
    colname text,
    type text,
    col_length text,
    position integer,
    raw_line text,
    raw_field_value text,
    err_code integer,
    err_reason text,
    is_partial integer,
    start_offset bigint
);
grant select on pg_catalog.stl_load_errors to public;
create sequence if not exists pg_catalog.rs_query_id_seq;
grant usage, select on pg_catalog.rs_query_id_seq to public;

-- SVV_EXTERNAL_SCHEMAS (docs: r_SVV_EXTERNAL_SCHEMAS): redshift_connector's
-- get_tables()/get_columns() query it. No Spectrum here, so it is empty.
create or replace view pg_catalog.svv_external_schemas as
select 0::oid as esoid, 0::smallint as eskind, ''::name as schemaname,
       0 as esowner, ''::text as databasename, ''::text as esoptions
where false;
grant select on pg_catalog.svv_external_schemas to public;

-- SVV_TABLE_INFO (docs: r_SVV_TABLE_INFO): the columns a load check reads.
create or replace view pg_catalog.svv_table_info as
select current_database()::text as database,
       n.nspname::text as schema,
       c.oid::integer as table_id,
       c.relname::text as "table",
       'N'::text as encoded,
       'AUTO(EVEN)'::text as diststyle,
       null::text as sortkey1,
       (pg_catalog.pg_total_relation_size(c.oid) / 1048576)::bigint as size,
       c.reltuples::numeric(38, 0) as tbl_rows,
       c.reltuples::numeric(38, 0) as estimated_visible_rows
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p')
  and n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast');
grant select on pg_catalog.svv_table_info to public;

-- PG_TABLE_DEF (docs: r_PG_TABLE_DEF): only schemas on the search_path, as in Redshift.
create or replace view pg_catalog.pg_table_def as
select n.nspname as schemaname,
       c.relname as tablename,
       a.attname as "column",
       pg_catalog.format_type(a.atttypid, a.atttypmod) as type,
       'none'::text as encoding,
       false as distkey,
       0 as sortkey,
       a.attnotnull as notnull
from pg_catalog.pg_attribute a
join pg_catalog.pg_class c on c.oid = a.attrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p') and a.attnum > 0 and not a.attisdropped
  and n.nspname = any (pg_catalog.current_schemas(false));
grant select on pg_catalog.pg_table_def to public;

-- PG_GET_LATE_BINDING_VIEW_COLS (docs: PG_GET_LATE_BINDING_VIEW_COLS): the driver's
-- get_columns() unions it in. No late-binding views here, so no rows.
create or replace function pg_catalog.pg_get_late_binding_view_cols() returns setof record
language sql stable as $$
select null::name, null::name, null::name, null::text, null::integer where false
$$;

-- SVV_RELATION_PRIVILEGES (docs: r_SVV_RELATION_PRIVILEGES): privileges granted on tables and
-- views, one row per identity and privilege. PostgreSQL has roles where Redshift has users
-- and groups (and Redshift's own roles, which the stand-in does not have): a role that can
-- log in shows as a user, one that cannot as a group, grantee 0 as public. Every row is
-- shown (Redshift shows a regular user only part of them).
create or replace view pg_catalog.svv_relation_privileges as
select n.nspname::text as namespace_name,
       c.relname::text as relation_name,
       a.privilege_type::text as privilege_type,
       a.grantee::integer as identity_id,
       coalesce(r.rolname::text, 'public') as identity_name,
       case when a.grantee = 0 then 'public'
            when r.rolcanlogin then 'user'
            else 'group' end as identity_type,
       a.is_grantable as admin_option
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
cross join lateral pg_catalog.aclexplode(c.relacl) a
left join pg_catalog.pg_roles r on r.oid = a.grantee
where c.relkind in ('r', 'p', 'v', 'm')
  and a.grantee <> c.relowner;
grant select on pg_catalog.svv_relation_privileges to public;
