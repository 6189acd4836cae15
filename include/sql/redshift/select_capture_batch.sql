-- The LSN a run's capture batch was planned up to, if the run was planned before.
-- Params: schema (identifier); %(run_id)s and %(slot)s bound by the driver.
select upto_lsn
from {{ schema }}.capture_batches
where run_id = %(run_id)s
  and slot_name = %(slot)s
