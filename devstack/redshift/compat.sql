-- The Redshift compatibility catalog, installed by the stand-in into its backend
-- database as superuser. Objects live in pg_catalog so that they resolve whatever
-- search_path a client sets, as Redshift's own system objects do.
-- Idempotent: run on every start.

set allow_system_table_mods = on;

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

-- Date parts: Redshift's names and abbreviations (docs: r_Dateparts_for_datetime_functions)
create or replace function pg_catalog.rs_datepart(part text) returns text
language sql immutable strict parallel safe as $$
select case lower(trim(part))
    when 'millennium' then 'millennium' when 'millennia' then 'millennium'
    when 'mil' then 'millennium' when 'mils' then 'millennium'
    when 'century' then 'century' when 'centuries' then 'century'
    when 'c' then 'century' when 'cent' then 'century' when 'cents' then 'century'
    when 'decade' then 'decade' when 'decades' then 'decade'
    when 'dec' then 'decade' when 'decs' then 'decade'
    when 'epoch' then 'epoch'
    when 'year' then 'year' when 'years' then 'year' when 'y' then 'year'
    when 'yr' then 'year' when 'yrs' then 'year'
    when 'quarter' then 'quarter' when 'quarters' then 'quarter'
    when 'qtr' then 'quarter' when 'qtrs' then 'quarter'
    when 'month' then 'month' when 'months' then 'month'
    when 'mon' then 'month' when 'mons' then 'month'
    when 'week' then 'week' when 'weeks' then 'week' when 'w' then 'week'
    when 'dayofweek' then 'dow' when 'dow' then 'dow' when 'dw' then 'dow'
    when 'weekday' then 'dow'
    when 'dayofyear' then 'doy' when 'doy' then 'doy' when 'dy' then 'doy'
    when 'yearday' then 'doy'
    when 'day' then 'day' when 'days' then 'day' when 'd' then 'day'
    when 'hour' then 'hour' when 'hours' then 'hour' when 'h' then 'hour'
    when 'hr' then 'hour' when 'hrs' then 'hour'
    when 'minute' then 'minute' when 'minutes' then 'minute' when 'm' then 'minute'
    when 'min' then 'minute' when 'mins' then 'minute'
    when 'second' then 'second' when 'seconds' then 'second' when 's' then 'second'
    when 'sec' then 'second' when 'secs' then 'second'
    when 'millisecond' then 'millisecond' when 'milliseconds' then 'millisecond'
    when 'ms' then 'millisecond' when 'msec' then 'millisecond'
    when 'msecs' then 'millisecond' when 'msecond' then 'millisecond'
    when 'mseconds' then 'millisecond' when 'millisec' then 'millisecond'
    when 'millisecs' then 'millisecond' when 'millisecon' then 'millisecond'
    when 'microsecond' then 'microsecond' when 'microseconds' then 'microsecond'
    when 'microsec' then 'microsecond' when 'microsecs' then 'microsecond'
    when 'usecond' then 'microsecond' when 'useconds' then 'microsecond'
    when 'us' then 'microsecond' when 'usec' then 'microsecond'
    when 'usecs' then 'microsecond'
    when 'timezone' then 'timezone' when 'timezone_hour' then 'timezone_hour'
    when 'timezone_minute' then 'timezone_minute'
    else lower(trim(part))
end
$$;

-- EXTRACT (docs: r_EXTRACT_function): INTEGER from TIMESTAMP, TIME, TIMETZ and
-- INTERVAL; DOUBLE PRECISION from TIMESTAMPTZ. Millisecond/microsecond are the
-- fraction of the second (extract(ms from '12:08:43.101') = 101). The fraction of
-- an integer result is truncated (rounding vs truncation is not documented).
--
-- Speed: these run once per row (validation sums extract(epoch ...) over millions
-- of rows), so each is ONE sql expression, not strict, its volatility no stricter
-- than its body's: PostgreSQL then inlines it, folds rs_datepart('<literal>') and
-- the CASE at plan time, and the row pays for one native date_part. A strict
-- function whose body holds a CASE, or an immutable one calling a stable function,
-- is not inlined and costs ~1 ms a call (a 1M-row sum took minutes).
-- tests/devstack/redshift/test_redshift_sql.py checks with EXPLAIN VERBOSE.
drop function if exists pg_catalog.rs_extract_double(text, double precision, double precision);

