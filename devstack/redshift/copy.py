"""Redshift's COPY FROM 's3://...': the statement, the files, and the row conversion.

The proxy turns the statement into ``COPY target (cols) FROM STDIN WITH (FORMAT csv)``
for PostgreSQL and feeds it the rows read here, so transactions and errors stay
native to PostgreSQL. This module knows nothing about the wire protocol: it parses
the statement (``parse_copy``), lists and streams the S3 objects, and converts each
field as Redshift would (docs: r_COPY, copy-parameters-data-format,
copy-parameters-data-conversion, copy-parameters-file-compression,
copy-parameters-authorization, loading-data-files-using-manifest).
"""

from __future__ import annotations

import bz2
import codecs
import csv
import datetime as dt
import gzip
import io
import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from devstack.redshift.rewrite import QIDENT, STRING, WORD, significant, tokenize

csv.field_size_limit(2**31 - 1)


class CopySyntaxError(Exception):
    """The COPY statement itself is wrong: reported before any data is read."""

    sqlstate = "42601"


class CopyLoadError(Exception):
    """The load failed (files, credentials, too many bad rows): the COPY is rolled back."""

    def __init__(self, message: str, detail: str = "", sqlstate: str = "XX000"):
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.sqlstate = sqlstate


# --------------------------------------------------------------------------- statement


@dataclass
class CopySpec:
    schema: str | None
    table: str
    target_sql: str  # the target as PostgreSQL must see it, e.g. s."t" or "#t"
    columns: list[str] | None
    source: str  # s3://bucket/prefix-or-manifest
    manifest: bool = False
    csv: bool = False
    delimiter: str | None = None
    quote: str = '"'
    compression: str | None = None  # gzip, bzip2, zstd
    ignoreheader: int = 0
    null_as: str = "\\N"
    emptyasnull: bool = False
    blanksasnull: bool = False
    dateformat: str | None = None
    timeformat: str | None = None
    truncatecolumns: bool = False
    acceptinvchars: str | None = None
    maxerror: int = 0
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    iam_role: str | None = None
    ignoreblanklines: bool = False
    trimblanks: bool = False
    fillrecord: bool = False
    roundec: bool = False
    escape: bool = False
    removequotes: bool = False
    explicit_ids: bool = False

    @property
    def pg_null(self) -> str:
        """The NULL marker of the CSV PostgreSQL gets: NULL AS itself when it has a
        backslash (the default '\\N'), else '' (an unquoted empty field).

        With NULL AS as PostgreSQL's marker, a valid row is passed on as it came
        (copy.row_pattern). A backslash never appears in a converted number, date
        or boolean, and strings are quoted, so no value is mistaken for NULL.
        """
        null_as = self.null_as
        if "\\" in null_as and not any(c in null_as for c in ',"\r\n\0 \t'):
            return null_as
        return ""

    def postgres_copy(self) -> str:
        cols = f" ({', '.join(_quote_ident(c) for c in self.columns)})" if self.columns else ""
        null = ""
        if self.pg_null:
            null = ", NULL E'" + self.pg_null.replace("\\", "\\\\").replace("'", "''") + "'"
        return f"COPY {self.target_sql}{cols} FROM STDIN WITH (FORMAT csv{null})"


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _ident_value(text: str) -> str:
    if text.startswith('"'):
        return text[1:-1].replace('""', '"')
    return text if text.startswith("#") else text.lower()


def _string_value(text: str) -> str:
    if text[:1] in "eE" and text[1:2] == "'":
        body = text[2:-1].replace("''", "'")
        return codecs.decode(body.encode("latin-1", "backslashreplace"), "unicode_escape")
    if text.startswith("$"):
        tag_end = text.index("$", 1) + 1
        return text[tag_end : len(text) - tag_end]
    return text[1:-1].replace("''", "'")


def is_s3_copy(sql: str) -> bool:
    """Cheap test: a COPY whose source is an s3:// string."""
    head = sql.lstrip()[:4].upper()
    if head != "COPY" and not sql.lstrip().startswith(("/*", "--")):
        return False
    sig = significant(tokenize(sql))
    if not sig or not sig[0].is_word("COPY"):
        return False
    for i, tok in enumerate(sig):
        if tok.is_word("FROM") and i + 1 < len(sig) and sig[i + 1].kind == STRING:
            return _string_value(sig[i + 1].text).lower().startswith("s3://")
    return False


_FLAG_OPTIONS = {
    "MANIFEST",
    "GZIP",
    "BZIP2",
    "ZSTD",
    "EMPTYASNULL",
    "BLANKSASNULL",
    "TRUNCATECOLUMNS",
    "IGNOREBLANKLINES",
    "TRIMBLANKS",
    "FILLRECORD",
    "ROUNDEC",
    "ESCAPE",
    "REMOVEQUOTES",
    "EXPLICIT_IDS",
    "ACCEPTANYDATE",
    "NOLOAD",
    "CSV",
}
_UNSUPPORTED = {
    "JSON": "JSON",
    "AVRO": "AVRO",
    "PARQUET": "PARQUET",
    "ORC": "ORC",
    "FIXEDWIDTH": "FIXEDWIDTH",
    "SHAPEFILE": "SHAPEFILE",
    "LZOP": "LZOP",
    "SSH": "SSH",
    "READRATIO": "DynamoDB",
    "ENCRYPTED": "ENCRYPTED",
    "MASTER_SYMMETRIC_KEY": "ENCRYPTED",
}


