-- The server settings change capture depends on (rds.logical_replication exists on RDS and
-- Aurora only), and how many replication slots exist.
-- No params.
select
    s.name,
    s.setting,
    s.unit
from pg_settings as s
where s.name in (
    'wal_level',
    'max_replication_slots',
    'max_slot_wal_keep_size',
    'rds.logical_replication'
)
union all
select 'replication slots in use', count(*)::text, null
from pg_replication_slots
