-- Shared pass over `action` for the parity checks that declare
-- `-- base: action_user_totals`: the reference per-user query itself, plus each
-- user's row count. One row per user (~24k at 10M demo actions): each session
-- (user_profile_id, session_id: ~1.4M at 10M demo actions) hashed once and
-- folded into its user in the same statement, as the reference does. validate
-- runs it ONCE per engine into a session temp table; per_user_session_totals
-- and table_row_counts read its rows. The per-day figures are the other pass
-- (base/action_days.sql): one grouping by (user, session) and one by day cost
-- less than one scan grouping by both at once (GROUPING SETS, measured),
-- and each is a plain GROUP BY that PostgreSQL hashes at any size (it planned
-- the grouping sets as two sorts of 10M rows on an analyzed source: it hashes
-- them only when its estimate of the groups fits in memory; hashed, with
-- hash_mem_multiplier raised, they cost 1 CPU-s more per engine at 10M rows).
-- Rendered standalone, a check inlines it as a subquery.
-- work_mem: 1GB -- PostgreSQL's hash of the sessions (~1.4M at 10M demo
--   actions, 246 MB measured) fits: at the default 4MB it sorted the table
--   or spilled. A cap, not an allocation: a larger table spills to disk and
--   the session's memory stays bounded (twice this with hash_mem_multiplier
--   2). Redshift has no such setting: validate sets it only on an engine
--   that answers SHOW work_mem (the source, the local stand-in's backend).
-- params: schema, window_start, window_end, scope, users
--   full: every action before window_end.
--   users: the listed users' actions before window_end (a change-capture
--   batch's users: changes on any day). `users` is a list of checked integers
--   ("null" for none: no row); validate computes a long list chunk by chunk
--   into the same temp table: a user's rows are all in one chunk.
--   scoped: the users active in [window_start, window_end), each with the
--   WHOLE history before window_end (see per_user_session_totals).
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
    select user_profile_id, session_id, action_time
    from {{ schema }}.action
    where action_time < {{ window_end }}
      and user_profile_id in (select user_profile_id from interval_users)
),
{%- elif scope == "users" %}
actions as (
    select user_profile_id, session_id, action_time
    from {{ schema }}.action
    where action_time < {{ window_end }}
      and user_profile_id in ({{ users }})
),
{%- else %}
actions as (
    select user_profile_id, session_id, action_time
    from {{ schema }}.action
    where action_time < {{ window_end }}
),
{%- endif %}

user_sessions as (
    select
        user_profile_id,
        session_id,
        count(*) as row_count,
        extract(epoch from max(action_time))
        - extract(epoch from min(action_time)) as session_duration
    from actions
    group by user_profile_id, session_id
)

select
    user_profile_id,
    cast(sum(row_count) as bigint) as row_count,
    sum(session_duration) as total_time_spent,
    avg(session_duration) as session_avg_duration
from user_sessions
group by user_profile_id
