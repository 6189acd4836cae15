-- The Redshift user's privileges: the least the pipeline needs, as a user that is not a
-- superuser. Run once by an administrator (the admin user) after CREATE USER ... PASSWORD;
-- the tests and the local stack apply this same file (devstack.grants.create_redshift_user).
-- Params: user, database (identifiers).
-- Each grant says why; a task that misses one fails at once naming it (tracking_sync.oncall.refusals),
-- and plan_run checks them all before any data moves (tracking_sync.privileges).

-- create on the database: create_schema creates the target schema (the run's
-- target_schema param) if missing; Redshift checks this privilege even when the schema
-- exists. The user then owns the schema and every table in it: the sync-state tables,
-- action_type, action and each run's staging table. Owning action is what the full
-- refresh's swap needs (ALTER TABLE ... RENAME and DROP are the owner's), and what lets
-- it grant the old table's grants again to the new one. A schema that exists already and
-- belongs to another user: ALTER SCHEMA <schema> OWNER TO <user> and ALTER TABLE
-- <schema>.<table> OWNER TO <user> for each of its tables, instead.
grant create on database {{ database }} to {{ user }};

-- temp: the capture's publish computes the batch's effective changes in session temp
-- tables, and validation its shared pass.
grant temp on database {{ database }} to {{ user }};

-- Nothing else: stl_load_errors shows every user its own COPYs' rows (the load's report
-- reads only those), pg_class, pg_namespace and svv_relation_privileges are readable by
-- all, and COPY reads S3 as the IAM role in aws_default's role_arn
-- (docs/iam/redshift-copy-role-policy.json), not as this user.
