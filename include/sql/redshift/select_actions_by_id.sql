-- Target rows by id, in the shape of postgres/select_actions_by_id.sql (the export's
-- columns), to compare with the source the rows a run placed outside its interval or
-- a change batch touched. Params: schema (identifier), ids (checked integers, rendered
-- as a list: validate sends at most 10,000 a statement, ~110 kB, far below Redshift's
-- 16 MB; no array, which Redshift lacks).
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
