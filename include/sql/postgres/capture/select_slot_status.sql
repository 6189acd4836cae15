-- One replication slot and how much WAL it holds back on the source (no row: no slot).
-- retained_wal_bytes is what the server keeps for it (from restart_lsn to the current WAL
-- position); safe_wal_size is what may still be written before max_slot_wal_keep_size
-- invalidates it (null when unlimited or lost).
-- Params (bound by the driver): slot.
select
    s.slot_name::text,
    s.plugin::text,
    s.slot_type,
    s.database::text,
    s.active,
    s.wal_status,
    s.confirmed_flush_lsn::text,
    s.restart_lsn::text,
    pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)::bigint as retained_wal_bytes,
    s.safe_wal_size
from pg_replication_slots as s
where s.slot_name = %(slot)s
