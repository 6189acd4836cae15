-- What the connected role may do for change capture: superuser, the REPLICATION attribute,
-- membership in rds_replication (RDS and Aurora; null where that role does not exist).
-- No params.
select
    r.rolname::text,
    r.rolsuper,
    r.rolreplication,
    (
        select pg_has_role(current_user, g.oid, 'member')
        from pg_roles as g
        where g.rolname = 'rds_replication'
    ) as rds_replication
from pg_roles as r
where r.rolname = current_user
