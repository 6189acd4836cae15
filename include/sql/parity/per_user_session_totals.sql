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
-- base: action_user_totals
-- params: schema, window_start, window_end, scope, base
--   full: every user, every action before window_end.
--   scoped: the users active in [window_start, window_end), each with the
--   WHOLE history before window_end: their real totals (a session across
--   midnight counts whole; an old row changed in the target shows). Each
--   engine picks its own active users, so a user whose interval rows exist on
--   one side only is reported missing on the other. The cost follows those
--   users' rows, not the table: on PostgreSQL a semi-join of the interval's
--   users (action_time index) to their history (index-only on
--   user_profile_id, action_time include session_id); on Redshift each slice
--   joins its own users (distkey user_profile_id). It reads the shared pass
--   (base/action_user_totals.sql), where the query below runs as written.
--   users: the listed users (a change-capture batch's: the old and the new
--   user of every row it changed), each with the whole history before
--   window_end, as in scoped.
-- The reference query, as the pass computes it:
--     with user_sessions as (
--         select user_profile_id, session_id,
--             extract(epoch from max(action_time))
--                 - extract(epoch from min(action_time)) as session_duration
--         from action group by user_profile_id, session_id
--     )
--     select user_profile_id, sum(session_duration) as total_time_spent,
--         avg(session_duration) as session_avg_duration
--     from user_sessions group by user_profile_id
select
    user_profile_id,
    total_time_spent,
    session_avg_duration
from {{ base }}
order by user_profile_id