def parse_copy(sql: str) -> CopySpec:
    """Parse a Redshift COPY ... FROM 's3://...' statement (docs: r_COPY)."""
    sig = [t for t in significant(tokenize(sql)) if not t.is_op(";")]
    i = 1
    # target: [schema.]table, possibly a #temp table
    names: list[str] = []
    while i < len(sig) and sig[i].kind in (WORD, QIDENT):
        names.append(sig[i].text)
        if i + 1 < len(sig) and sig[i + 1].is_op("."):
            i += 2
            continue
        i += 1
        break
    if not names:
        raise CopySyntaxError("syntax error in COPY: table name expected")
    schema = _ident_value(names[-2]) if len(names) > 1 else None
    table = _ident_value(names[-1])
    target_sql = ".".join(_quote_ident(_ident_value(n)) for n in names)
    columns: list[str] | None = None
    if i < len(sig) and sig[i].is_op("("):
        columns = []
        i += 1
        while i < len(sig) and not sig[i].is_op(")"):
            if sig[i].kind in (WORD, QIDENT):
                columns.append(_ident_value(sig[i].text))
            i += 1
        i += 1
    if i >= len(sig) or not sig[i].is_word("FROM") or i + 1 >= len(sig) or sig[i + 1].kind != STRING:
        raise CopySyntaxError("syntax error in COPY: FROM 's3://...' expected")
    spec = CopySpec(
        schema=schema,
        table=table,
        target_sql=target_sql,
        columns=columns,
        source=_string_value(sig[i + 1].text),
    )
    i += 2
    credentials_forms: list[str] = []

    def value(j: int) -> tuple[str, int]:
        if j < len(sig) and sig[j].is_word("AS"):
            j += 1
        if j >= len(sig):
            raise CopySyntaxError(f"syntax error at end of COPY: a value is missing after {sig[j - 1].text}")
        tok = sig[j]
        if tok.kind == STRING:
            return _string_value(tok.text), j + 1
        return tok.text, j + 1

    while i < len(sig):
        tok = sig[i]
        word = tok.text.upper() if tok.kind == WORD else tok.text
        if word == "WITH":
            i += 1
            continue
        if word in _UNSUPPORTED:
            raise CopySyntaxError(
                f"COPY option {word} is not supported by the local Redshift stand-in "
                f"({_UNSUPPORTED[word]}); it loads CSV and delimited text only"
            )
        if word == "FORMAT":
            fmt, i = value(i + 1)
            if fmt.upper() == "CSV":
                spec.csv = True
                if i < len(sig) and sig[i].is_word("QUOTE"):
                    spec.quote, i = value(i + 1)
                continue
            if fmt.upper() in _UNSUPPORTED:
                raise CopySyntaxError(
                    f"COPY FORMAT {fmt.upper()} is not supported by the local Redshift stand-in"
                )
            raise CopySyntaxError(f'syntax error in COPY at or near "{fmt}"')
        if word == "CSV":
            spec.csv = True
            i += 1
            if i < len(sig) and sig[i].is_word("QUOTE"):
                spec.quote, i = value(i + 1)
            continue
        if word in _FLAG_OPTIONS:
            i += 1
            if word == "MANIFEST":
                spec.manifest = True
            elif word in ("GZIP", "BZIP2", "ZSTD"):
                if spec.compression:
                    raise CopySyntaxError("conflicting or redundant options: more than one compression")
                spec.compression = word.lower()
            elif word == "ACCEPTANYDATE" or word == "NOLOAD":
                pass
            else:
                setattr(spec, word.lower(), True)
            continue
        if word == "DELIMITER":
            spec.delimiter, i = value(i + 1)
        elif word == "QUOTE":
            spec.quote, i = value(i + 1)
        elif word == "IGNOREHEADER":
            text, i = value(i + 1)
            spec.ignoreheader = int(text)
        elif word == "NULL":
            spec.null_as, i = value(i + 1)
            if spec.null_as in ("\\0", "\\000"):
                # docs: copy-parameters-data-conversion — NULL AS '\0' or '\000' is the
                # NUL character (a field holding only NUL loads as NULL), not backslash-zero
                spec.null_as = "\0"
        elif word == "DATEFORMAT":
            spec.dateformat, i = value(i + 1)
        elif word == "TIMEFORMAT":
            spec.timeformat, i = value(i + 1)
        elif word == "MAXERROR":
            text, i = value(i + 1)
            spec.maxerror = min(int(text), 100000)
        elif word == "REGION":
            spec.region, i = value(i + 1)
        elif word == "ACCEPTINVCHARS":
            spec.acceptinvchars = "?"
            j = i + 1
            if j < len(sig) and (sig[j].kind == STRING or sig[j].is_word("AS")):
                spec.acceptinvchars, j = value(j)
            i = j
        elif word == "CREDENTIALS":
            text, i = value(i + 1)
            credentials_forms.append("CREDENTIALS")
            _parse_credentials_string(spec, text)
        elif word == "IAM_ROLE":
            text, i = value(i + 1)
            credentials_forms.append("IAM_ROLE")
            spec.iam_role = text
        elif word in ("ACCESS_KEY_ID", "SECRET_ACCESS_KEY", "SESSION_TOKEN"):
            text, i = value(i + 1)
            if "ACCESS_KEYS" not in credentials_forms:
                credentials_forms.append("ACCESS_KEYS")
            setattr(spec, word.lower(), text)
        elif word in ("COMPUPDATE", "STATUPDATE"):
            i += 1
            if i < len(sig) and sig[i].is_word("ON", "OFF", "TRUE", "FALSE", "PRESET"):
                i += 1
        elif word == "ENCODING":
            enc, i = value(i + 1)
            if enc.upper().replace("-", "") not in ("UTF8",):
                raise CopySyntaxError(f"COPY ENCODING {enc} is not supported by the local stand-in")
        else:
            raise CopySyntaxError(f'syntax error in COPY at or near "{tok.text}"')

    # docs: copy-parameters-authorization — exactly one way to authorize
    if len(credentials_forms) > 1:
        raise CopySyntaxError(
            "conflicting or redundant options: use only one of CREDENTIALS, IAM_ROLE or "
            "ACCESS_KEY_ID/SECRET_ACCESS_KEY"
        )
    if not credentials_forms:
        raise CopySyntaxError(
            "COPY from S3 needs authorization: IAM_ROLE, ACCESS_KEY_ID and SECRET_ACCESS_KEY, or CREDENTIALS"
        )
    if spec.iam_role is None and (not spec.access_key_id or not spec.secret_access_key):
        raise CopySyntaxError("both ACCESS_KEY_ID and SECRET_ACCESS_KEY are required")
    if spec.csv and (spec.escape or spec.removequotes):
        raise CopySyntaxError("CSV is not compatible with ESCAPE or REMOVEQUOTES")
    if spec.delimiter is None:
        spec.delimiter = "," if spec.csv else "|"
    if len(spec.delimiter) != 1:
        raise CopySyntaxError("DELIMITER must be a single character")
    if not spec.source.lower().startswith("s3://"):
        raise CopySyntaxError("COPY source must be s3://bucket/key")
    return spec


