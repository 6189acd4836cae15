-- Drop the capture's slot (the WAL it retained is freed at the next checkpoint).
-- Params (bound by the driver): slot.
select pg_drop_replication_slot(%(slot)s)