create or replace function pg_catalog.rs_extract(part text, value timestamp)
returns integer language sql immutable parallel safe as $$
select case pg_catalog.rs_datepart(part)
    when 'millisecond' then
        pg_catalog.mod(pg_catalog.date_part('microseconds', value)::bigint, 1000000)::integer / 1000
    when 'microsecond' then
        pg_catalog.mod(pg_catalog.date_part('microseconds', value)::bigint, 1000000)::integer
    else pg_catalog.trunc(pg_catalog.date_part(pg_catalog.rs_datepart(part), value))::integer
end
$$;

create or replace function pg_catalog.rs_extract(part text, value timestamptz)
returns double precision language sql stable parallel safe as $$
select case pg_catalog.rs_datepart(part)
    when 'millisecond' then (pg_catalog.mod(pg_catalog.date_part('microseconds', value)::bigint,
                                            1000000) / 1000)::double precision
    when 'microsecond' then pg_catalog.mod(pg_catalog.date_part('microseconds', value)::bigint,
                                           1000000)::double precision
    else pg_catalog.date_part(pg_catalog.rs_datepart(part), value)
end
$$;

create or replace function pg_catalog.rs_extract(part text, value date)
returns integer language sql immutable parallel safe as $$
select pg_catalog.rs_extract(part, value::timestamp)
$$;

create or replace function pg_catalog.rs_extract(part text, value time)
returns integer language sql immutable parallel safe as $$
select case pg_catalog.rs_datepart(part)
    when 'millisecond' then
        pg_catalog.mod(pg_catalog.date_part('microseconds', value)::bigint, 1000000)::integer / 1000
    when 'microsecond' then
        pg_catalog.mod(pg_catalog.date_part('microseconds', value)::bigint, 1000000)::integer
    else pg_catalog.trunc(pg_catalog.date_part(pg_catalog.rs_datepart(part), value))::integer
end
$$;

create or replace function pg_catalog.rs_extract(part text, value timetz)
returns integer language sql immutable parallel safe as $$
select case pg_catalog.rs_datepart(part)
    when 'millisecond' then
        pg_catalog.mod(pg_catalog.date_part('microseconds', value)::bigint, 1000000)::integer / 1000
    when 'microsecond' then
        pg_catalog.mod(pg_catalog.date_part('microseconds', value)::bigint, 1000000)::integer
    else pg_catalog.trunc(pg_catalog.date_part(pg_catalog.rs_datepart(part), value))::integer
end
$$;

create or replace function pg_catalog.rs_extract(part text, value interval)
returns integer language sql immutable parallel safe as $$
select case pg_catalog.rs_datepart(part)
    when 'millisecond' then
        pg_catalog.mod(pg_catalog.date_part('microseconds', value)::bigint, 1000000)::integer / 1000
    when 'microsecond' then
        pg_catalog.mod(pg_catalog.date_part('microseconds', value)::bigint, 1000000)::integer
    else pg_catalog.trunc(pg_catalog.date_part(pg_catalog.rs_datepart(part), value))::integer
end
$$;

-- SYSDATE: start of the current transaction, session time zone, no time zone
-- (docs: r_SYSDATE). GETDATE(): start of the current statement, whole seconds
-- (docs: r_GETDATE).
create or replace function pg_catalog.rs_sysdate() returns timestamp
language sql stable parallel safe as $$
select pg_catalog.transaction_timestamp() at time zone pg_catalog.current_setting('TimeZone')
$$;

create or replace function pg_catalog.getdate() returns timestamp
language sql stable parallel safe as $$
select pg_catalog.date_trunc('second',
    pg_catalog.statement_timestamp() at time zone pg_catalog.current_setting('TimeZone'))
$$;

-- An unknown date part is an error, as on Redshift. Called from the ELSE of a CASE
-- on the date part: with a literal part PostgreSQL folds the CASE at plan time, so
-- a known part never reaches it. Strict: a NULL part gives NULL.
create or replace function pg_catalog.rs_datepart_not_supported(function_name text, part text)
returns bigint language plpgsql immutable strict parallel safe as $$
begin
    raise exception 'The datepart % is not supported by function %', part, function_name
        using errcode = '0A000';
end
$$;

