-- Redshift's string and null functions: LEN, NVL2, REGEXP_REPLACE(source, pattern),
-- CHARINDEX (NVL itself is rewritten to COALESCE by the proxy).
-- Installed with the rest of devstack/redshift/compat/*.sql by
-- devstack.redshift.install_compat_catalog, in one transaction, as superuser. Objects
-- live in pg_catalog so that they resolve whatever search_path a client sets, as
-- Redshift's own system objects do. Idempotent: run on every start.

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

-- NVL2 of a string literal (no type yet)
create or replace function pg_catalog.nvl2(expression text, not_null_value anycompatible,
                                           null_value anycompatible)
returns anycompatible language sql immutable parallel safe as $$
select case when expression is not null then not_null_value else null_value end
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

-- What the proxy runs instead of a statement Redshift refuses (devstack/redshift/refusals.py):
-- Redshift's INFO lines (leader-node-only functions name each one), then its error. Raised
-- by PostgreSQL itself, so a transaction block fails exactly as the refused statement
-- would have made it fail on Redshift.
create or replace function pg_catalog.rs_refuse(code text, message text, detail text, hint text,
                                                info text)
returns void language plpgsql volatile as $$
declare
    line text;
begin
    if info <> '' then
        foreach line in array pg_catalog.string_to_array(info, E'\n') loop
            raise info '%', line;
        end loop;
    end if;
    raise exception using errcode = code, message = message, detail = detail, hint = hint;
end
$$;
