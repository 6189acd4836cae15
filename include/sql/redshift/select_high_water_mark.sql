-- The latest action_time the target holds: validation compares everything up to it, so
-- a rerun of an old interval also sees its users' rows in the days loaded after it.
-- Params: schema (identifier).
select max(action_time) from {{ schema }}.action
