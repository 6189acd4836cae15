-- Macros of the row drill-down (imported by action_buckets.sql and action_rows.sql):
-- which rows of `action` are looked at, and one row as text, identical on both
-- engines. Not a query of its own.
--
-- region(): the rows the failed checks point at, before window_end. users and
--   days are values validate took from the checks' results (integers, checked
--   timestamp literals); none of them: everything (full) or the interval's users
--   with their whole history (scoped). scope_users (scope "users"): the listed
--   users, a list of checked integers ("null" for none), one chunk of them per
--   query; the region never leaves them (other users' rows are not compared in
--   that scope); None when the named users alone are the region.
-- ranges: [(lo, hi), ...] id ranges [lo, hi) still to narrow (none: all ids).
-- row_text(): each column as text the same way on PostgreSQL and Redshift:
--   integers as decimal text; action_time as integer microseconds since the
--   epoch (never a timestamp's text, which differs between engines and between
--   TIMESTAMP and TIMESTAMPTZ); booleans as t/f; query through md5 (a row's text
--   stays short: Redshift's VARCHAR stops at 65535 bytes); NULL as '~', which
--   no integer, boolean or md5 text can be.
-- row_hash(): 32 bits of the row text's md5 as a number, to sum per bucket.
--   md5() exists on both engines; hex to number does not: Redshift has
--   STRTOL(text, 16), PostgreSQL a cast through bit(32). validate asks each
--   engine which one it has (dialect).

{% macro region(schema, window_end, users, days, scope, window_start, scope_users) -%}
action_time < {{ window_end }}
{%- if scope_users %}
      and user_profile_id in ({{ scope_users }})
{%- endif %}
{%- if users or days %}
      and (
{%- if users %}
          user_profile_id in ({{ users | join(', ') }})
{%- endif %}
{%- for day_start, day_end in days %}
          {% if users or not loop.first %}or {% endif %}(action_time >= {{ day_start }} and action_time < {{ day_end }})
{%- endfor %}
      )
{%- elif scope == "scoped" %}
      and user_profile_id in (
          select user_profile_id
          from {{ schema }}.action
          where action_time >= {{ window_start }}
            and action_time < {{ window_end }}
      )
{%- endif %}
{%- endmacro %}

{% macro id_ranges(ranges) -%}
{%- if ranges %}
      and (
{%- for lo, hi in ranges %}
          {% if not loop.first %}or {% endif %}(id >= {{ lo }} and id < {{ hi }})
{%- endfor %}
      )
{%- endif %}
{%- endmacro %}

{% macro action_time_us() -%}
cast(round(date_part('epoch', action_time) * 1000000) as bigint)
{%- endmacro %}

{% macro row_text() -%}
cast(id as varchar)
            || '|' || coalesce(cast(user_profile_id as varchar), '~')
            || '|' || coalesce(session_id, '~')
            || '|' || coalesce(cast(action_type_id as varchar), '~')
            || '|' || coalesce(cast({{ action_time_us() }} as varchar), '~')
            || '|' || coalesce(cast(course_id as varchar), '~')
            || '|' || coalesce(cast(exercise_id as varchar), '~')
            || '|' || case when is_exercise_checked then 't'
                           when not is_exercise_checked then 'f' else '~' end
            || '|' || case when is_async then 't' when not is_async then 'f' else '~' end
            || '|' || coalesce(md5(query), '~')
{%- endmacro %}

{% macro row_hash(dialect) -%}
{%- if dialect == "redshift" -%}
strtol(substr(md5(
            {{ row_text() }}
        ), 1, 8), 16)
{%- else -%}
cast(cast('x' || substr(md5(
            {{ row_text() }}
        ), 1, 8) as bit(32)) as bigint)
{%- endif %}
{%- endmacro %}
