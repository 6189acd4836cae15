-- Parity check: rows per table.
-- action_type is a small dictionary, always moved whole and counted whole.
--
-- key: table_name
-- value: row_count tolerance 0 -- a row is a row: one missing or extra row
--   (a lost part, a COPY appended twice: Redshift does not enforce keys) fails.
-- params: schema, window_start, window_end, scope
--   full: action rows before window_end; scoped: action rows in
--   [window_start, window_end), the rows this run loaded.
with action_rows as (
    select
        'action' as table_name,
        count(*) as row_count
    from {{ schema }}.action
    where action_time < {{ window_end }}
{%- if scope == "scoped" %}
      and action_time >= {{ window_start }}
{%- endif %}
),

action_type_rows as (
    select
        'action_type' as table_name,
        count(*) as row_count
    from {{ schema }}.action_type
)

select table_name, row_count from action_rows
union all
select table_name, row_count from action_type_rows
order by table_name
