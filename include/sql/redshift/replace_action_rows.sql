-- Publish the run's slice of action: delete the target's rows of the slice (the
-- interval [start, end), or every row for a full refresh that cannot swap its staging
-- table in: see swap_in_action.sql) and insert the staged rows.
-- Run by tracking_sync.load.publish_action in ONE transaction, after `lock` and after
-- rows that moved out of the interval were carried into staging, with the staging
-- table's drop: readers see the old slice or the new one, never neither, and a failure
-- leaves the target as it was. An incremental publish also deletes the staged ids
-- wherever the target has them, so a row that moved INTO the interval is not kept twice
-- (a second DELETE, not an OR: the time range alone keeps the sort key's zone maps).
-- Params: schema, staging (identifiers), columns and the staging expressions that
-- give them (query from query + query_is_marker), full_refresh; %(start)s and %(end)s
-- are bound by the driver.
delete from {{ schema }}.action
{%- if not full_refresh %}
where action_time >= %(start)s
  and action_time < %(end)s;

delete from {{ schema }}.action
using {{ schema }}.{{ staging }} as staged
where action.id = staged.id
{%- endif %};

insert into {{ schema }}.action ({{ columns | join(", ") }})
select
    {{ expressions | join(",\n    ") }}
from {{ schema }}.{{ staging }};

drop table {{ schema }}.{{ staging }};
