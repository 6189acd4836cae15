{#- Shared macro: column definitions from tracking_sync.tables (Column or FileColumn). Not run on its own. -#}
{% macro column_definitions(columns) -%}
{%- for column in columns %}
    {{ column.name }} {{ column.redshift_type }}{{ "" if column.nullable else " not null" }}
    {{- "," if not loop.last }}
{%- endfor %}
{%- endmacro %}