def _parse_credentials_string(spec: CopySpec, text: str) -> None:
    parts = dict(
        (k.strip().lower(), v.strip()) for k, _, v in (p.partition("=") for p in text.split(";") if p.strip())
    )
    if "aws_iam_role" in parts:
        if "aws_access_key_id" in parts:
            raise CopySyntaxError("CREDENTIALS: aws_iam_role and aws_access_key_id are exclusive")
        spec.iam_role = parts["aws_iam_role"]
        return
    if "aws_access_key_id" in parts and "aws_secret_access_key" in parts:
        spec.access_key_id = parts["aws_access_key_id"]
        spec.secret_access_key = parts["aws_secret_access_key"]
        spec.session_token = parts.get("token")
        return
    raise CopySyntaxError(
        "invalid credentials: 'aws_iam_role=arn' or "
        "'aws_access_key_id=...;aws_secret_access_key=...[;token=...]' expected"
    )


# --------------------------------------------------------------------------- S3


def _split_s3(url: str) -> tuple[str, str]:
    rest = url[5:]
    bucket, _, key = rest.partition("/")
    return bucket, key


def list_source_files(client, spec: CopySpec) -> list[str]:
    """The s3:// URLs to load: every key under the prefix, or the manifest's entries."""
    bucket, key = _split_s3(spec.source)
    if spec.manifest:
        try:
            body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except client.exceptions.NoSuchKey:
            raise CopyLoadError(f"Manifest file {spec.source} does not exist")
        except Exception as exc:
            raise CopyLoadError(f"Problem reading manifest file {spec.source}: {exc}")
        try:
            entries = json.loads(body)["entries"]
        except (ValueError, KeyError, TypeError) as exc:
            raise CopyLoadError(f"Manifest file {spec.source} is not valid: {exc}")
        urls = []
        for entry in entries:
            url = entry["url"]
            mandatory = bool(entry.get("mandatory", False))
            e_bucket, e_key = _split_s3(url)
            try:
                client.head_object(Bucket=e_bucket, Key=e_key)
            except Exception:
                if mandatory:
                    raise CopyLoadError(f"Manifest file is missing a mandatory entry: {url} does not exist")
                continue
            urls.append(url)
        if not urls:
            raise CopyLoadError(f"No files found to load from manifest {spec.source}")
        return urls
    urls = []
    paginator = client.get_paginator("list_objects_v2")
    try:
        for page in paginator.paginate(Bucket=bucket, Prefix=key):
            for obj in page.get("Contents", []):
                if obj["Key"].endswith("/") and obj["Size"] == 0:
                    continue
                urls.append(f"s3://{bucket}/{obj['Key']}")
    except client.exceptions.NoSuchBucket:
        raise CopyLoadError(f"The specified S3 bucket '{bucket}' does not exist")
    if not urls:
        raise CopyLoadError(f"The specified S3 prefix '{key}' does not exist")
    return sorted(urls)


