-- Take the sync state's lock first in the transaction that claims the target's bootstrap: a
-- second run claiming at once waits, then reads the first one's claim (claim_bootstrap.sql).
-- Params: schema (identifier).
lock {{ schema }}.sync_state;
