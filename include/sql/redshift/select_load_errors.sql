-- The latest COPY errors for files under one S3 prefix, to tell on-call which file,
-- line and column broke a load. Params: %(prefix)s (s3://bucket/prefix/%), bound by
-- the driver. stl_load_errors pads its text columns: trim them.
select
    trim(filename) as filename,
    line_number,
    trim(colname) as colname,
    err_code,
    trim(err_reason) as err_reason,
    trim(raw_field_value) as raw_field_value
from stl_load_errors
where filename like %(prefix)s
order by starttime desc, line_number
limit 10
