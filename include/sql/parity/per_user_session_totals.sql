-- Parity check: per-user session totals, the reference analytics query.
-- A session lasts from its user's first to last action with that session_id;
-- per user: the sum and the average of session durations, in seconds, from
-- extract(epoch ...). The same text answers differently when the target's
-- action_time is TIMESTAMP (Redshift's EXTRACT then returns whole seconds):
-- catching that is why this check exists.
--
-- key: user_profile_id
-- value: total_time_spent tolerance 0.001 -- PostgreSQL's extract(epoch) is
--   an exact numeric, Redshift's (from TIMESTAMPTZ) a double: ~2.4e-7 s of
--   rounding per timestamp near 1.7e9 s, < 1e-4 s over a user's sessions.
--   1 ms is well above that and 1000x below a real error (an action moved by
--   a second; the integer EXTRACT drops up to 1 s per session).
-- value: session_avg_duration tolerance 0.001 -- an average of the durations
--   above, so at most the same rounding.
-- params: schema, window_start, window_end, scope
--   full: every action before window_end.
--   scoped: the actions in [window_start, window_end), the rows this run
--   loaded; both engines aggregate the same slice, so the totals compare.
with actions as (
    select user_profile_id, session_id, action_time
    from {{ schema }}.action
    where action_time < {{ window_end }}
{%- if scope == "scoped" %}
      and action_time >= {{ window_start }}
{%- endif %}
),

user_sessions as (
    select
        user_profile_id,
        session_id,
        extract(epoch from max(action_time))
            - extract(epoch from min(action_time)) as session_duration
    from actions
    group by user_profile_id, session_id
)

select
    user_profile_id,
    sum(session_duration) as total_time_spent,
    avg(session_duration) as session_avg_duration
from user_sessions
group by user_profile_id
order by user_profile_id