class _ReadableStream(io.RawIOBase):
    """An S3 StreamingBody as a raw binary stream (for TextIOWrapper and decompressors)."""

    def __init__(self, body):
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def open_source_file(client, url: str, compression: str | None) -> io.BufferedIOBase:
    bucket, key = _split_s3(url)
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    raw = io.BufferedReader(_ReadableStream(body), buffer_size=1 << 20)
    if compression == "gzip":
        return gzip.GzipFile(fileobj=raw)
    if compression == "bzip2":
        return bz2.BZ2File(raw)
    if compression == "zstd":
        import zstandard

        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw), buffer_size=1 << 20)
    return raw


# --------------------------------------------------------------------------- conversion


@dataclass
class TargetColumn:
    name: str
    typname: str  # pg_type.typname of the column type
    typmod: int
    not_null: bool
    type_display: str  # format_type(), for stl_load_errors


@dataclass
class RejectedRow:
    filename: str
    line_number: int
    colname: str
    type: str
    col_length: str
    position: int
    raw_line: str
    raw_field_value: str
    err_code: int
    err_reason: str


class FieldError(Exception):
    def __init__(self, code: int, reason: str):
        self.code = code
        self.reason = reason


_INT_RE = re.compile(r"[+-]?\d+\Z")
_DEC_RE = re.compile(r"([+-]?)(\d*)(?:\.(\d*))?\Z")
_INT_RANGES = {"int2": 2**15, "int4": 2**31, "int8": 2**63}
_INT_FAST_DIGITS = {"int2": 4, "int4": 9, "int8": 18}
_TRUE = {"t", "true", "y", "yes", "1"}
_FALSE = {"f", "false", "n", "no", "0"}
_ISO_DATE_RE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}\Z")
_ISO_TS_RE = re.compile(
    r"\d{4}-\d{1,2}-\d{1,2}(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?"
    r"(?:\s*(?:[+-]\d{2}(?::?\d{2})?|Z|UTC))?\Z"
)
_SURROGATES = re.compile("[\udc80-\udcff]+")

# Redshift datetime format elements → strptime (docs: r_DATEFORMAT_and_TIMEFORMAT_strings)
_FORMAT_ELEMENTS = [
    ("YYYY", "%Y"),
    ("YY", "%y"),
    ("MONTH", "%B"),
    ("MON", "%b"),
    ("MM", "%m"),
    ("DD", "%d"),
    ("HH24", "%H"),
    ("HH12", "%I"),
    ("HH", "%H"),
    ("MI", "%M"),
    ("SS", "%S"),
    ("AM", "%p"),
    ("PM", "%p"),
    ("OF", "%z"),
]


def _strptime_format(fmt: str) -> tuple[str, bool]:
    """(strptime format, has fractional seconds) for a Redshift DATEFORMAT/TIMEFORMAT."""
    out, i, frac = [], 0, False
    upper = fmt.upper()
    while i < len(fmt):
        if upper.startswith("SS.SSSSSS", i) or upper.startswith("SS.SSS", i) or upper.startswith("SS.SS", i):
            out.append("%S.%f")
            i += 2
            while i < len(fmt) and upper[i] in ".S":
                i += 1
            frac = True
            continue
        for element, directive in _FORMAT_ELEMENTS:
            if upper.startswith(element, i):
                out.append(directive)
                i += len(element)
                break
        else:
            out.append("%%" if fmt[i] == "%" else fmt[i])
            i += 1
    return "".join(out), frac


_AUTO_DATE_FORMATS = [
    "%Y-%m-%d",
    "%m/%d/%Y",
    "%m-%d-%Y",
    "%Y/%m/%d",
    "%Y%m%d",
    "%d-%b-%Y",
    "%b %d %Y",
    "%b %d, %Y",
    "%d %b %Y",
    "%B %d %Y",
    "%B %d, %Y",
    "%Y.%m.%d",
    "%m.%d.%Y",
    "%d.%m.%Y",
    "%m/%d/%y",
]


def _parse_auto(value: str, want: str) -> str:
    """DATEFORMAT/TIMEFORMAT 'auto' (docs: automatic-recognition)."""
    text = value.strip()
    if want == "date":
        for fmt in _AUTO_DATE_FORMATS:
            try:
                return dt.datetime.strptime(text, fmt).date().isoformat()
            except ValueError:
                continue
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat(sep=" ")
    except ValueError:
        pass
    from dateutil import parser as date_parser

    try:
        parsed = date_parser.parse(text)
    except (ValueError, OverflowError) as exc:
        raise FieldError(1205 if want == "date" else 1206, f"Invalid {want} format: {exc}")
    return parsed.date().isoformat() if want == "date" else parsed.isoformat(sep=" ")


