-- Parity check: action rows per UTC day, a checksum of their times and the
-- size of their queries.
-- A difference names the days to backfill. The checksum (seconds into the
-- day, summed) catches an action moved in time that leaves counts and
-- session totals equal (one in the middle of a session).
--
-- key: day
-- days: day
-- value: row_count tolerance 0 -- a row is a row: one missing or extra row
--   on a day makes that day one to backfill.
-- value: seconds_into_day_sum tolerance 0.5 -- both engines sum doubles
--   (values < 86400, ~2.4e-7 s rounding each): < 0.03 s at 100k rows a day.
--   Half a second is above that and below the smallest change to catch (1 s).
-- value: query_count tolerance 0 -- actions with a query (not NULL): an
--   empty query loaded as NULL (EMPTYASNULL) or a lost one changes it.
-- value: query_bytes tolerance 0 -- bytes of those queries: a truncated query
--   (VARCHAR counts bytes on Redshift) or an invalid character replaced
--   (ACCEPTINVCHARS) changes it.
-- base: action_days
-- params: schema, window_start, window_end, scope, base
--   full: every day before window_end.
--   scoped: the days of [window_start, window_end), every user's rows: the
--   days this run loaded. Not "every day the interval's users were active":
--   on the demo data a day's users were active on every earlier day (182 of
--   182 days before 2025-07-02 at 2M rows), so that is a scan of the whole
--   table. An old row of an interval user that differs is caught by
--   per_user_session_totals and table_row_counts (both over those users'
--   whole history); a `validation=full` run then names its day.
--   users: every day before window_end, the listed users' rows only (a
--   change-capture batch changes rows on any day): a difference names a day
--   where one of those users' rows differ.
--   Days are UTC (validate sets the session's time zone to UTC on both
--   engines). Rows come from the shared pass (base/action_days.sql), which
--   reads the rows the scope names; scope "users" computes it chunk by chunk,
--   so a day has a row per chunk, summed here. The checksum is summed there
--   per action as seconds into its day: sums of values below 86400, not of
--   1.7e9 s epochs.
select
    day,
    cast(sum(row_count) as bigint) as row_count,
    sum(seconds_into_day_sum) as seconds_into_day_sum,
    cast(sum(query_count) as bigint) as query_count,
    cast(coalesce(sum(query_bytes), 0) as bigint) as query_bytes
from {{ base }}
group by day
order by day
