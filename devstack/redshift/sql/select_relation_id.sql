-- The oid of a table named as a statement wrote it (e.g. tracking.action), or 0
-- when this connection cannot resolve it (a #temp table, another search_path).
-- For the table id of Redshift's error 1023. Params: name.
select coalesce(pg_catalog.to_regclass(%(name)s)::oid::bigint, 0)
