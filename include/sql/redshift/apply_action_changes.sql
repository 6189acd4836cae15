-- Apply a batch of captured changes to action, in the publish transaction (after
-- lock_action.sql; then write_sync_state.sql stores the batch's upto LSN as applied).
-- Params: schema, staging (identifiers); columns (action's, in order); toasted (name,
-- <name>_is_marker, <name>_unchanged of the text columns pgoutput may leave unsent);
-- marker (the \N text in SQL).
--
-- 1. A change the latest reload of its row already saw (its transaction is visible in that
--    reload's snapshot: committed before xmin, or before xmax and not in progress) is
--    not applied again: the reload's row holds it, or a later image.
create temp table covering_reloads as
select
    c.change_seq,
    c.change_xid,
    r.reload_id,
    r.snapshot_xmin,
    r.snapshot_xmax,
    r.published_seq
from {{ schema }}.{{ staging }} as c
inner join {{ schema }}.capture_reloads as r
    on r.id_from is not null
    and c.id >= r.id_from
    and c.id < r.id_to
union all
select
    c.change_seq,
    c.change_xid,
    r.reload_id,
    r.snapshot_xmin,
    r.snapshot_xmax,
    r.published_seq
from {{ schema }}.{{ staging }} as c
inner join {{ schema }}.capture_reload_ids as i on c.id = i.id
inner join {{ schema }}.capture_reloads as r on i.reload_id = r.reload_id;

create temp table superseded_changes as
select latest.change_seq
from (
    select
        covering_reloads.*,
        row_number() over (
            partition by change_seq order by published_seq desc
        ) as reload_rank
    from covering_reloads
) as latest
left join {{ schema }}.capture_reload_xip as x
    on latest.reload_id = x.reload_id
    and latest.change_xid = x.xid
where latest.reload_rank = 1
    and (
        latest.change_xid < latest.snapshot_xmin
        or (latest.change_xid < latest.snapshot_xmax and x.xid is null)
    );

create temp table effective_changes as
select c.*
from {{ schema }}.{{ staging }} as c
left join superseded_changes as s on c.change_seq = s.change_seq
where s.change_seq is null;

-- 2. The last image of each id wins: an insert or update puts it, a delete removes it.
create temp table last_changes as
select ranked.*
from (
    select
        effective_changes.*,
        row_number() over (partition by id order by change_seq desc) as change_rank
    from effective_changes
) as ranked
where ranked.change_rank = 1;

-- 3. An update that left a TOASTed text unchanged did not send it: take the latest one
--    the batch did send for the id, else the one the target holds.
{%- for name, flag, unchanged in toasted %}
create temp table sent_{{ name }} as
select ranked.id, ranked.{{ name }}, ranked.{{ flag }}
from (
    select
        id,
        {{ name }},
        {{ flag }},
        row_number() over (partition by id order by change_seq desc) as sent_rank
    from effective_changes
    where change_kind <> 'D' and not coalesce({{ unchanged }}, false)
) as ranked
where ranked.sent_rank = 1;
{%- endfor %}

create temp table replaced_rows as
select a.*
from {{ schema }}.action as a
inner join last_changes as l on a.id = l.id;

-- 4. Replace: delete every id the batch changed, insert the last images.
delete from {{ schema }}.action
using last_changes
where action.id = last_changes.id;

insert into {{ schema }}.action ({{ columns | join(", ") }})
select
{%- for column in columns %}
{%- set matched = toasted | selectattr(0, "equalto", column) | list %}
{%- if matched %}
    case
        when not coalesce(l.{{ matched[0][2] }}, false)
            then case when l.{{ matched[0][1] }} then {{ marker }} else l.{{ column }} end
        when s_{{ column }}.id is not null
            then case when s_{{ column }}.{{ matched[0][1] }} then {{ marker }} else s_{{ column }}.{{ column }} end
        else r.{{ column }}
    end as {{ column }}{{ "," if not loop.last }}
{%- else %}
    l.{{ column }}{{ "," if not loop.last }}
{%- endif %}
{%- endfor %}
from last_changes as l
{%- for name, flag, unchanged in toasted %}
left join sent_{{ name }} as s_{{ name }} on l.id = s_{{ name }}.id
{%- endfor %}
left join replaced_rows as r on l.id = r.id
where l.change_kind <> 'D';
