-- Parity check: rows per table.
-- action_type is a small dictionary, always moved whole and counted whole.
--
-- key: table_name
-- value: row_count tolerance 0 -- a row is a row: one missing or extra row
--   (a lost part, a COPY appended twice: Redshift does not enforce keys) fails.
-- base: action_user_totals
-- params: schema, window_start, window_end, scope, base
--   full: `action`, every row before window_end.
--   scoped: `action_of_interval_users`, every row before window_end of the
--   users active in [window_start, window_end), the same rows as the scoped
--   per_user_session_totals: a deleted or duplicated old row of those users
--   leaves their session totals equal (not a session's first or last action)
--   but not this count. Not every row before window_end: on the source that
--   is a scan of the whole table (or of its action_time index) every night,
--   the cost the scoped mode exists to avoid; a `validation=full` run counts
--   everything. A user whose interval rows are on one side only is counted
--   on that side only (see per_user_session_totals), with all their rows.
--   users: `action_of_listed_users`, every row before window_end of the listed
--   users (a change-capture batch's), from the same pass.
with action_rows as (
    select
{%- if scope == "scoped" %}
        'action_of_interval_users' as table_name,
{%- elif scope == "users" %}
        'action_of_listed_users' as table_name,
{%- else %}
        'action' as table_name,
{%- endif %}
        cast(coalesce(sum(row_count), 0) as bigint) as row_count
    from {{ base }}
),

action_type_rows as (
    select
        'action_type' as table_name,
        count(*) as row_count
    from {{ schema }}.action_type
)

select table_name, row_count from action_rows
union all
select table_name, row_count from action_type_rows
order by table_name
