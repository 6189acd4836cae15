-- What a partitioned full refresh cuts the table's id range by, without reading the table:
-- the planner's equal-frequency histogram of the id column (pg_stats, kept by ANALYZE and
-- autovacuum) and the lowest and highest id (two probes of the primary key's index).
-- Params: table, id_column (identifiers from tracking_sync.tables).
select
    (
        select s.histogram_bounds::text::bigint[]
        from pg_stats as s
        join pg_class as c on c.relname = s.tablename
        join pg_namespace as n on n.oid = c.relnamespace and n.nspname = s.schemaname
        where c.oid = '{{ table }}'::regclass
          and s.attname = '{{ id_column }}'
    ) as histogram_bounds,
    (select min({{ id_column }}) from {{ table }}) as lowest_id,
    (select max({{ id_column }}) from {{ table }}) as highest_id