-- DATEDIFF counts the date-part boundaries crossed, not elapsed units
-- (docs: r_DATEDIFF_function): datediff(year, '2020-12-31', '2021-01-01') = 1.
-- Weeks start on Monday here (date_trunc('week')); not verified against Redshift.
-- One inlinable sql expression, like rs_extract above (a plpgsql body costs a
-- function call per row).
create or replace function pg_catalog.datediff(part text, a timestamp, b timestamp)
returns bigint language sql immutable parallel safe as $$
select case pg_catalog.rs_datepart(part)
    when 'millennium' then (pg_catalog.div(pg_catalog.date_part('year', b)::int - 1, 1000)
                          - pg_catalog.div(pg_catalog.date_part('year', a)::int - 1, 1000))::bigint
    when 'century' then (pg_catalog.div(pg_catalog.date_part('year', b)::int - 1, 100)
                       - pg_catalog.div(pg_catalog.date_part('year', a)::int - 1, 100))::bigint
    when 'decade' then (pg_catalog.div(pg_catalog.date_part('year', b)::int, 10)
                      - pg_catalog.div(pg_catalog.date_part('year', a)::int, 10))::bigint
    when 'year' then (pg_catalog.date_part('year', b) - pg_catalog.date_part('year', a))::bigint
    when 'quarter' then ((pg_catalog.date_part('year', b) * 4 + pg_catalog.date_part('quarter', b))
                       - (pg_catalog.date_part('year', a) * 4 + pg_catalog.date_part('quarter', a)))::bigint
    when 'month' then ((pg_catalog.date_part('year', b) * 12 + pg_catalog.date_part('month', b))
                     - (pg_catalog.date_part('year', a) * 12 + pg_catalog.date_part('month', a)))::bigint
    when 'week' then ((pg_catalog.date_trunc('week', b)::date
                       - pg_catalog.date_trunc('week', a)::date) / 7)::bigint
    when 'day' then (pg_catalog.date_trunc('day', b)::date - pg_catalog.date_trunc('day', a)::date)::bigint
    when 'dow' then (pg_catalog.date_trunc('day', b)::date - pg_catalog.date_trunc('day', a)::date)::bigint
    when 'doy' then (pg_catalog.date_trunc('day', b)::date - pg_catalog.date_trunc('day', a)::date)::bigint
    when 'hour' then pg_catalog.date_part('epoch', pg_catalog.date_trunc('hour', b)
                                                 - pg_catalog.date_trunc('hour', a))::bigint / 3600
    when 'minute' then pg_catalog.date_part('epoch', pg_catalog.date_trunc('minute', b)
                                                   - pg_catalog.date_trunc('minute', a))::bigint / 60
    when 'second' then pg_catalog.date_part('epoch', pg_catalog.date_trunc('second', b)
                                                   - pg_catalog.date_trunc('second', a))::bigint
    when 'millisecond' then pg_catalog.trunc(pg_catalog.date_part('epoch',
                                pg_catalog.date_trunc('milliseconds', b)
                                - pg_catalog.date_trunc('milliseconds', a))::numeric * 1000)::bigint
    when 'microsecond' then pg_catalog.trunc(pg_catalog.date_part('epoch', b - a)::numeric
                                             * 1000000)::bigint
    else pg_catalog.rs_datepart_not_supported('datediff', part)
end
$$;

create or replace function pg_catalog.datediff(part text, a timestamptz, b timestamptz)
returns bigint language sql stable parallel safe as $$
select pg_catalog.datediff(part, a at time zone pg_catalog.current_setting('TimeZone'),
                           b at time zone pg_catalog.current_setting('TimeZone'))
$$;

create or replace function pg_catalog.datediff(part text, a date, b date)
returns bigint language sql immutable parallel safe as $$
select pg_catalog.datediff(part, a::timestamp, b::timestamp)
$$;

