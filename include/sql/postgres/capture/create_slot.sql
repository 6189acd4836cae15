-- Create the capture's logical replication slot (pgoutput, persistent); returns the LSN
-- it is consistent from: the changes of transactions that commit after it.
-- Waits until the transactions running at that moment have ended.
-- Params (bound by the driver): slot.
select lsn::text
from pg_create_logical_replication_slot(%(slot)s, 'pgoutput')
