-- What a full refresh must know before it swaps its staging table in as action: the
-- target's owner and the publishing user (the new table belongs to whoever creates it),
-- and the target's grants (pg_class.relacl as text, entries separated by '|': the new
-- table has default privileges only -- docs: r_CREATE_VIEW, late-binding views -- so they
-- are granted again). pg_class is readable by every user on Redshift, and relacl holds
-- the grants to every user, group and PUBLIC whoever granted them; SVV_RELATION_PRIVILEGES
-- would show a regular user only part of them (docs: r_SVV_RELATION_PRIVILEGES), and
-- has_table_privilege answers for users, not groups. The admin views of
-- awslabs/amazon-redshift-utils read the same column the same way. Params: schema
-- (identifier); %(table)s bound by the driver.
select
    pg_get_userbyid(c.relowner) as owner,
    current_user as publisher,
    array_to_string(c.relacl, '|') as acl
from pg_class as c
join pg_namespace as n on n.oid = c.relnamespace
where n.nspname = '{{ schema }}'
  and c.relname = %(table)s
