-- Shared pass over `action` for the parity checks that declare
-- `-- base: action_session_days`: one row per user, session and UTC day, with
-- what each check needs (rows, first and last action, summed epoch seconds).
-- validate runs it ONCE per engine into a session temp table, and each check
-- aggregates that (a row per session and day: ~1.4M at 10M demo actions)
-- instead of scanning `action` again: the per-user, per-day and row-count
-- checks cost one scan of `action` together.
-- Rendered standalone, a check inlines it as a subquery.
-- params: schema, window_start, window_end, scope, users
--   full: every action before window_end; in_interval is true for all.
--   users: the listed users' actions before window_end (a change-capture
--   batch's users: changes on any day), in_interval true for all. `users` is a
--   list of checked integers ("null" for none: no row); validate computes a
--   long list chunk by chunk into the same temp table (a user's rows are all
--   in one chunk, so the checks' sums over the chunks are exact).
--   scoped: the users active in [window_start, window_end), each with the
--   WHOLE history before window_end (see per_user_session_totals); in_interval
--   marks the rows of [window_start, window_end) (every row of the interval
--   belongs to one of those users, so the per-day check loses nothing).
--   Days are UTC (validate sets the session's time zone to UTC on both engines).
--   epoch_sum: date_part('epoch'), a double on both engines; summed per group
--   (a session's actions of one day), so the per-day checksum subtracts the
--   day's start from small sums and keeps its sub-second precision.
--   query_count, query_bytes: the free text no other sum sees, by its cheap
--   marks: NULL or not, and bytes (a truncated text, '?' for an invalid
--   character, '' loaded as NULL all change them). An md5 per row would also
--   see a same-length edit, at +30-40% of this pass (measured): the row
--   drill-down compares whole values once a check fails.
with
{%- if scope == "scoped" %}
interval_users as (
    select distinct user_profile_id
    from {{ schema }}.action
    where action_time >= {{ window_start }}
      and action_time < {{ window_end }}
),

actions as (
    select user_profile_id, session_id, action_time, cast(null as varchar) as query
    from {{ schema }}.action
    where action_time < {{ window_start }}
      and user_profile_id in (select user_profile_id from interval_users)
    union all
    select user_profile_id, session_id, action_time, query
    from {{ schema }}.action
    where action_time >= {{ window_start }}
      and action_time < {{ window_end }}
      and user_profile_id in (select user_profile_id from interval_users)
)
{%- elif scope == "users" %}
actions as (
    select user_profile_id, session_id, action_time, query
    from {{ schema }}.action
    where action_time < {{ window_end }}
      and user_profile_id in ({{ users }})
)
{%- else %}
actions as (
    select user_profile_id, session_id, action_time, query
    from {{ schema }}.action
    where action_time < {{ window_end }}
)
{%- endif %}

select
    user_profile_id,
    session_id,
    cast(action_time as date) as day,
{%- if scope == "scoped" %}
    (action_time >= {{ window_start }}
        and action_time < {{ window_end }}) as in_interval,
{%- else %}
    true as in_interval,
{%- endif %}
    count(*) as row_count,
    min(action_time) as first_time,
    max(action_time) as last_time,
    sum(date_part('epoch', action_time)) as epoch_sum,
    count(query) as query_count,
    sum(octet_length(query)) as query_bytes
from actions
group by
    user_profile_id,
    session_id,
    cast(action_time as date)
{%- if scope == "scoped" %},
    (action_time >= {{ window_start }}
        and action_time < {{ window_end }})
{%- endif %}
