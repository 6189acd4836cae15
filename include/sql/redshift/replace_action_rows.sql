-- Publish the run's slice of action: delete the target's rows of the slice (the
-- interval [start, end), or every row for a full refresh that cannot swap its staging
-- table in: see swap_in_action.sql) and insert the staged rows.
-- Run by tracking_sync.load.publish_action in ONE transaction, after `lock` and after
-- rows that moved out of the interval were carried into staging, with the staging
-- table's drop: readers see the old slice or the new one, never neither, and a failure
-- leaves the target as it was. An incremental publish also deletes the staged ids
-- wherever the target has them, so a row that moved INTO the interval is not kept twice
-- (a second DELETE, not an OR: the time range alone keeps the sort key's zone maps), the
-- staged ids as a list (IN), not a join (USING): PostgreSQL, the stand-in's backend, then
-- hashes them whatever its estimates, where it merge-joined a sorted copy of all of `action`
-- on a target swapped in by a full refresh and not yet analyzed (0.56-0.71 s against
-- 0.20-0.22 s at 2 M rows, measured; more than linear beyond).
-- Params: schema, staging (identifiers), columns and the staging expressions that
-- give them (query from query + query_is_marker), full_refresh; %(start)s and %(end)s
-- are bound by the driver.
delete from {{ schema }}.action
{%- if not full_refresh %}
where action_time >= %(start)s
  and action_time < %(end)s;

delete from {{ schema }}.action
where action.id in (select staged.id from {{ schema }}.{{ staging }} as staged)
{%- endif %};

insert into {{ schema }}.action ({{ columns | join(", ") }})
select
    {{ expressions | join(",\n    ") }}
from {{ schema }}.{{ staging }};

drop table {{ schema }}.{{ staging }};
