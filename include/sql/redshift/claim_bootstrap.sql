-- Claim the target's bootstrap for one run, in the transaction that holds the sync state's
-- lock (lock_sync_state.sql) and found no settled state nor a live claim: a 'bootstrapping'
-- row naming the run, which the bootstrap's publish replaces with the real state
-- (tracking_sync.planning). Params: schema (identifier); %(run_id)s bound by the driver.
delete from {{ schema }}.sync_state
where target_table = 'action'
    and capture = 'bootstrapping';

insert into {{ schema }}.sync_state (target_table, capture, bootstrapped_by, updated_by)
values ('action', 'bootstrapping', %(run_id)s, %(run_id)s);
