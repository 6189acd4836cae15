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

-- STRTOL(num_string, base) (docs: r_STRTOL): the number a string of digits in base 2..36
-- means, as BIGINT; a leading sign and, in base 16, a 0x prefix are allowed. The pipeline
-- asks for it to tell Redshift from PostgreSQL (tracking_sync.dialect) and sums
-- STRTOL(hex, 16) in the row drill-down: without it the stand-in would be taken for
-- PostgreSQL and be sent PostgreSQL's SQL. Hex of up to 15 digits (the drill-down's 8)
-- takes PostgreSQL's own bit-string cast, inlined per row; anything else the loop below.
create or replace function pg_catalog.rs_strtol_digits(num_string text, base integer) returns bigint
language plpgsql immutable strict parallel safe as $$
declare
    digits text := lower(btrim(num_string));
    negative boolean := false;
    result numeric := 0;
    digit integer;
    c text;
begin
    if base < 2 or base > 36 then
        raise exception 'STRTOL base % is out of range 2..36', base using errcode = '22023';
    end if;
    if left(digits, 1) in ('-', '+') then
        negative := left(digits, 1) = '-';
        digits := substr(digits, 2);
    end if;
    if base = 16 and left(digits, 2) = '0x' then
        digits := substr(digits, 3);
    end if;
    if digits = '' then
        raise exception 'invalid input for STRTOL: "%"', num_string using errcode = '22P02';
    end if;
    foreach c in array pg_catalog.regexp_split_to_array(digits, '') loop
        digit := strpos('0123456789abcdefghijklmnopqrstuvwxyz', c) - 1;
        if digit < 0 or digit >= base then
            raise exception 'invalid input for STRTOL: "%" in base %', num_string, base using errcode = '22P02';
        end if;
        result := result * base + digit;
    end loop;
    return (case when negative then -result else result end)::bigint;
end
$$;

create or replace function pg_catalog.strtol(num_string text, base integer) returns bigint
language sql immutable strict parallel safe as $$
select case
    when base = 16 and num_string ~ '^[0-9A-Fa-f]{1,15}$'
        then cast(cast('x' || lpad(num_string, 16, '0') as bit(64)) as bigint)
    else pg_catalog.rs_strtol_digits(num_string, base)
end
$$;
