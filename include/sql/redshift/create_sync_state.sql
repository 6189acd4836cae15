-- The target's record of what it holds, beside the tables it holds (one small table each,
-- created if missing; idempotent). Params: schema (identifier).
--   sync_state: one row per loaded table once it was bootstrapped (a full load): the capture
--     that keeps it ('logical' or 'interval'), the slot, and the applied LSN: every change
--     committed on the source before it is in the target (tracking_sync.load.sync_state),
--     with the end of the interval of the run that applied it (how old the capture is).
--   capture_batches: the LSN each nightly run captures up to, fixed when the run was first
--     planned, so that a rerun of the run reads the same batch.
--   capture_reloads (+ _ids, _xip): the snapshot of each reload (a full refresh's partition
--     by id range [id_from, id_to), or a backfill's interval by its ids: id_from null) that
--     the applied LSN has not yet passed, numbered in publish order: a change that the
--     latest reload of its row already saw is not applied again over it.
create table if not exists {{ schema }}.sync_state (
    target_table varchar(128) not null,
    capture varchar(16) not null,
    slot_name varchar(128),
    applied_lsn bigint,
    applied_at timestamptz,
    bootstrapped_by varchar(512),
    updated_by varchar(512)
)
diststyle all;

create table if not exists {{ schema }}.capture_batches (
    run_id varchar(512) not null,
    slot_name varchar(128) not null,
    upto_lsn bigint not null
)
diststyle all;

create table if not exists {{ schema }}.capture_reloads (
    reload_id varchar(512) not null,
    snapshot_xmin bigint not null,
    snapshot_xmax bigint not null,
    reload_lsn bigint not null,
    published_seq bigint not null,
    id_from bigint,
    id_to bigint
)
diststyle all;

create table if not exists {{ schema }}.capture_reload_ids (
    reload_id varchar(512) not null,
    id bigint not null
)
distkey (id);

create table if not exists {{ schema }}.capture_reload_xip (
    reload_id varchar(512) not null,
    xid bigint not null
)
diststyle all;
