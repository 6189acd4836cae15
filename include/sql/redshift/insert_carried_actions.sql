-- Add rows that moved out of the interval (read back from the source by id) to the
-- run's staging table, so the publish puts them at their new place. Params: schema,
-- staging (identifiers), columns (the staging table's), rows (how many); the values are
-- bound by the driver, one %s per column and row.
insert into {{ schema }}.{{ staging }} ({{ columns | join(", ") }})
values
{%- for _ in range(rows) %}
    ({{ (["%s"] * columns | length) | join(", ") }}){{ "," if not loop.last }}
{%- endfor %}
