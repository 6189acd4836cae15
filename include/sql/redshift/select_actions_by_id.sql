-- Target rows by id, in the shape of postgres/select_actions_by_id.sql (the export's
-- columns), to compare with the source the rows a run placed outside its interval or
-- a change batch touched. Params: relation (the schema's action, or the session's temp
-- table of the rows stage_actions_by_id.sql staged), ids (checked integers, rendered as a
-- list: validate sends at most 10,000 a statement, ~110 kB, far below Redshift's 16 MB; no
-- array, which Redshift lacks).
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
from {{ relation }}
where id in ({{ ids | join(", ") }})
order by id
