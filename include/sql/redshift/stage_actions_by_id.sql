-- The target's rows with these ids, as `action` holds them, for validate to compare by id
-- (tracking_sync.validate.placed_rows.stage_target_rows): a CREATE TEMP TABLE AS of the first
-- chunk of ids, then an INSERT of each next, in the target's thread of the shared passes right
-- after its pass, so this scan of `action` (no index on id) runs while the source's pass still
-- does; the comparison then reads the ids from that table (select_actions_by_id.sql).
-- Params: schema (identifier), columns (action's), ids (checked integers, rendered as a list:
-- at most 10,000 a statement, ~110 kB, far below Redshift's 16 MB).
select {{ columns | join(", ") }}
from {{ schema }}.action
where id in ({{ ids | join(", ") }})
