-- The users whose rows the batch touched: the target's users of the changed ids before the
-- apply (a delete carries only the id), and the users of the batch's new images. Their
-- totals are what validation compares after a capture run. Run inside the apply, after
-- replaced_rows was made (apply_action_changes.sql). Params: schema, staging (identifiers).
select distinct touched.user_profile_id
from (
    select user_profile_id
    from replaced_rows
    union all
    select user_profile_id
    from {{ schema }}.{{ staging }}
    where change_kind <> 'D'
) as touched
where touched.user_profile_id is not null
