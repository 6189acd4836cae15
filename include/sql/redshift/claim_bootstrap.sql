-- Claim the target's bootstrap for one run, in one transaction under the sync state's lock:
-- a run that finds no sync state writes a 'bootstrapping' row naming itself (the bootstrap's
-- publish replaces it with the real state); a run that finds another run's claim waits for
-- it (tracking_sync.planning). Params: schema (identifier); %(run_id)s bound by the driver.
lock {{ schema }}.sync_state;

delete from {{ schema }}.sync_state
where target_table = 'action'
    and capture = 'bootstrapping';

insert into {{ schema }}.sync_state (target_table, capture, bootstrapped_by, updated_by)
values ('action', 'bootstrapping', %(run_id)s, %(run_id)s);
