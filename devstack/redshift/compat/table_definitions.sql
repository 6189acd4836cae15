-- Redshift's type and constraint semantics, applied to every new or altered table.
-- Installed with the rest of devstack/redshift/compat/*.sql by
-- devstack.redshift.install_compat_catalog, in one transaction, as superuser. Objects
-- live in pg_catalog so that they resolve whatever search_path a client sets, as
-- Redshift's own system objects do. Idempotent: run on every start.

-- Type and constraint semantics after every CREATE/ALTER TABLE
-- (docs: r_Character_types, t_Defining_constraints):
--   TEXT and VARCHAR without a length become VARCHAR(256), BPCHAR becomes CHAR(256);
--   VARCHAR(n)/CHAR(n) count BYTES: a CHECK on octet_length keeps an over-long
--   multibyte value out (the proxy reports it with Redshift's wording);
--   VARCHAR longer than 65535 is refused;
--   PRIMARY KEY and UNIQUE stay in the catalog (the provider's UPSERT reads them
--   from information_schema) but their indexes no longer enforce uniqueness.
-- The one step of it that only a superuser may take (pg_index is a system catalog): done by
-- this SECURITY DEFINER function, owned by the superuser that installs the catalog, so that
-- the pipeline's user, which is no superuser, gets the same semantics. It acts only on a
-- table the calling session's user owns (or is a member of the owner of).
create or replace function pg_catalog.rs_relax_unique_indexes(relation oid) returns void
language plpgsql
security definer
set search_path = pg_catalog
as $$
begin
    if not exists (
        select 1 from pg_catalog.pg_class c
        where c.oid = relation
          and pg_catalog.pg_has_role(session_user, c.relowner, 'USAGE')
    ) then
        return;
    end if;
    update pg_catalog.pg_index i set indisunique = false
    where i.indrelid = relation and i.indisunique
      and exists (select 1 from pg_catalog.pg_constraint c
                  where c.conindid = i.indexrelid and c.contype in ('p', 'u'));
end
$$;

create or replace function pg_catalog.rs_fix_table_definition() returns event_trigger
language plpgsql as $$
declare
    cmd record;
    col record;
    max_bytes integer;
    kind text;
    check_name text;
begin
    if pg_catalog.current_setting('rs.fixing_table', true) = 'on' then
        return;
    end if;
    perform pg_catalog.set_config('rs.fixing_table', 'on', true);
    for cmd in
        select distinct d.objid
        from pg_catalog.pg_event_trigger_ddl_commands() d
        where d.object_type = 'table'
          and d.command_tag in ('CREATE TABLE', 'ALTER TABLE', 'CREATE TABLE AS', 'SELECT INTO')
          and d.schema_name not in ('pg_catalog', 'information_schema', 'pg_toast')
    loop
        if not exists (select 1 from pg_catalog.pg_class where oid = cmd.objid) then
            continue;
        end if;
        for col in
            select a.attnum, a.attname, a.atttypid, a.atttypmod
            from pg_catalog.pg_attribute a
            where a.attrelid = cmd.objid and a.attnum > 0 and not a.attisdropped
            order by a.attnum
        loop
            max_bytes := null;
            kind := null;
            if col.atttypid = 'text'::regtype
               or (col.atttypid = 'varchar'::regtype and col.atttypmod < 0) then
                execute pg_catalog.format('alter table %s alter column %I type varchar(256)',
                                          cmd.objid::regclass, col.attname);
                max_bytes := 256;
                kind := 'varchar';
            elsif col.atttypid = 'bpchar'::regtype and col.atttypmod < 0 then
                execute pg_catalog.format('alter table %s alter column %I type char(256)',
                                          cmd.objid::regclass, col.attname);
                max_bytes := 256;
                kind := 'char';
            elsif col.atttypid = 'varchar'::regtype then
                max_bytes := col.atttypmod - 4;
                kind := 'varchar';
                if max_bytes > 65535 then
                    raise exception 'length for type varchar cannot exceed 65535'
                        using errcode = '22023';
                end if;
            elsif col.atttypid = 'bpchar'::regtype then
                max_bytes := col.atttypmod - 4;
                kind := 'char';
                if max_bytes > 4096 then
                    raise exception 'length for type bpchar cannot exceed 4096'
                        using errcode = '22023';
                end if;
            end if;
            check_name := pg_catalog.format('rs_%s_%s_%s', col.attnum, kind, max_bytes);
            -- drop checks left by an earlier type of this column
            for kind in
                select c.conname from pg_catalog.pg_constraint c
                where c.conrelid = cmd.objid and c.contype = 'c'
                  and c.conname like pg_catalog.format('rs\_%s\_%%', col.attnum)
                  and c.conname <> coalesce(check_name, '')
            loop
                execute pg_catalog.format('alter table %s drop constraint %I',
                                          cmd.objid::regclass, kind);
            end loop;
            if max_bytes is not null and not exists (
                select 1 from pg_catalog.pg_constraint c
                where c.conrelid = cmd.objid and c.conname = check_name
            ) then
                execute pg_catalog.format(
                    'alter table %s add constraint %I check (pg_catalog.octet_length(%I) <= %s)',
                    cmd.objid::regclass, check_name, col.attname, max_bytes);
            end if;
        end loop;
        perform pg_catalog.rs_relax_unique_indexes(cmd.objid);
    end loop;
    perform pg_catalog.set_config('rs.fixing_table', 'off', true);
end
$$;

drop event trigger if exists rs_fix_table_definition;
create event trigger rs_fix_table_definition on ddl_command_end
    when tag in ('CREATE TABLE', 'ALTER TABLE', 'CREATE TABLE AS', 'SELECT INTO')
    execute function pg_catalog.rs_fix_table_definition();
