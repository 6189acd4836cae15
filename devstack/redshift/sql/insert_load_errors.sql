-- Record the rows a COPY rejected (docs: r_STL_LOAD_ERRORS), on the proxy's own
-- autocommit connection so that they outlive the load's rollback. The rows are
-- filled in by psycopg2.extras.execute_values, in the column order below.
insert into pg_catalog.stl_load_errors (
    userid, slice, tbl, starttime, session, query, filename, line_number, colname,
    type, col_length, position, raw_line, raw_field_value, err_code, err_reason,
    is_partial, start_offset
)
values %s
