-- Select the rows of one table to export, columns in the order of tracking_sync.tables.
-- Rendered by tracking_sync.export; params: table (identifier), columns (select
-- expressions), time_column (identifier or none: the whole table); the window bounds are
-- bound by the driver as %(start)s and %(end)s (timestamp without time zone, UTC).
select
    {{ columns | join(',\n    ') }}
from {{ table }}
{%- if time_column %}
where {{ time_column }} >= %(start)s
  and {{ time_column }} < %(end)s
{%- endif %}
