-- Move the slot's confirmed position to lsn (never backwards): the changes of transactions
-- committed before it are no longer returned, and the WAL before them can be removed.
-- Params (bound by the driver): slot, lsn (pg_lsn text).
select end_lsn::text
from pg_replication_slot_advance(%(slot)s, %(lsn)s::pg_lsn)
