-- A new query id for a COPY's stl_load_errors rows (what pg_last_copy_id() would
-- give on Redshift). No params.
select pg_catalog.nextval('pg_catalog.rs_query_id_seq')
