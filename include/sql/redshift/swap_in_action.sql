-- Publish a full refresh by swapping its staging table in as action: every row is written
-- once, by the COPY, instead of a second time by an INSERT ... SELECT. Run by
-- tracking_sync.load.publish_action in ONE transaction, after `lock` (a concurrent publish
-- waits) and after it checked that the staging table, without its marker flags, has the
-- target's DDL (the same template: tracking_sync.tables), and that the publishing user
-- owns the target. Every statement here may run inside a transaction block
-- (docs: r_ALTER_TABLE: only ALTER COLUMN ... TYPE and external tables may not; ALTER
-- TABLE APPEND may not either, docs: r_ALTER_TABLE_APPEND, and it commits at once), so a
-- failure anywhere rolls back to the old table, its grants and the staging table.
-- 1. RENAME the old table away.
-- 2. The rare rows whose text is literally \N (COPY read them as NULL) get it back, and
--    the marker flags go: the staging table now has the target's shape.
-- 3. RENAME the staging table in: late-binding views (WITH NO SCHEMA BINDING) resolve the
--    name when queried and read the new table; a view bound to the old table makes the
--    DROP fail, and the publish then copies instead.
-- 4. The grants the old table had (read from pg_class.relacl, and those to Redshift roles
--    from SVV_RELATION_PRIVILEGES) go to the new one.
-- Params: schema, staging, replaced (identifiers), flagged (pairs of text column and its
-- marker flag), marker (the NULL marker as SQL), grants (tracking_sync.load.Grant).
alter table {{ schema }}.action rename to {{ replaced }};
{% for column, flag in flagged %}
update {{ schema }}.{{ staging }} set {{ column }} = {{ marker }} where {{ flag }};

alter table {{ schema }}.{{ staging }} drop column {{ flag }};
{% endfor %}
alter table {{ schema }}.{{ staging }} rename to action;
{% for grant in grants %}
grant {{ grant.privileges | join(", ") }} on {{ schema }}.action to {{ grant.grantee }}
{{- " with grant option" if grant.grant_option }};
{% endfor %}
drop table {{ schema }}.{{ replaced }};
