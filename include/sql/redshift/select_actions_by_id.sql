-- Target rows by id, in the shape of postgres/select_actions_by_id.sql (the export's
-- columns), to compare the rows a run placed outside its interval with the source.
-- Params: schema (identifier), ids (integers, rendered as a list).
select
    id,
    user_profile_id,
    session_id,
    action_type_id,
    action_time,
    course_id,
    exercise_id,
    is_exercise_checked,
    is_async,
    query,
    coalesce(query = chr(92) || 'N', false) as query_is_marker
from {{ schema }}.action
where id in ({{ ids | join(", ") }})
order by id
