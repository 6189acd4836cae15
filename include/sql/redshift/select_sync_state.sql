-- The target's sync state of action (create_sync_state.sql), or no row before its
-- bootstrap. Params: schema (identifier).
select capture, slot_name, applied_lsn, bootstrapped_by, applied_at
from {{ schema }}.sync_state
where target_table = 'action'
