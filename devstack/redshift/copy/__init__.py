"""Redshift's COPY FROM 's3://...': the statement, the files, the conversion and the load stream.

The session turns the statement into ``COPY target (cols) FROM STDIN WITH (FORMAT csv)``
for PostgreSQL and feeds it the rows made here, so transactions and errors stay
native to PostgreSQL. Nothing here knows the wire protocol:

- statement: parse_copy() → CopySpec (options, credentials), is_s3_copy()
- files: S3 clients, key prefix or manifest, decompression, the records of a file
- convert, datetimes: each field as Redshift reads it into its column (FieldError)
- passthrough: runs of lines PostgreSQL reads as Redshift would, sent on as they are
- fastpath: rows that need no conversion, recognized and quoted in batches
- stream: generate_copy_data(), the CSV PostgreSQL gets, and the one reject path
"""

from devstack.redshift.copy.convert import TargetColumn, build_converter, field_encoder
from devstack.redshift.copy.errors import CopyLoadError, CopySyntaxError, FieldError
from devstack.redshift.copy.fastpath import row_pattern
from devstack.redshift.copy.files import S3Clients, list_source_files
from devstack.redshift.copy.statement import CopySpec, is_s3_copy, parse_copy, translate_copy
from devstack.redshift.copy.stream import LoadResult, RejectedRow, generate_copy_data

__all__ = [
    "CopyLoadError",
    "CopySpec",
    "CopySyntaxError",
    "FieldError",
    "LoadResult",
    "RejectedRow",
    "S3Clients",
    "TargetColumn",
    "build_converter",
    "field_encoder",
    "generate_copy_data",
    "is_s3_copy",
    "list_source_files",
    "parse_copy",
    "row_pattern",
    "translate_copy",
]
