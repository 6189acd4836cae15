-- Shared pass over `action` for a scope "users" validation (a change-capture
-- batch's users): base/action_user_totals.sql and base/action_days.sql in ONE
-- scan of `action`, which has no index on the target: the listed users' rows
-- are found by reading the whole table, and a second pass read it all again.
-- validate (tracking_sync.validate.shared_pass) computes it into a temp table
-- and splits it into those two bases' tables: user rows (day null), then day
-- rows (user_profile_id null), each with the columns and the expressions of
-- its base, so every check reads what it read before (the NULLs untyped: each
-- column takes its type from the branch that fills it, as in its base).
-- One GROUP BY GROUPING SETS ((user, session), (day)), the sessions then folded
-- into their users. Measured with 7,912 users listed (a third of the rows), the
-- same rows as the two passes: at 2M rows, both engines at once as validate runs
-- them, 0.93-1.13 s against 1.21-1.43 s (4 runs each, alternated); at 10M rows,
-- each engine alone, 3 runs each: target 2.77-2.88 s against 3.16-3.34 s, source
-- 2.76-2.90 s against 2.89-2.97 s (the machine shared, load 1.4-2.1). Not for the
-- full and scoped scopes: over the whole table PostgreSQL plans grouping sets
-- as sorts when its estimate of the groups does not fit in memory (20-25 s at
-- 10M rows against 10.6 s, docs/benchmarks.md); a listed users' scope groups
-- a share of the rows.
-- work_mem: 1GB -- the hash of the listed users' sessions (see
--   base/action_user_totals.sql); PostgreSQL hashes grouping sets only when its
--   estimate fits in memory.
-- params: schema, window_start, window_end, scope, users
--   users: the listed users' actions before window_end. `users` is a list of
--   checked integers ("null" for none: no row); validate computes a long
--   list chunk by chunk into the same temp table: a user's rows are all in
--   one chunk, a day's rows in several (action_rows_per_day sums them).
--   full (not used by validate): every action before window_end.
with listed_rows as (
    select
        user_profile_id,
        session_id,
        action_time,
        date_part('epoch', action_time) as epoch,
        query
    from {{ schema }}.action
    where action_time < {{ window_end }}
{%- if scope == "users" %}
      and user_profile_id in ({{ users }})
{%- endif %}
    -- a fence: date_part once per row (see base/action_days.sql)
    offset 0
),

grouped as (
    select
        user_profile_id,
        session_id,
        floor(epoch / 86400) as day_number,
        count(*) as row_count,
        extract(epoch from max(action_time))
        - extract(epoch from min(action_time)) as session_duration,
        sum(epoch - floor(epoch / 86400) * 86400) as seconds_into_day_sum,
        count(query) as query_count,
        sum(octet_length(query)) as query_bytes,
        grouping(session_id) as is_day
    from listed_rows
    group by grouping sets ((user_profile_id, session_id), (floor(epoch / 86400)))
)

select
    user_profile_id,
    cast(sum(row_count) as bigint) as row_count,
    sum(session_duration) as total_time_spent,
    avg(session_duration) as session_avg_duration,
    null as day,
    null as seconds_into_day_sum,
    null as query_count,
    null as query_bytes
from grouped
where is_day = 0
group by user_profile_id

union all

select
    null as user_profile_id,
    row_count,
    null as total_time_spent,
    null as session_avg_duration,
    cast(timestamp 'epoch' + day_number * 86400 * interval '1 second' as date) as day,
    seconds_into_day_sum,
    query_count,
    query_bytes
from grouped
where is_day = 1
