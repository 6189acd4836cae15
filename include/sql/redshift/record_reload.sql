-- Record what a reload's export saw, in its publish transaction, before the target's rows
-- are replaced: the snapshot (xmin, xmax, the transactions in progress), the LSN read with
-- it, its place in publish order, and the rows it covers: an id range [id_from, id_to) (a
-- full refresh's partition) or the ids of the interval it replaces (the staged ids and the
-- target's ids of the interval; older reloads of those ids are forgotten: the rows are
-- this one's now). A change whose transaction that snapshot saw is then not applied again
-- over it (apply_action_changes.sql).
-- Params: schema, staging (identifiers), by_ids (an interval: its ids, else the range),
-- xip (how many in-progress xids); bound by the driver: %(reload_id)s, %(xmin)s, %(xmax)s,
-- %(lsn)s, %(id_from)s, %(id_to)s, %(start)s, %(end)s, and %(xip_0)s... for each xid.
{%- if by_ids %}
create temp table reloaded_ids as
select distinct reloaded.id
from (
    select id
    from {{ schema }}.{{ staging }}
    union all
    select id
    from {{ schema }}.action
    where action_time >= %(start)s
        and action_time < %(end)s
) as reloaded;

delete from {{ schema }}.capture_reload_ids
using reloaded_ids
where capture_reload_ids.id = reloaded_ids.id;
{%- endif %}

insert into {{ schema }}.capture_reloads (
    reload_id, snapshot_xmin, snapshot_xmax, reload_lsn, published_seq, id_from, id_to
)
select
    %(reload_id)s,
    %(xmin)s,
    %(xmax)s,
    %(lsn)s,
    coalesce(max(published_seq), 0) + 1,
{%- if by_ids %}
    null,
    null
{%- else %}
    %(id_from)s,
    %(id_to)s
{%- endif %}
from {{ schema }}.capture_reloads;
{%- for i in range(xip) %}

insert into {{ schema }}.capture_reload_xip (reload_id, xid)
values (%(reload_id)s, %(xip_{{ i }})s);
{%- endfor %}
{%- if by_ids %}

insert into {{ schema }}.capture_reload_ids (reload_id, id)
select %(reload_id)s, id
from reloaded_ids;

drop table reloaded_ids;
{%- endif %}
