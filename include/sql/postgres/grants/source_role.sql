-- The source role's privileges: the least the pipeline needs on the tracking database, for
-- interval and logical capture, validation and housekeeping. Run once by an administrator
-- (a superuser; RDS/Aurora: the master user) after CREATE ROLE ... LOGIN PASSWORD; the tests
-- and the local stack apply this same file (devstack.grants.create_source_role).
-- Idempotent. Params: role, database, publication (identifiers; publication: capture.slot's PUBLICATION).
-- Each grant says why; a task that misses one fails at once naming it (tracking_sync.oncall.refusals),
-- and plan_run checks them all before any data moves (tracking_sync.privileges).

-- connect: the tasks open their connections as this role.
grant connect on database {{ database }} to {{ role }};

-- usage on public: every name the pipeline reads is public.<table>.
grant usage on schema public to {{ role }};

-- select on action, action_type: the export, the moved-rows check, scoped and full
-- validation and its row drill-down read them; nothing writes to the source.
grant select on public.action, public.action_type to {{ role }};

-- temp: validation computes its shared pass into a session temp table on both engines.
grant temp on database {{ database }} to {{ role }};

-- logical capture only (TRACKING_SYNC_CAPTURE=logical, the default): the REPLICATION
-- attribute lets the role create, peek, advance and drop its slot (pg_create_logical_
-- replication_slot, pg_logical_slot_peek_binary_changes, pg_replication_slot_advance,
-- pg_drop_replication_slot all check it). RDS and Aurora: GRANT rds_replication TO <role>
-- as the master user instead (ALTER ROLE ... REPLICATION needs a superuser there).
alter role {{ role }} with replication;

-- logical capture only: the publication of action. CREATE PUBLICATION ... FOR TABLE needs
-- the table's owner, which the source role is not: its owner creates it once, here (the
-- bootstrap creates it only when its role owns action).
do $$
begin
    if not exists (
        select from pg_catalog.pg_publication where pubname = '{{ publication }}'
    ) then
        create publication {{ publication }} for table public.action;
    end if;
end
$$;
