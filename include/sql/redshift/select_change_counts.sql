-- The batch's changes per kind (I, U, D), for the run's log and XCom.
-- Params: schema, staging (identifiers).
select change_kind, count(*)
from {{ schema }}.{{ staging }}
group by change_kind
