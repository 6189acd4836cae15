-- How many reloads the applied LSN has not passed yet (capture_reloads): none, and the apply
-- has no change to set aside (apply_action_changes.sql, step 1). Params: schema (identifier).
select count(*)
from {{ schema }}.capture_reloads
