"""Change capture: every change to action committed on the source, read from a logical
replication slot (pgoutput, through the SQL interface) and written as CSV change rows.

    pgoutput   the pgoutput protocol (version 1) decoded into typed records; no database
    slot       the slot and publication: names, creation, status, advance, drop
    rows       the change rows: their columns, and an image of action as CSV fields
    batch      one batch: the transactions committed in [applied_lsn, upto_lsn) -> CSV rows
    decoding   the batch's hot path, messages -> change rows: the Python reference, and its
               compiled twin _decode.c (built by build_decoder; used when built)
    preflight  whether the source is set up for capture (settings, role, publication, slot),
               each check in preflight_checks
    errors     the errors capture raises, each with its fix
    changes    the capture task's stage: a run's batch into parts in the scratch area
    pending    the changes still in the slot after the target's applied LSN (validation)

LSNs and xids are ints (tracking_sync.core.lsn).

A run plans upto_lsn (slot.current_lsn), reads the batch (batch.read_changes) into parts,
the target applies it and stores upto_lsn as its applied LSN in the same transaction, and
only then is the slot advanced (slot.advance_slot). A lost advance is harmless: the next
batch skips the transactions committed before the applied LSN.
"""
