-- Row drill-down, one level: the rows of the region per bucket of ids
-- (id / bucket_size), with their count and the sum of their rows' hashes. Run on
-- both engines; the buckets that differ are narrowed at the next level.
-- params: schema, window_start, window_end, scope, users, days, scope_users,
--   ranges, bucket_size, dialect (see _action_row.sql)
{% import "_action_row.sql" as action -%}
select
    id / {{ bucket_size }} as bucket,
    count(*) as row_count,
    sum({{ action.row_hash(dialect) }}) as checksum
from {{ schema }}.action
where {{ action.region(schema, window_end, users, days, scope, window_start, scope_users) }}
{{- action.id_ranges(ranges) }}
group by id / {{ bucket_size }}
order by bucket
