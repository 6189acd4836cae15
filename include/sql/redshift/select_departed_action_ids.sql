-- Ids the target holds inside the interval that the run's staged rows do not: rows the
-- source deleted, or moved to another interval by a late correction of action_time.
-- Params: schema, staging (identifiers); %(start)s and %(end)s bound by the driver.
select t.id
from {{ schema }}.action as t
left join {{ schema }}.{{ staging }} as s on s.id = t.id
where t.action_time >= %(start)s
  and t.action_time < %(end)s
  and s.id is null
order by t.id
