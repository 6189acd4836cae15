-- Late-binding views (docs: r_CREATE_VIEW, "WITH NO SCHEMA BINDING"): a view that names its
-- tables and resolves them when queried, so a table can be renamed or swapped under it.
-- PostgreSQL binds a view to its tables' OIDs: a view follows its table through a RENAME,
-- and the table cannot be dropped while the view reads it. The rewriter (rewrite.py) turns
-- the clause into the comment /* rs: with no schema binding */; the CREATE VIEW's end
-- records the view's definition here, with every name schema-qualified (Redshift requires
-- that of a late-binding view). After every CREATE TABLE / ALTER TABLE (a RENAME
-- included) each recorded view is replaced by the same definition (CREATE OR REPLACE
-- VIEW keeps its OID, owner and grants), so it reads whatever table now has the name.
-- A replacement that cannot resolve (the name is gone for the moment) leaves the view as
-- it was: Redshift would fail a query of it meanwhile, the stand-in reads the old table.
-- All of it is transactional, as the rest of the DDL: a rollback undoes it.
-- Not reproduced: dropping a table a late-binding view reads (PostgreSQL refuses it).
create table if not exists pg_catalog.rs_late_binding_views (
    view_oid oid primary key,
    definition text not null
);
grant select on pg_catalog.rs_late_binding_views to public;

create or replace function pg_catalog.rs_late_binding_views() returns event_trigger
language plpgsql
security definer  -- the registry is written whatever user runs the DDL
set search_path = pg_catalog  -- pg_get_viewdef then qualifies every name
as $$
declare
    cmd record;
    late record;
begin
    if pg_catalog.current_setting('rs.rebinding', true) = 'on' then
        return;
    end if;
    for cmd in
        select d.objid, d.command_tag
        from pg_catalog.pg_event_trigger_ddl_commands() d
        where d.object_type = 'view' and d.command_tag = 'CREATE VIEW'
    loop
        if pg_catalog.strpos(pg_catalog.lower(pg_catalog.current_query()),
                             '/* rs: with no schema binding */') > 0 then
            insert into pg_catalog.rs_late_binding_views (view_oid, definition)
            values (cmd.objid, pg_catalog.pg_get_viewdef(cmd.objid))
            on conflict (view_oid) do update set definition = excluded.definition;
        else
            delete from pg_catalog.rs_late_binding_views where view_oid = cmd.objid;
        end if;
    end loop;
    if not exists (
        select 1 from pg_catalog.pg_event_trigger_ddl_commands() d
        where d.command_tag in ('CREATE TABLE', 'ALTER TABLE', 'CREATE TABLE AS', 'SELECT INTO')
    ) then
        return;
    end if;
    perform pg_catalog.set_config('rs.rebinding', 'on', true);
    for late in
        select r.view_oid, r.definition
        from pg_catalog.rs_late_binding_views r
        join pg_catalog.pg_class c on c.oid = r.view_oid
    loop
        begin
            execute pg_catalog.format('create or replace view %s as %s',
                                      late.view_oid::regclass, late.definition);
        exception when others then
            null;  -- a name it reads does not resolve now: left as it was (see above)
        end;
    end loop;
    perform pg_catalog.set_config('rs.rebinding', 'off', true);
end
$$;

drop event trigger if exists rs_late_binding_views;
create event trigger rs_late_binding_views on ddl_command_end
    when tag in ('CREATE VIEW', 'CREATE TABLE', 'ALTER TABLE', 'CREATE TABLE AS', 'SELECT INTO')
    execute function pg_catalog.rs_late_binding_views();
