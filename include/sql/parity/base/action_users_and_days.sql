-- Shared pass over `action` for the parity checks that declare
-- `-- base: action_users_and_days`: ONE scan of `action` that hashes each
-- action into two groupings at once (GROUPING SETS): its user's session
-- (user_profile_id, session_id: ~1.4M at 10M demo actions) and its UTC day
-- (a few hundred), then folds the sessions into their users. What it returns
-- is small: one row per user (day is NULL) with the reference query's session
-- totals and the user's row count, and one row per day (user_profile_id is
-- NULL) with the day's rows, time checksum and query marks. validate runs it
-- ONCE per engine into a session temp table (~24k rows at 10M demo actions)
-- and each check reads its rows: the per-user, per-day and row-count checks
-- cost one scan of `action` together, and no second grouping of the sessions
-- (the session-day table this replaced had ~1.4M rows for the checks to
-- regroup). Rendered standalone, a check inlines it as a subquery.
-- Which row is which: user_profile_id, session_id and action_time are NOT
-- NULL, so a user row is the one whose day is NULL and a day row the one
-- whose user_profile_id is NULL. A user row's day columns (in_interval,
-- seconds_into_day_sum, query_count, query_bytes) and a day row's session
-- columns (total_time_spent, session_avg_duration) are computed by the same
-- grouping and mean nothing: the checks do not read them.
-- params: schema, window_start, window_end, scope, users
--   full: every action before window_end; in_interval is true for all.
--   users: the listed users' actions before window_end (a change-capture
--   batch's users: changes on any day), in_interval true for all. `users` is a
--   list of checked integers ("null" for none: no row); validate computes a
--   long list chunk by chunk into the same temp table: a user's rows are all
--   in one chunk (one user row each), a day's rows in several (the per-day
--   check sums them).
--   scoped: the users active in [window_start, window_end), each with the
--   WHOLE history before window_end (see per_user_session_totals); in_interval
--   marks the day rows of [window_start, window_end) (every row of the
--   interval belongs to one of those users, so the per-day check loses
--   nothing); the history's queries are not read (NULL).
--   Days are UTC (validate sets the session's time zone to UTC on both
--   engines). seconds_into_day: each action's epoch (date_part: a double on
--   both engines) less its UTC day's start, so a day's sum adds values below
--   86400 and keeps its sub-second precision (a sum of 1.7e9 s epochs over a
--   day's rows would not).
--   query_count, query_bytes: the free text no other sum sees, by its cheap
--   marks: NULL or not, and bytes (a truncated text, '?' for an invalid
--   character, '' loaded as NULL all change them). An md5 per row would also
--   see a same-length edit, at +30-40% of this pass (measured): the row
--   drill-down compares whole values once a check fails.
--   total_time_spent, session_avg_duration: the reference query's own
--   expressions (extract(epoch) of each session's last and first action).
with
{%- if scope == "scoped" %}
interval_users as (
    select distinct user_profile_id
    from {{ schema }}.action
    where action_time >= {{ window_start }}
      and action_time < {{ window_end }}
),

actions as (
    select
        user_profile_id,
        session_id,
        action_time,
        cast(null as varchar) as query,
        false as in_interval
    from {{ schema }}.action
    where action_time < {{ window_start }}
      and user_profile_id in (select user_profile_id from interval_users)
    union all
    select
        user_profile_id,
        session_id,
        action_time,
        query,
        true as in_interval
    from {{ schema }}.action
    where action_time >= {{ window_start }}
      and action_time < {{ window_end }}
      and user_profile_id in (select user_profile_id from interval_users)
),
{%- elif scope == "users" %}
actions as (
    select
        user_profile_id,
        session_id,
        action_time,
        query,
        true as in_interval
    from {{ schema }}.action
    where action_time < {{ window_end }}
      and user_profile_id in ({{ users }})
),
{%- else %}
actions as (
    select
        user_profile_id,
        session_id,
        action_time,
        query,
        true as in_interval
    from {{ schema }}.action
    where action_time < {{ window_end }}
),
{%- endif %}

timed_actions as (
    select
        user_profile_id,
        session_id,
        action_time,
        query,
        in_interval,
        cast(action_time as date) as day,
        date_part('epoch', action_time) as epoch
    from actions
),

sessions_and_days as (
    select
        user_profile_id,
        session_id,
        day,
        in_interval,
        count(*) as row_count,
        min(action_time) as first_time,
        max(action_time) as last_time,
        sum(epoch - floor(epoch / 86400) * 86400) as seconds_into_day_sum,
        count(query) as query_count,
        sum(octet_length(query)) as query_bytes
    from timed_actions
    group by grouping sets (
        (user_profile_id, session_id),
        (day, in_interval)
    )
)

select
    user_profile_id,
    day,
    in_interval,
    cast(sum(row_count) as bigint) as row_count,
    sum(
        extract(epoch from last_time) - extract(epoch from first_time)
    ) as total_time_spent,
    avg(
        extract(epoch from last_time) - extract(epoch from first_time)
    ) as session_avg_duration,
    sum(seconds_into_day_sum) as seconds_into_day_sum,
    cast(sum(query_count) as bigint) as query_count,
    cast(sum(query_bytes) as bigint) as query_bytes
from sessions_and_days
group by user_profile_id, day, in_interval
