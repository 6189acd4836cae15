-- Set the sync state of action, in the publish transaction: after a full load
-- (bootstrapped_by is the run, applied_lsn where the slot started), or after a batch of
-- changes was applied (applied_lsn its upto LSN). Delete and insert: one row per table.
-- Params: schema (identifier); %(capture)s, %(slot)s, %(applied_lsn)s, %(applied_at)s,
-- %(bootstrapped_by)s and %(run_id)s bound by the driver.
delete from {{ schema }}.sync_state
where target_table = 'action';

insert into {{ schema }}.sync_state (
    target_table, capture, slot_name, applied_lsn, applied_at, bootstrapped_by, updated_by
)
values (
    'action',
    %(capture)s,
    %(slot)s,
    %(applied_lsn)s,
    %(applied_at)s,
    %(bootstrapped_by)s,
    %(run_id)s
);
