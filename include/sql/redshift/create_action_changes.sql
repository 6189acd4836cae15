-- (Re)create the run's table of captured changes to action, empty: the rows of the change
-- files (tracking_sync.capture.batch.CHANGE_COLUMNS: the change's place, kind and
-- transaction, action's columns as the export writes them, and the unchanged-TOAST flag).
-- COPY fills it; apply_action_changes.sql applies it and drops it. A real table, not
-- #temp: the COPY and the apply run on different connections. Named after the run's
-- interval, so a rerun reuses it.
-- Params: schema, staging (identifiers); change_columns (name, redshift_type).
drop table if exists {{ schema }}.{{ staging }};
create table {{ schema }}.{{ staging }} (
{%- for column in change_columns %}
    {{ column.name }} {{ column.redshift_type }}{{ "," if not loop.last }}
{%- endfor %}
)
distkey (id)
sortkey (id, change_seq);
