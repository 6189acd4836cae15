-- The target's privileges granted to Redshift roles (CREATE ROLE; GRANT ... TO ROLE), which
-- pg_class.relacl does not hold: a full refresh that swaps a new table in grants them again.
-- SVV_RELATION_PRIVILEGES shows a regular user only the identities it has access to or owns
-- (docs: r_SVV_RELATION_PRIVILEGES): give the publishing user ACCESS SYSTEM TABLE for it
-- to see every role's grant. Params: schema (identifier); %(table)s bound by the driver.
select
    identity_name,
    privilege_type
from svv_relation_privileges
where namespace_name = '{{ schema }}'
  and relation_name = %(table)s
  and identity_type = 'role'
order by identity_name, privilege_type
