"""Redshift's COPY statement: its parser and what it asks for (docs: r_COPY).

parse_copy() reads ``COPY t [(cols)] FROM 's3://...' [options]`` into a CopySpec
and refuses what Redshift refuses (two ways to authorize, CSV with ESCAPE, ...)
or what the stand-in does not load (JSON, Parquet, fixed-width, LZOP: named in
the error). CopySpec.postgres_copy() is the statement PostgreSQL runs instead:
COPY ... FROM STDIN (FORMAT csv), fed by copy.stream.

docs: copy-parameters-data-format, copy-parameters-data-conversion,
copy-parameters-file-compression, copy-parameters-authorization
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from devstack.redshift.copy.errors import CopySyntaxError
from devstack.redshift.tokens import QIDENT, STRING, WORD, Token, significant, tokenize


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
# options that take one value, and the CopySpec field it goes to
_VALUE_OPTIONS = {
    "DELIMITER": "delimiter",
    "QUOTE": "quote",
    "DATEFORMAT": "dateformat",
    "TIMEFORMAT": "timeformat",
    "REGION": "region",
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
    spec, i = _parse_target_and_source(sig)
    credentials_forms = _parse_options(sig, i, spec)
    _check(spec, credentials_forms)
    return spec


def _parse_target_and_source(sig: list[Token]) -> tuple[CopySpec, int]:
    """COPY [schema.]table [(columns)] FROM 'source': the spec, and where the options start."""
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
    return spec, i + 2


def _parse_options(sig: list[Token], i: int, spec: CopySpec) -> list[str]:
    """The options from sig[i] on, into `spec`; the ways of authorizing that were used."""
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
        if word in _VALUE_OPTIONS:
            text, i = value(i + 1)
            setattr(spec, _VALUE_OPTIONS[word], text)
        elif word == "IGNOREHEADER":
            text, i = value(i + 1)
            spec.ignoreheader = int(text)
        elif word == "NULL":
            spec.null_as, i = value(i + 1)
            if spec.null_as in ("\\0", "\\000"):
                # docs: copy-parameters-data-conversion — NULL AS '\0' or '\000' is the
                # NUL character (a field holding only NUL loads as NULL), not backslash-zero
                spec.null_as = "\0"
        elif word == "MAXERROR":
            text, i = value(i + 1)
            spec.maxerror = min(int(text), 100000)
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

    return credentials_forms


def _check(spec: CopySpec, credentials_forms: list[str]) -> None:
    """Refuse what Redshift refuses of the options together; fill in the default delimiter."""
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


def raise_error_sql(message: str, sqlstate: str) -> str:
    """A statement that fails with this error when PostgreSQL runs it (the COPY text was wrong)."""
    quoted = message.replace("'", "''").replace("$", "")
    return (
        f"DO $rs_copy$ BEGIN RAISE EXCEPTION USING MESSAGE = '{quoted}', "
        f"ERRCODE = '{sqlstate}'; END $rs_copy$"
    )


def translate_copy(sql: str) -> tuple[str, CopySpec | None]:
    """(what PostgreSQL runs, the parsed COPY) for a COPY from S3; a wrong one fails when run."""
    try:
        spec = parse_copy(sql)
    except (CopySyntaxError, ValueError) as exc:
        return raise_error_sql(str(exc), getattr(exc, "sqlstate", "42601")), None
    return spec.postgres_copy(), spec
