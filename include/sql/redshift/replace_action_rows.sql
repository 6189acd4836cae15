-- Publish the run's slice of action: delete the target's rows of the slice (the
-- interval [start, end), or every row for a full refresh) and insert the staged rows.
-- Run by tracking_sync.load.publish_action in ONE transaction with the staging table's
-- drop, so readers see the old slice or the new one, never neither, and a failure
-- leaves the target as it was. The staged rows come from one export of a table keyed
-- on id, so they hold no duplicates.
-- Params: schema, staging (identifiers), columns and the staging expressions that
-- give them (query from query + query_is_null), full_refresh; %(start)s and %(end)s
-- are bound by the driver.
delete from {{ schema }}.action
{%- if not full_refresh %}
where action_time >= %(start)s
  and action_time < %(end)s
{%- endif %};

insert into {{ schema }}.action ({{ columns | join(", ") }})
select
    {{ expressions | join(",\n    ") }}
from {{ schema }}.{{ staging }};

drop table {{ schema }}.{{ staging }};
