-- What the connected role holds of the grants in grants/source_role.sql, read without
-- touching data (plan_run's preflight: tracking_sync.privileges). One row: USAGE on public,
-- SELECT on action and on action_type, TEMP on the database, and whether it may use
-- replication slots (superuser, REPLICATION, or a member of rds_replication on RDS/Aurora),
-- and whether the capture's publication exists or the role could create it (it owns action).
-- Params: %(publication)s (its name, bound by the driver).
select
    current_user::text as role_name,
    current_database()::text as database_name,
    has_schema_privilege('public', 'usage') as public_usage,
    coalesce((
        -- by oid: to_regclass would need USAGE on public, checked on its own above
        select has_table_privilege(c.oid, 'select')
        from pg_class as c
        inner join pg_namespace as n on c.relnamespace = n.oid
        where n.nspname = 'public' and c.relname = 'action'
    ), false) as action_select,
    coalesce((
        select has_table_privilege(c.oid, 'select')
        from pg_class as c
        inner join pg_namespace as n on c.relnamespace = n.oid
        where n.nspname = 'public' and c.relname = 'action_type'
    ), false) as action_type_select,
    has_database_privilege(current_database(), 'temp') as database_temp,
    r.rolsuper or r.rolreplication or coalesce((
        select pg_has_role(current_user, g.oid, 'member')
        from pg_roles as g
        where g.rolname = 'rds_replication'
    ), false) as replication,
    exists (
        select from pg_publication as p where p.pubname = %(publication)s
    ) or coalesce((
        select pg_has_role(current_user, c.relowner, 'usage')
        from pg_class as c
        inner join pg_namespace as n on c.relnamespace = n.oid
        where n.nspname = 'public' and c.relname = 'action'
    ), false) as publication
from pg_roles as r
where r.rolname = current_user