def build_converter(col: TargetColumn, spec: CopySpec) -> Callable[[str], str | None]:
    """A function turning one raw (non-null) field into the text PostgreSQL gets, or None for NULL.

    Raises FieldError with Redshift's error code and reason for a field Redshift rejects.
    """
    typ = col.typname
    emptyasnull, blanksasnull = spec.emptyasnull, spec.blanksasnull

    if typ in ("varchar", "bpchar", "text", "name"):
        limit = col.typmod - 4 if col.typmod >= 4 else (256 if typ != "name" else 63)
        truncate, trimblanks = spec.truncatecolumns, spec.trimblanks
        char_type = "character" if typ == "bpchar" else "character varying"

        def convert_string(v: str) -> str | None:
            if v == "":
                return None if emptyasnull else ""
            if blanksasnull and v.isspace():
                return None
            if trimblanks:
                v = v.rstrip(" ")
            if len(v) * 4 <= limit:
                return v
            encoded = v.encode("utf-8")
            if len(encoded) <= limit:
                return v
            if truncate:
                return encoded[:limit].decode("utf-8", "ignore")
            raise FieldError(
                1204, f"String length exceeds DDL length ({char_type}({limit}): {len(encoded)} bytes)"
            )

        return convert_string

    def empty_is_null(convert: Callable[[str], str]) -> Callable[[str], str | None]:
        # the encoder (field_encoder) turns empty and blank fields of these types into NULL
        convert.empty_is_null = True
        return convert

    if typ in _INT_RANGES:
        bound = _INT_RANGES[typ]
        label = {"int2": "Short Integer", "int4": "Integer", "int8": "Long"}[typ]

        def convert_int(v: str) -> str:
            if not _INT_RE.match(v):
                raise FieldError(1207, f"Invalid digit, Value '{v[:1]}', Pos 0, Type: {label}")
            if len(v) > 4 and not -bound <= int(v) < bound:
                raise FieldError(1216, f"Overflow, Value '{v}', Type: {label}")
            return v

        return empty_is_null(convert_int)

    if typ == "numeric":
        scale = ((col.typmod - 4) & 0xFFFF) if col.typmod >= 4 else None
        precision = ((col.typmod - 4) >> 16) if col.typmod >= 4 else None
        roundec = spec.roundec

        def convert_numeric(v: str) -> str:
            m = _DEC_RE.match(v.strip())
            if not m or not (m.group(2) or m.group(3)):
                raise FieldError(1207, f"Invalid digit, Value '{v[:1]}', Pos 0, Type: Decimal")
            sign, whole, frac = m.group(1), m.group(2) or "0", m.group(3) or ""
            if scale is not None and len(frac) > scale:
                if roundec:
                    quant = Decimal(1).scaleb(-scale)
                    return str(Decimal(v).quantize(quant))
                # docs: copy-parameters-data-conversion — excess digits are truncated, not rounded
                frac = frac[:scale]
            if precision is not None and len(whole.lstrip("0")) > precision - (scale or 0):
                raise FieldError(1216, f"Overflow (Decimal({precision},{scale})) value '{v}'")
            return f"{sign}{whole}.{frac}" if frac else f"{sign}{whole}"

        return empty_is_null(convert_numeric)

    if typ in ("float4", "float8"):

        def convert_float(v: str) -> str:
            try:
                float(v)
            except ValueError:
                raise FieldError(1207, f"Invalid digit, Value '{v[:1]}', Pos 0, Type: Double")
            return v

        return empty_is_null(convert_float)

    if typ == "bool":
        # docs: r_Boolean_type — no 'on'/'off', no prefixes like 'tr'
        def convert_bool(v: str) -> str:
            key = v.strip().lower()
            if key in _TRUE:
                return "t"
            if key in _FALSE:
                return "f"
            raise FieldError(1210, f"Invalid boolean value '{v}'")

        return empty_is_null(convert_bool)

    if typ == "date":
        fmt = spec.dateformat
        if fmt is None or fmt.upper() == "YYYY-MM-DD":

            def convert_date(v: str) -> str:
                v = v.strip()
                try:
                    if _ISO_DATE_RE.match(v):
                        y, m, d = v.split("-")
                        return dt.date(int(y), int(m), int(d)).isoformat()
                except ValueError:
                    pass
                raise FieldError(1205, f"Invalid Date Format - length must be 10 or more, value '{v}'")

        elif fmt.lower() == "auto":

            def convert_date(v: str) -> str:
                return _parse_auto(v, "date")

        else:
            pattern, _ = _strptime_format(fmt)

            def convert_date(v: str) -> str:
                try:
                    return dt.datetime.strptime(v.strip(), pattern).date().isoformat()
                except ValueError:
                    raise FieldError(1205, f"Invalid date format '{fmt}', value '{v}'")

        return empty_is_null(convert_date)

    if typ in ("timestamp", "timestamptz"):
        fmt = spec.timeformat
        with_tz = typ == "timestamptz"
        if fmt is None or fmt.upper() == "YYYY-MM-DD HH:MI:SS":

            def convert_ts(v: str) -> str:
                v = v.strip()
                if _ISO_TS_RE.match(v):
                    try:
                        dt.datetime.fromisoformat(v)
                        return v
                    except ValueError:
                        pass
                    try:
                        dt.datetime.fromisoformat(
                            v.replace("UTC", "+00:00").replace(" +", "+").replace(" -", "-")
                        )
                        return v
                    except ValueError:
                        pass
                raise FieldError(
                    1206, f"Invalid timestamp format or value [YYYY-MM-DD HH24:MI:SS], value '{v}'"
                )

        elif fmt.lower() == "auto":

            def convert_ts(v: str) -> str:
                return _parse_auto(v, "timestamp")

        elif fmt.lower() in ("epochsecs", "epochmillisecs"):
            divisor = 1 if fmt.lower() == "epochsecs" else 1000

            def convert_ts(v: str) -> str:
                try:
                    seconds = float(v) / divisor
                except ValueError:
                    raise FieldError(1206, f"Invalid timestamp format or value [{fmt}], value '{v}'")
                stamp = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=seconds)
                return stamp.isoformat(sep=" ") + ("+00" if with_tz else "")

        else:
            pattern, _ = _strptime_format(fmt)

            def convert_ts(v: str) -> str:
                try:
                    return dt.datetime.strptime(v.strip(), pattern).isoformat(sep=" ")
                except ValueError:
                    raise FieldError(1206, f"Invalid timestamp format or value [{fmt}], value '{v}'")

        return empty_is_null(convert_ts)

    return empty_is_null(lambda v: v)


