-- Shared pass over `action` for the parity checks that declare
-- `-- base: action_days`: one row per UTC day with its rows, a checksum of
-- their times and the marks of their queries. A plain GROUP BY of a few
-- hundred groups (see base/action_user_totals.sql for why the per-user figures
-- are a pass of their own). validate runs it ONCE per engine into a session
-- temp table; action_rows_per_day reads it. Rendered standalone, a check
-- inlines it as a subquery.
-- params: schema, window_start, window_end, scope, users
--   full: every action before window_end.
--   users: the listed users' actions before window_end (a change-capture
--   batch's users: changes on any day). `users` is a list of checked integers
--   ("null" for none: no row); validate computes a long list chunk by chunk
--   into the same temp table, a day's rows in several chunks (the check sums
--   them).
--   scoped: the actions of [window_start, window_end), every user's (they
--   are the interval users' interval rows: see action_rows_per_day); on
--   PostgreSQL through the action_time index.
--   Days are UTC (validate sets the session's time zone to UTC on both
--   engines). seconds_into_day: each action's epoch (date_part: a double on
--   both engines) less its UTC day's start, so a day's sum adds values below
--   86400 and keeps its sub-second precision (a sum of 1.7e9 s epochs over a
--   day's rows would not).
--   day_number: the UTC day as days since 1970-01-01, from that same epoch, and
--   turned into a date only for the few hundred days grouped: casting every
--   row's action_time to a date costs a time-zone conversion per row on the
--   target (TIMESTAMPTZ), 0.2-0.45 of its ~2.3 CPU-s at 10M rows (measured);
--   `timestamp 'epoch' + n * interval '1 second'` is Redshift's own idiom.
--   query_count, query_bytes: the free text no other sum sees, by its cheap
--   marks: NULL or not, and bytes (a truncated text, '?' for an invalid
--   character, '' loaded as NULL all change them). An md5 per row would also
--   see a same-length edit, at +30-40% of the pass (measured): the row
--   drill-down compares whole values once a check fails.
with timed_actions as (
    select
        date_part('epoch', action_time) as epoch,
        query
    from {{ schema }}.action
    where action_time < {{ window_end }}
{%- if scope == "scoped" %}
      and action_time >= {{ window_start }}
{%- elif scope == "users" %}
      and user_profile_id in ({{ users }})
{%- endif %}
    -- a fence: PostgreSQL would otherwise inline `epoch` twice below and compute
    -- date_part twice per row (10% of this pass at 10M rows, measured)
    offset 0
),

numbered_days as (
    select
        floor(epoch / 86400) as day_number,
        epoch,
        query
    from timed_actions
    -- the same fence for day_number (grouped by, and subtracted per row)
    offset 0
),

days as (
    select
        day_number,
        count(*) as row_count,
        sum(epoch - day_number * 86400) as seconds_into_day_sum,
        count(query) as query_count,
        sum(octet_length(query)) as query_bytes
    from numbered_days
    group by day_number
)

select
    cast(timestamp 'epoch' + day_number * 86400 * interval '1 second' as date) as day,
    row_count,
    seconds_into_day_sum,
    query_count,
    query_bytes
from days
