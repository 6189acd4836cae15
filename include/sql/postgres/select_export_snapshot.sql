-- What an export in a REPEATABLE READ transaction sees, read first in that transaction: its
-- snapshot (xmin:xmax:xip, xid8 values) and the WAL position. A change whose transaction
-- this snapshot saw is already in the export (tracking_sync.load.sync_state).
select
    pg_current_snapshot()::text,
    pg_current_wal_lsn()::text
