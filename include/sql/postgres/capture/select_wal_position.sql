-- Where the source's WAL is: the flushed position (a capture's upto_lsn: logical decoding
-- reads only flushed WAL) and the next transaction id as a 64-bit xid8 (its epoch widens
-- the 32-bit xids of pgoutput; read from the snapshot, so no xid is assigned).
-- No params.
select
    pg_current_wal_flush_lsn()::text as flushed_lsn,
    pg_snapshot_xmax(pg_current_snapshot())::text::bigint as next_xid
