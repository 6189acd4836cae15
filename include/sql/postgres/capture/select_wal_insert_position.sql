-- Where WAL is being inserted now (every transaction that has committed ends before it),
-- and wal_writer_delay in ms: an asynchronous commit is flushed within three times it. A
-- capture plans up to that position once the source has flushed that far (logical decoding
-- reads only flushed WAL). No params.
select
    pg_current_wal_insert_lsn()::text,
    (select setting::int from pg_settings where name = 'wal_writer_delay')
