-- Redshift's date and time functions: date parts, EXTRACT, SYSDATE, GETDATE,
-- DATEDIFF, DATEADD, CONVERT_TIMEZONE.
-- Installed with the rest of devstack/redshift/compat/*.sql by
-- devstack.redshift.install_compat_catalog, in one transaction, as superuser. Objects
-- live in pg_catalog so that they resolve whatever search_path a client sets, as
-- Redshift's own system objects do. Idempotent: run on every start.

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

-- CONVERT_TIMEZONE (docs: CONVERT_TIMEZONE): the source zone defaults to UTC.
create or replace function pg_catalog.convert_timezone(target text, value timestamp)
returns timestamp language sql stable strict parallel safe as $$
select (value at time zone 'UTC') at time zone target
$$;
create or replace function pg_catalog.convert_timezone(source text, target text, value timestamp)
returns timestamp language sql stable strict parallel safe as $$
select (value at time zone source) at time zone target
$$;

-- A string literal has no type yet: treat it as a TIMESTAMP, as Redshift does.
create or replace function pg_catalog.rs_extract(part text, value text)
returns integer language sql stable parallel safe as $$
select pg_catalog.rs_extract(part, value::timestamp)
$$;
create or replace function pg_catalog.datediff(part text, a text, b text)
returns bigint language sql stable parallel safe as $$
select pg_catalog.datediff(part, a::timestamp, b::timestamp)
$$;
