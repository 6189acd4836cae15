-- Row drill-down, the last step: the rows of the region in a few small id
-- ranges, every column, to compare column by column. action_time_us is
-- action_time as integer microseconds (what is compared); action_time is
-- there to be shown.
-- params: schema, window_start, window_end, scope, users, days, scope_users,
--   ranges, dialect (see _action_row.sql)
{% import "_action_row.sql" as action -%}
select
    id,
    user_profile_id,
    session_id,
    action_type_id,
    {{ action.action_time_us() }} as action_time_us,
    action_time,
    course_id,
    exercise_id,
    is_exercise_checked,
    is_async,
    query
from {{ schema }}.action
where {{ action.region(schema, window_end, users, days, scope, window_start, scope_users) }}
{{- action.id_ranges(ranges) }}
order by id