-- DATEADD (docs: r_DATEADD_function): returns TIMESTAMP, also for a DATE.
-- Intervals from make_interval and constants, not text cast to interval: that cast
-- is only stable, and an immutable function with a stable body is not inlined.
create or replace function pg_catalog.dateadd(part text, n bigint, value timestamp)
returns timestamp language sql immutable parallel safe as $$
select value + case pg_catalog.rs_datepart(part)
    when 'millennium' then pg_catalog.make_interval(years => (n * 1000)::int)
    when 'century' then pg_catalog.make_interval(years => (n * 100)::int)
    when 'decade' then pg_catalog.make_interval(years => (n * 10)::int)
    when 'year' then pg_catalog.make_interval(years => n::int)
    when 'quarter' then pg_catalog.make_interval(months => (n * 3)::int)
    when 'month' then pg_catalog.make_interval(months => n::int)
    when 'week' then n * interval '1 week'
    when 'day' then n * interval '1 day'
    when 'hour' then n * interval '1 hour'
    when 'minute' then n * interval '1 minute'
    when 'second' then n * interval '1 second'
    when 'millisecond' then n * interval '1 millisecond'
    when 'microsecond' then n * interval '1 microsecond'
    else pg_catalog.make_interval(secs => pg_catalog.rs_datepart_not_supported('dateadd', part))
end
$$;

create or replace function pg_catalog.dateadd(part text, n bigint, value date)
returns timestamp language sql immutable parallel safe as $$
select pg_catalog.dateadd(part, n, value::timestamp)
$$;

create or replace function pg_catalog.dateadd(part text, n bigint, value timestamptz)
returns timestamptz language sql stable parallel safe as $$
select (pg_catalog.dateadd(part, n, value at time zone pg_catalog.current_setting('TimeZone')))
       at time zone pg_catalog.current_setting('TimeZone')
$$;

-- LEN (docs: r_LEN): characters; trailing blanks of a CHAR are not counted.
create or replace function pg_catalog.len(value text) returns integer
language sql immutable strict parallel safe as $$ select pg_catalog.length(value) $$;
create or replace function pg_catalog.len(value bpchar) returns integer
language sql immutable strict parallel safe as $$ select pg_catalog.length(value) $$;

-- NVL2 (docs: r_NVL2): NVL itself is rewritten to COALESCE by the proxy.
create or replace function pg_catalog.nvl2(expression anyelement, not_null_value anycompatible,
                                           null_value anycompatible)
returns anycompatible language sql immutable parallel safe as $$
select case when expression is not null then not_null_value else null_value end
$$;

-- CONVERT_TIMEZONE (docs: CONVERT_TIMEZONE): the source zone defaults to UTC.
create or replace function pg_catalog.convert_timezone(target text, value timestamp)
returns timestamp language sql stable strict parallel safe as $$
select (value at time zone 'UTC') at time zone target
$$;
create or replace function pg_catalog.convert_timezone(source text, target text, value timestamp)
returns timestamp language sql stable strict parallel safe as $$
select (value at time zone source) at time zone target
$$;

