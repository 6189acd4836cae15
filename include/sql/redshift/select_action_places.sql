-- Where the target's rows with these ids are: their user and UTC day (validate sets the
-- session's time zone to UTC). Validate reads them for the ids that changes pending in the
-- capture's slot update or delete: the target holds their old images, and a delete under
-- the default replica identity carries only its id. Params: schema (identifier), ids
-- (checked integers, rendered as a list: at most 10,000 a statement, ~110 kB, far below
-- Redshift's 16 MB; no array, which Redshift lacks).
select
    id,
    user_profile_id,
    cast(action_time as date) as day
from {{ schema }}.action
where id in ({{ ids | join(", ") }})
