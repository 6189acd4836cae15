-- The latest COPY errors for files under one S3 prefix, to tell on-call which row,
-- column and value broke a load. Params: %(prefix)s (s3://bucket/prefix/%), bound by
-- the driver. stl_load_errors pads its text columns: trim them. raw_line starts with
-- the row's id (the first column of every exported file).
select
    trim(filename) as filename,
    line_number,
    trim(colname) as colname,
    trim(col_length) as col_length,
    err_code,
    trim(err_reason) as err_reason,
    trim(raw_field_value) as raw_field_value,
    trim(raw_line) as raw_line
from stl_load_errors
where filename like %(prefix)s
order by starttime desc, line_number
limit 10