-- Type and constraint semantics after every CREATE/ALTER TABLE
-- (docs: r_Character_types, t_Defining_constraints):
--   TEXT and VARCHAR without a length become VARCHAR(256), BPCHAR becomes CHAR(256);
--   VARCHAR(n)/CHAR(n) count BYTES: a CHECK on octet_length keeps an over-long
--   multibyte value out (the proxy reports it with Redshift's wording);
--   VARCHAR longer than 65535 is refused;
--   PRIMARY KEY and UNIQUE stay in the catalog (the provider's UPSERT reads them
--   from information_schema) but their indexes no longer enforce uniqueness.
create or replace function pg_catalog.rs_fix_table_definition() returns event_trigger
language plpgsql as $$
declare
    cmd record;
    col record;
    max_bytes integer;
    kind text;
    check_name text;
begin
    if pg_catalog.current_setting('rs.fixing_table', true) = 'on' then
        return;
    end if;
    perform pg_catalog.set_config('rs.fixing_table', 'on', true);
    for cmd in
        select distinct d.objid
        from pg_catalog.pg_event_trigger_ddl_commands() d
        where d.object_type = 'table'
          and d.command_tag in ('CREATE TABLE', 'ALTER TABLE', 'CREATE TABLE AS', 'SELECT INTO')
          and d.schema_name not in ('pg_catalog', 'information_schema', 'pg_toast')
    loop
        if not exists (select 1 from pg_catalog.pg_class where oid = cmd.objid) then
            continue;
        end if;
        for col in
            select a.attnum, a.attname, a.atttypid, a.atttypmod
            from pg_catalog.pg_attribute a
            where a.attrelid = cmd.objid and a.attnum > 0 and not a.attisdropped
            order by a.attnum
        loop
            max_bytes := null;
            kind := null;
            if col.atttypid = 'text'::regtype
               or (col.atttypid = 'varchar'::regtype and col.atttypmod < 0) then
                execute pg_catalog.format('alter table %s alter column %I type varchar(256)',
                                          cmd.objid::regclass, col.attname);
                max_bytes := 256;
                kind := 'varchar';
            elsif col.atttypid = 'bpchar'::regtype and col.atttypmod < 0 then
                execute pg_catalog.format('alter table %s alter column %I type char(256)',
                                          cmd.objid::regclass, col.attname);
                max_bytes := 256;
                kind := 'char';
            elsif col.atttypid = 'varchar'::regtype then
                max_bytes := col.atttypmod - 4;
                kind := 'varchar';
                if max_bytes > 65535 then
                    raise exception 'length for type varchar cannot exceed 65535'
                        using errcode = '22023';
                end if;
            elsif col.atttypid = 'bpchar'::regtype then
                max_bytes := col.atttypmod - 4;
                kind := 'char';
                if max_bytes > 4096 then
                    raise exception 'length for type bpchar cannot exceed 4096'
                        using errcode = '22023';
                end if;
            end if;
            check_name := pg_catalog.format('rs_%s_%s_%s', col.attnum, kind, max_bytes);
            -- drop checks left by an earlier type of this column
            for kind in
                select c.conname from pg_catalog.pg_constraint c
                where c.conrelid = cmd.objid and c.contype = 'c'
                  and c.conname like pg_catalog.format('rs\_%s\_%%', col.attnum)
                  and c.conname <> coalesce(check_name, '')
            loop
                execute pg_catalog.format('alter table %s drop constraint %I',
                                          cmd.objid::regclass, kind);
            end loop;
            if max_bytes is not null and not exists (
                select 1 from pg_catalog.pg_constraint c
                where c.conrelid = cmd.objid and c.conname = check_name
            ) then
                execute pg_catalog.format(
                    'alter table %s add constraint %I check (pg_catalog.octet_length(%I) <= %s)',
                    cmd.objid::regclass, check_name, col.attname, max_bytes);
            end if;
        end loop;
        update pg_catalog.pg_index i set indisunique = false
        where i.indrelid = cmd.objid and i.indisunique
          and exists (select 1 from pg_catalog.pg_constraint c
                      where c.conindid = i.indexrelid and c.contype in ('p', 'u'));
    end loop;
    perform pg_catalog.set_config('rs.fixing_table', 'off', true);
end
$$;

drop event trigger if exists rs_fix_table_definition;
create event trigger rs_fix_table_definition on ddl_command_end
    when tag in ('CREATE TABLE', 'ALTER TABLE', 'CREATE TABLE AS', 'SELECT INTO')
    execute function pg_catalog.rs_fix_table_definition();

-- A string literal has no type yet: treat it as a TIMESTAMP, as Redshift does.
create or replace function pg_catalog.rs_extract(part text, value text)
returns integer language sql stable parallel safe as $$
select pg_catalog.rs_extract(part, value::timestamp)
$$;
create or replace function pg_catalog.datediff(part text, a text, b text)
returns bigint language sql stable parallel safe as $$
select pg_catalog.datediff(part, a::timestamp, b::timestamp)
$$;
create or replace function pg_catalog.nvl2(expression text, not_null_value anycompatible,
                                           null_value anycompatible)
returns anycompatible language sql immutable parallel safe as $$
select case when expression is not null then not_null_value else null_value end
$$;

-- PG_GET_LATE_BINDING_VIEW_COLS (docs: PG_GET_LATE_BINDING_VIEW_COLS): the driver's
-- get_columns() unions it in. No late-binding views here, so no rows.
create or replace function pg_catalog.pg_get_late_binding_view_cols() returns setof record
language sql stable as $$
select null::name, null::name, null::name, null::text, null::integer where false
$$;

-- REGEXP_REPLACE(source, pattern): the replacement defaults to '' (docs: REGEXP_REPLACE),
-- every occurrence replaced.
create or replace function pg_catalog.regexp_replace(source text, pattern text) returns text
language sql immutable strict parallel safe as $$
select pg_catalog.regexp_replace(source, pattern, '', 'g')
$$;

-- CHARINDEX(substring, string) (docs: r_CHARINDEX): 1-based position, 0 when absent.
create or replace function pg_catalog.charindex(needle text, haystack text) returns integer
language sql immutable strict parallel safe as $$ select pg_catalog.strpos(haystack, needle) $$;
