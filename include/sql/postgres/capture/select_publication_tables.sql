-- The tables a publication publishes (one row each; one row with a null `published` when
-- it publishes none; no row when it does not exist) and which operations it publishes.
-- `published` is the pg_publication_tables row as JSON: schemaname, tablename, and from
-- PostgreSQL 15 on attnames (its column list) and rowfilter, absent before.
-- Params (bound by the driver): publication.
select
    p.pubinsert,
    p.pubupdate,
    p.pubdelete,
    p.pubtruncate,
    to_jsonb(t) as published
from pg_publication as p
left join pg_publication_tables as t on t.pubname = p.pubname
where p.pubname = %(publication)s
