-- Read rows back from the source by id, as the export writes them (the staging table's
-- columns): the rows a rerun carries to their new interval, and the rows validate
-- compares by id. Params: columns (select expressions of
-- tracking_sync.tables.ACTION.file_columns); %(ids)s bound by the driver (an array:
-- PostgreSQL only, this runs on the source).
select
    {{ columns | join(',\n    ') }}
from action
where id = any(%(ids)s)
order by id
