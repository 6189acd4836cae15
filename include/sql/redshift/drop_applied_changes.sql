-- End of the apply: the session's work tables and the run's table of changes go, in the
-- apply's transaction (apply_action_changes.sql). Params: schema, staging (identifiers),
-- reloads (step 1 of the apply ran), toastable (the sent_<name> tables).
{%- if reloads %}
drop table covering_reloads;
drop table superseded_changes;
drop table effective_changes;
{%- endif %}
drop table last_changes;
drop table replaced_ids;
drop table replaced_rows;
{%- for name in toastable %}
drop table sent_{{ name }};
{%- endfor %}
drop table {{ schema }}.{{ staging }};
