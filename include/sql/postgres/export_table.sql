-- Select the rows of one table to export, columns in the order of tracking_sync.tables.
-- Rendered by tracking_sync.export; params: table (identifier), columns (select
-- expressions), time_column (identifier or none: the whole table), id_column (identifier),
-- id_from / id_to (whether the partition has that bound: tracking_sync.partitions); the
-- window bounds are bound by the driver as %(start)s and %(end)s (timestamp without time
-- zone, UTC), a partition's ids as %(id_from)s (inclusive) and %(id_to)s (exclusive).
select
    {{ columns | join(',\n    ') }}
from {{ table }}
where true
{%- if time_column %}
  and {{ time_column }} >= %(start)s
  and {{ time_column }} < %(end)s
{%- endif %}
{%- if id_from %}
  and {{ id_column }} >= %(id_from)s
{%- endif %}
{%- if id_to %}
  and {{ id_column }} < %(id_to)s
{%- endif %}
