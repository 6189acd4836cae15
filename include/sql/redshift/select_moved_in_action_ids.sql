-- Staged ids the target holds OUTSIDE the interval: rows a late correction moved into it.
-- The publish deletes their old copies; validate then checks them row by row.
-- Params: schema, staging (identifiers); %(start)s and %(end)s bound by the driver.
select s.id
from {{ schema }}.{{ staging }} as s
join {{ schema }}.action as t on t.id = s.id
where t.action_time < %(start)s
   or t.action_time >= %(end)s
order by s.id
