-- The usesysid of a user, for stl_load_errors.userid. Params: user (its name).
select usesysid from pg_catalog.pg_user where usename = %(user)s
