-- The names of the backend's settings: a client's startup parameter is passed on
-- only when PostgreSQL knows it (the driver sends client_protocol_version,
-- driver_version, ... that PostgreSQL would refuse with FATAL). No params.
select name from pg_catalog.pg_settings