# --------------------------------------------------------------------------- the load


@dataclass
class LoadResult:
    rows: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    failed: bool = False
    files: int = 0


_CHUNK_BYTES = 1 << 20


_UNQUOTED_TYPES = {"int2", "int4", "int8", "numeric", "float4", "float8", "bool", "date"}


def field_encoder(col: TargetColumn, spec: CopySpec) -> Callable[[str], str]:
    """raw field → the field of PostgreSQL's CSV: spec.pg_null is NULL, a quoted value is a value."""
    convert = build_converter(col, spec)
    null_as, not_null, null_out = spec.null_as, col.not_null, spec.pg_null
    blank_is_null = getattr(convert, "empty_is_null", False)
    quoted = col.typname not in _UNQUOTED_TYPES

    def encode(v: str) -> str:
        if v == null_as or (blank_is_null and (not v or v.isspace())):
            x = None
        else:
            x = convert(v)
        if x is None:
            if not_null:
                raise FieldError(1213, "Missing data for not-null field")
            return null_out
        if quoted:
            return '"' + x.replace('"', '""') + '"'
        return x

    # Fast paths for the common, valid field (one Python call per field, measured
    # ~1.6x faster); anything unusual goes through `encode`.
    typ = col.typname
    if typ in _INT_RANGES and null_as:
        match = _INT_RE.match
        max_len = _INT_FAST_DIGITS[typ]  # no overflow possible: int2 took 99999 before

        def encode_int(v: str) -> str:
            if match(v) and len(v) <= max_len:
                return v
            return encode(v)

        return encode_int
    if (
        typ in ("varchar", "bpchar")
        and col.typmod >= 4
        and null_as
        and not (spec.blanksasnull or spec.trimblanks)
    ):
        quarter = (col.typmod - 4) // 4

        def encode_string(v: str) -> str:
            if v and len(v) <= quarter and v != null_as:
                return '"' + v.replace('"', '""') + '"'
            return encode(v)

        return encode_string
    if typ == "numeric" and col.typmod >= 4 and null_as and not spec.roundec:
        scale = (col.typmod - 4) & 0xFFFF
        whole_digits = ((col.typmod - 4) >> 16) - scale
        match = _DEC_RE.match

        def encode_numeric(v: str) -> str:
            m = match(v)
            if m and m.group(2) and len(m.group(2)) <= whole_digits and len(m.group(3) or "") <= scale:
                return v
            return encode(v)

        return encode_numeric
    if typ == "bool" and null_as:
        known = {k: "t" for k in _TRUE} | {k: "f" for k in _FALSE}
        known.update({k.upper(): val for k, val in known.items()})

        def encode_bool(v: str) -> str:
            return known.get(v) or encode(v)

        return encode_bool
    return encode


# Row fast path: a row whose every field is already what PostgreSQL parses exactly
# as Redshift would (a small integer, a valid ISO timestamp, a short string, the
# NULL AS marker, ...) is passed on unchanged. Per row: one join and one regex
# match, no Python call per field; the CSV for PostgreSQL (every field quoted, the
# NULL marker not) is made for thousands of rows at once by str.replace and one
# re.sub (_quote_rows). Every pattern accepts a SUBSET of what the per-field
# converters pass through unchanged; any other row takes the converters (and may
# be rejected) as before.
_SEP = "\0"  # joins the fields; no pattern matches it, so a row only matches field by field
_ROW_SEP = "\x01"  # joins the rows of a batch; no pattern matches it either
_MONTH_DAY = (
    r"(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)"
    r"|(?:0[13578]|1[02])-31)"  # 29 February goes the slow way (leap years)
)
_FAST_DATE = r"(?!0000)\d{4}-" + _MONTH_DAY
_FAST_TIMESTAMP = _FAST_DATE + r"(?: (?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,6})?)?"
_FAST_BOOL = r"(?i:t|true|y|yes|1|f|false|n|no|0)"
_FAST_FLOAT = r"[+-]?\d{1,15}(?:\.\d{1,15})?"


