-- Parity check: action rows per UTC day, and a checksum of their times.
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
-- params: schema, window_start, window_end, scope
--   full: every day before window_end.
--   scoped: the days of [window_start, window_end), every user's rows: the
--   days this run loaded. Not "every day the interval's users were active":
--   on the demo data a day's users were active on every earlier day (182 of
--   182 days before 2025-07-02 at 2M rows), so that is a scan of the whole
--   table. An old row of an interval user that differs is caught by
--   per_user_session_totals and table_row_counts (both over those users'
--   whole history); a `validation=full` run then names its day.
--   Days are UTC (validate sets the session's time zone to UTC on both
--   engines).
with actions as (
    select action_time
    from {{ schema }}.action
    where action_time < {{ window_end }}
{%- if scope == "scoped" %}
      and action_time >= {{ window_start }}
{%- endif %}
)

select
    cast(action_time as date) as day,
    count(*) as row_count,
    -- date_part, not extract: a double on both engines, 2.5x cheaper than
    -- PostgreSQL's numeric extract over every row (measured); the integer
    -- EXTRACT trap is per_user_session_totals' to catch, not this checksum's.
    sum(
        date_part('epoch', action_time)
        - date_part('epoch', date_trunc('day', action_time))
    ) as seconds_into_day_sum
from actions
group by cast(action_time as date)
order by day
