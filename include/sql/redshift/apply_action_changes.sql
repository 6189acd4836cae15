-- Apply a batch of captured changes to action, in the publish transaction (after
-- lock_action.sql; then write_sync_state.sql stores the batch's upto LSN as applied).
-- Params: schema, staging (identifiers); columns (action's, in order); toasted (name,
-- <name>_is_marker, <name>_unchanged of the text columns pgoutput may leave unsent);
-- marker (the \N text in SQL); reloads (capture_reloads holds a reload: without one,
-- step 1 has nothing to set aside and is skipped); reads_target (some id's first applied
-- change is not an insert: its row is read before it is replaced).
--
-- Each statement that reads `action` is a whole scan on a row store (Redshift: a scan
-- of the columns it names; neither has an index on id): the batch reads it at most
-- twice, once for the replaced rows a batch needs (step 4) and once to delete.
--
-- 1. A change the latest reload of its row already saw (its transaction is visible in that
--    reload's snapshot: committed before xmin, or before xmax and not in progress) is
--    not applied again: the reload's row holds it, or a later image.
{%- set effective = "effective_changes" if reloads else schema ~ "." ~ staging %}
{%- if reloads %}
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
{%- endif %}

-- 2. The last image of each id wins: an insert or update puts it, a delete removes it.
create temp table last_changes as
select ranked.*
from (
    select
        changes.*,
        row_number() over (partition by changes.id order by changes.change_seq desc) as change_rank
    from {{ effective }} as changes
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
    from {{ effective }}
    where change_kind <> 'D' and not coalesce({{ unchanged }}, false)
) as ranked
where ranked.sent_rank = 1;
{%- endfor %}

-- 4. The target's rows the last images replace, for the TOASTed texts step 3 did not find
--    and for the users validation compares (their users before the batch). Not for an
--    id whose first applied change is an insert: the target does not hold it (a stray
--    copy would still be deleted below), and that insert sent every column. A batch of
--    such ids only does not read `action` here.
create temp table replaced_ids as
select first_changes.id
from (
    select
        id,
        change_kind,
        row_number() over (partition by id order by change_seq) as change_order
    from {{ effective }}
) as first_changes
where first_changes.change_order = 1
    and first_changes.change_kind <> 'I';

create temp table replaced_rows as
select
    a.id,
    a.user_profile_id{% for name, flag, unchanged in toasted %},
    a.{{ name }}{% endfor %}
from {{ schema }}.action as a
{%- if reads_target %}
where a.id in (select replaced_ids.id from replaced_ids);
{%- else %}
where 1 = 0;
{%- endif %}

-- 5. Replace: delete every id the batch changed, insert the last images. The ids as a
--    list (IN), not a join: PostgreSQL (the stand-in's backend) then hashes them whatever
--    its estimate of `action`; joined, on a freshly swapped-in table without statistics,
--    it sorted all of `action` on disk to merge-join 10,000 ids (0.9 s against 0.33 s at
--    2 M rows, measured).
delete from {{ schema }}.action
where action.id in (select last_changes.id from last_changes);

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