def _field_pattern(col: TargetColumn, spec: CopySpec) -> str | None:
    """The regex of this column's fields that need no conversion, or None."""
    typ = col.typname
    if typ in _INT_FAST_DIGITS:
        pattern = rf"[+-]?\d{{1,{_INT_FAST_DIGITS[typ]}}}"
    elif typ in ("varchar", "bpchar") and col.typmod >= 4:
        if spec.blanksasnull or spec.trimblanks:
            return None
        limit = col.typmod - 4
        least = 1 if spec.emptyasnull else 0
        # ASCII: characters are bytes; otherwise up to 4 bytes a character. Never
        # the two separators (PostgreSQL refuses NUL anyway) nor undecodable bytes.
        pattern = rf"[\x02-\x7f]{{{least},{limit}}}"
        if limit >= 4:
            pattern += rf"|[^\x00\x01\udc80-\udcff]{{{least},{limit // 4}}}"
    elif typ == "numeric" and col.typmod >= 4 and not spec.roundec:
        scale = (col.typmod - 4) & 0xFFFF
        whole = ((col.typmod - 4) >> 16) - scale
        if whole < 1:
            return None
        pattern = rf"[+-]?\d{{1,{whole}}}" + (rf"(?:\.\d{{1,{scale}}})?" if scale else "")
    elif typ in ("float4", "float8"):
        pattern = _FAST_FLOAT
    elif typ == "bool":
        pattern = _FAST_BOOL
    elif typ == "date" and (spec.dateformat is None or spec.dateformat.upper() == "YYYY-MM-DD"):
        pattern = _FAST_DATE
    elif typ in ("timestamp", "timestamptz") and (
        spec.timeformat is None or spec.timeformat.upper() == "YYYY-MM-DD HH:MI:SS"
    ):
        pattern = _FAST_TIMESTAMP
    else:
        return None
    null = re.escape(spec.null_as)
    if col.not_null:  # NULL AS in a NOT NULL column is a load error: the slow way
        return rf"(?>(?!{null}(?:\x00|\Z))(?:{pattern}))"
    return rf"(?>{null}|{pattern})"


def row_pattern(columns: list[TargetColumn], spec: CopySpec) -> re.Pattern | None:
    """A regex matching the NUL-joined fields of a row that can go to PostgreSQL as is.

    Needs NULL AS to be PostgreSQL's NULL marker too (CopySpec.pg_null) and two
    columns or more: a one-field row could read as an empty line or as end-of-data.
    """
    if not spec.pg_null or len(columns) < 2:
        return None
    patterns = [_field_pattern(c, spec) for c in columns]
    if any(p is None for p in patterns):
        return None
    return re.compile("\x00".join(patterns), re.DOTALL)


def _batch_quoter(spec: CopySpec) -> Callable[[list[str]], str]:
    """NUL-joined rows that matched row_pattern → PostgreSQL CSV lines.

    Every field is quoted, then the NULL markers are unquoted again: a `"\\N"`
    preceded by a comma or newline and followed by one can only be a whole field
    (inside a quoted value every quote is doubled)."""
    # the quote first, then the look behind it: a literal start lets re skip ahead (3x faster)
    null_field = re.compile(r'"(?<![^,\n]")' + re.escape(spec.pg_null) + r'"(?![^,\n])')
    unquoted = spec.pg_null.replace("\\", "\\\\")  # a re.sub template

    def quote_rows(rows: list[str]) -> str:
        body = _ROW_SEP.join(rows).replace('"', '""').replace(_SEP, '","').replace(_ROW_SEP, '"\n"')
        return null_field.sub(unquoted, '"' + body + '"\n')

    return quote_rows


