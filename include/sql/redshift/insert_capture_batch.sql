-- Record the LSN a run's capture batch reads up to (once per run: see
-- select_capture_batch.sql). Params: schema (identifier); %(run_id)s, %(slot)s and
-- %(upto_lsn)s bound by the driver.
insert into {{ schema }}.capture_batches (run_id, slot_name, upto_lsn)
values (%(run_id)s, %(slot)s, %(upto_lsn)s)
