-- The changes a capture batch reads: pgoutput's binary messages from the slot, without
-- consuming them (peek), for the transactions committed before upto_lsn.
-- Params (bound by the driver): slot, upto_lsn (pg_lsn text), publication.
select data
from pg_logical_slot_peek_binary_changes(
    %(slot)s, %(upto_lsn)s::pg_lsn, null,
    'proto_version', '1',
    'publication_names', %(publication)s
)