def generate_copy_data(
    spec: CopySpec,
    columns: list[TargetColumn],
    client,
    result: LoadResult,
    cancelled: threading.Event | None = None,
) -> Iterator[bytes]:
    """Yield PostgreSQL CSV (about 1 MiB a chunk) for every accepted row of every file.

    Rejected rows go to result.rejected; when more than MAXERROR are rejected,
    result.failed is set and the generator stops (the caller sends CopyFail).
    """
    encoders = [field_encoder(c, spec) for c in columns]
    ncols = len(columns)
    null_as = spec.null_as
    maxerror = spec.maxerror
    fast = row_pattern(columns, spec)
    fast_match = fast.fullmatch if fast is not None else None
    quote_rows = _batch_quoter(spec) if fast is not None else None
    join = _SEP.join
    ignoreblanklines, removequotes = spec.ignoreblanklines, spec.removequotes
    out: list[str] = []  # finished CSV text
    batch: list[str] = []  # NUL-joined rows of the fast path, not yet quoted
    size = 0

    def flush() -> bytes:
        nonlocal size
        if batch:
            out.append(quote_rows(batch))
            batch.clear()
        data = "".join(out).encode("utf-8")
        out.clear()
        size = 0
        return data

    for url in list_source_files(client, spec):
        result.files += 1
        stream = open_source_file(client, url, spec.compression)
        invalid_utf8 = [False]

        def on_bad_bytes(exc: UnicodeDecodeError, invalid_utf8=invalid_utf8):
            invalid_utf8[0] = True
            return codecs.lookup_error("surrogateescape")(exc)

        error_name = f"rs_copy_{id(invalid_utf8)}"
        codecs.register_error(error_name, on_bad_bytes)
        text = io.TextIOWrapper(stream, encoding="utf-8", errors=error_name, newline="")
        if spec.csv:
            reader = csv.reader(text, delimiter=spec.delimiter, quotechar=spec.quote, strict=False)
        else:
            reader = csv.reader(
                text,
                delimiter=spec.delimiter,
                quoting=csv.QUOTE_NONE,
                escapechar="\\" if spec.escape else None,
            )
        for _ in range(spec.ignoreheader):
            if next(reader, None) is None:
                break
        last_line = reader.line_num
        rows = 0
        try:
            for fields in reader:
                line_number = last_line + 1
                last_line = reader.line_num
                if removequotes:
                    fields = [f[1:-1] if len(f) >= 2 and f[0] == f[-1] == '"' else f for f in fields]
                if invalid_utf8[0]:
                    fields, bad = _fix_invalid_utf8(fields, spec.acceptinvchars)
                    if bad is not None:
                        result.rejected.append(
                            RejectedRow(
                                url,
                                line_number,
                                columns[bad].name if bad < ncols else "",
                                columns[bad].type_display if bad < ncols else "",
                                "",
                                0,
                                _raw_line(fields, spec),
                                _SURROGATES.sub("?", fields[bad]) if bad < len(fields) else "",
                                1220,
                                "String contains invalid or unsupported UTF8 codepoints",
                            )
                        )
                        if len(result.rejected) > maxerror:
                            result.failed = True
                            return
                        continue
                joined = join(fields) if fast_match is not None else ""
                if fast_match is not None and fast_match(joined) is not None:
                    batch.append(joined)
                    size += len(joined)
                else:
                    if not fields and ignoreblanklines:
                        continue
                    if len(fields) != ncols:
                        if len(fields) < ncols and spec.fillrecord:
                            fields = fields + [null_as] * (ncols - len(fields))
                        else:
                            code, reason = (
                                (1202, "Extra column(s) found")
                                if len(fields) > ncols
                                else (1203, "Delimiter not found")
                            )
                            result.rejected.append(
                                RejectedRow(
                                    url,
                                    line_number,
                                    "",
                                    "",
                                    "",
                                    0,
                                    _raw_line(fields, spec),
                                    "",
                                    code,
                                    reason,
                                )
                            )
                            if len(result.rejected) > maxerror:
                                result.failed = True
                                return
                            continue
                    try:
                        line = ",".join([encode(v) for encode, v in zip(encoders, fields)])
                    except FieldError as exc:
                        index = _failing_field(encoders, fields)
                        col = columns[index]
                        result.rejected.append(
                            RejectedRow(
                                url,
                                line_number,
                                col.name,
                                col.type_display,
                                str(col.typmod - 4) if col.typmod >= 4 else "",
                                0,
                                _raw_line(fields, spec),
                                fields[index],
                                exc.code,
                                exc.reason,
                            )
                        )
                        if len(result.rejected) > maxerror:
                            result.failed = True
                            return
                        continue
                    if batch:  # keep the order of the rows
                        out.append(quote_rows(batch))
                        batch.clear()
                    out.append(line + "\n")
                    size += len(line)
                rows += 1
                if size >= _CHUNK_BYTES:
                    result.rows += rows
                    rows = 0
                    yield flush()
                    if cancelled is not None and cancelled.is_set():
                        return
        finally:
            result.rows += rows
    if out or batch:
        yield flush()


def _failing_field(encoders, fields) -> int:
    for index, (encode, value) in enumerate(zip(encoders, fields)):
        try:
            encode(value)
        except FieldError:
            return index
    return 0


def _raw_line(fields: list[str], spec: CopySpec) -> str:
    return spec.delimiter.join(_SURROGATES.sub("?", f) for f in fields)[:1024]


def _fix_invalid_utf8(fields: list[str], replacement: str | None) -> tuple[list[str], int | None]:
    """Replace undecodable bytes (ACCEPTINVCHARS), or report the first field that has some."""
    for index, value in enumerate(fields):
        if _SURROGATES.search(value):
            if replacement is None:
                return fields, index
            fields = [_SURROGATES.sub(lambda m: replacement * len(m.group(0)), f) for f in fields]
            return fields, None
    return fields, None
