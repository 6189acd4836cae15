"""The field converters and encoders of COPY, without a server (docs: copy-parameters-data-conversion)."""

from __future__ import annotations

import pytest

from devstack.redshift.copy import FieldError, TargetColumn, build_converter, field_encoder, parse_copy
from devstack.redshift.copy.fastpath import row_pattern

VARCHAR5 = TargetColumn("name", "varchar", 5 + 4, False, "character varying(5)")
INT4 = TargetColumn("id", "int4", -1, False, "integer")
INT2 = TargetColumn("small", "int2", -1, False, "smallint")
NUMERIC_10_2 = TargetColumn("amount", "numeric", ((10 << 16) | 2) + 4, False, "numeric(10,2)")
BOOL = TargetColumn("ok", "bool", -1, False, "boolean")
DATE = TargetColumn("d", "date", -1, False, "date")
TIMESTAMP = TargetColumn("ts", "timestamp", -1, False, "timestamp without time zone")
TIMESTAMPTZ = TargetColumn("tstz", "timestamptz", -1, False, "timestamp with time zone")


def spec(options: str = "csv"):
    return parse_copy(f"copy t from 's3://b/k' iam_role 'arn:r' {options}")


def convert(column: TargetColumn, value: str, options: str = "csv"):
    return build_converter(column, spec(options))(value)


def rejected(column: TargetColumn, value: str, options: str = "csv") -> tuple[int, str]:
    with pytest.raises(FieldError) as failure:
        convert(column, value, options)
    return failure.value.code, failure.value.reason


# docs: r_Character_types — n counts bytes; TRUNCATECOLUMNS cuts at a character boundary
def test_varchar_length_is_in_bytes():
    assert convert(VARCHAR5, "abcde") == "abcde"
    assert convert(VARCHAR5, "éé") == "éé"  # 4 bytes
    assert rejected(VARCHAR5, "ééé") == (
        1204,
        "String length exceeds DDL length (character varying(5): 6 bytes)",
    )
    assert convert(VARCHAR5, "ééé", "csv truncatecolumns") == "éé"


# docs: copy-parameters-data-conversion — '' loads as '' into VARCHAR unless EMPTYASNULL;
# BLANKSASNULL for whitespace only
def test_empty_and_blank_strings():
    assert convert(VARCHAR5, "") == ""
    assert convert(VARCHAR5, "", "csv emptyasnull") is None
    assert convert(VARCHAR5, "   ") == "   "
    assert convert(VARCHAR5, "   ", "csv blanksasnull") is None
    assert convert(VARCHAR5, "ab   ", "csv trimblanks") == "ab"


def test_integers():
    assert convert(INT4, "-42") == "-42"
    assert rejected(INT4, "x1") == (1207, "Invalid digit, Value 'x', Pos 0, Type: Integer")
    assert rejected(INT4, "1.5") == (1207, "Invalid digit, Value '1', Pos 0, Type: Integer")
    assert convert(INT2, "32767") == "32767"
    assert rejected(INT2, "32768") == (1216, "Overflow, Value '32768', Type: Short Integer")


# docs: copy-parameters-data-conversion — excess decimals truncated, unless ROUNDEC
def test_decimals_are_truncated_unless_roundec():
    assert convert(NUMERIC_10_2, "20.259") == "20.25"
    assert convert(NUMERIC_10_2, "-1.999") == "-1.99"
    assert convert(NUMERIC_10_2, "20.259", "csv roundec") == "20.26"
    assert convert(NUMERIC_10_2, "7") == "7"
    assert rejected(NUMERIC_10_2, "123456789.5")[0] == 1216
    assert rejected(NUMERIC_10_2, "abc")[0] == 1207


# docs: r_Boolean_type — t/true/y/yes/1, f/false/n/no/0; PostgreSQL's 'on' and prefixes are refused
@pytest.mark.parametrize("value", ["t", "TRUE", "y", "Yes", "1"])
def test_true_forms(value):
    assert convert(BOOL, value) == "t"


@pytest.mark.parametrize("value", ["f", "False", "N", "no", "0"])
def test_false_forms(value):
    assert convert(BOOL, value) == "f"


@pytest.mark.parametrize("value", ["on", "off", "tr", "yess"])
def test_postgresql_only_boolean_forms_are_refused(value):
    assert rejected(BOOL, value) == (1210, f"Invalid boolean value '{value}'")


# docs: copy-parameters-data-conversion (DATEFORMAT, TIMEFORMAT), r_DATEFORMAT_and_TIMEFORMAT_strings
def test_dates():
    assert convert(DATE, "2024-02-29") == "2024-02-29"
    assert rejected(DATE, "12/31/2023")[0] == 1205
    assert rejected(DATE, "2023-02-29")[0] == 1205
    assert convert(DATE, "31/12/2023", "csv dateformat 'DD/MM/YYYY'") == "2023-12-31"
    assert convert(DATE, "Dec 30 2023", "csv dateformat 'auto'") == "2023-12-30"


def test_timestamps():
    assert convert(TIMESTAMP, "2024-01-02 03:04:05.123456") == "2024-01-02 03:04:05.123456"
    assert rejected(TIMESTAMP, "2024-13-01 00:00:00")[0] == 1206
    assert convert(TIMESTAMP, "1704067200", "csv timeformat 'epochsecs'") == "2024-01-01 00:00:00"
    assert convert(TIMESTAMPTZ, "1704067200500", "csv timeformat 'epochmillisecs'") == (
        "2024-01-01 00:00:00.500000+00"
    )
    assert convert(TIMESTAMP, "12/30/2023 10:11:12", "csv timeformat 'auto'") == "2023-12-30 10:11:12"
    assert convert(TIMESTAMP, "30.12.2023 10h11", "csv timeformat 'DD.MM.YYYY HH24hMI'") == (
        "2023-12-30 10:11:00"
    )


# field_encoder: the field of the CSV PostgreSQL gets. NULL AS '\N' is also PostgreSQL's marker.
def test_encoder_quotes_strings_and_passes_null_markers():
    encode = field_encoder(VARCHAR5, spec())
    assert encode('a"b') == '"a""b"'
    assert encode("\\N") == "\\N"
    assert encode("") == '""'  # an empty VARCHAR field is '', not NULL
    assert field_encoder(INT4, spec())("") == "\\N"  # other types: NULL
    assert field_encoder(INT4, spec())("7") == "7"


def test_encoder_with_a_null_marker_postgresql_cannot_share():
    encode = field_encoder(VARCHAR5, spec("csv null as 'NULL'"))
    assert encode("NULL") == ""  # unquoted empty: NULL in PostgreSQL's CSV
    assert encode("") == '""'


# docs: t_Defining_constraints — NOT NULL is enforced: the row is a load error
def test_null_in_a_not_null_column_is_an_error():
    encode = field_encoder(TargetColumn("id", "int4", -1, True, "integer"), spec())
    with pytest.raises(FieldError) as failure:
        encode("\\N")
    assert (failure.value.code, failure.value.reason) == (1213, "Missing data for not-null field")


# The fast paths (per field and per row) must give what the converters give.
SAMPLES = [
    (INT4, ["0", "-7", "123456789", "1234567890", "99999999999", "x", "", "\\N", "+5"]),
    (INT2, ["1", "9999", "99999", "-32768", "-32769", ""]),
    (VARCHAR5, ["", "a", "abcde", "abcdef", "éé", "ééé", "\\N", 'a"b', "  "]),
    (NUMERIC_10_2, ["1", "1.2", "1.234", "12345678", "123456789", "-0.5", ".5", "x", ""]),
    (BOOL, ["t", "TRUE", "yes", "on", "0", "", "\\N"]),
]


@pytest.mark.parametrize("column,values", SAMPLES, ids=[c.typname for c, _ in SAMPLES])
def test_encoder_fast_paths_agree_with_the_converter(column, values):
    copy_spec = spec()
    encode = field_encoder(column, copy_spec)
    convert_value = build_converter(column, copy_spec)
    for value in values:
        try:
            got = encode(value)
        except FieldError as exc:
            got = ("rejected", exc.code)
        if value == "\\N" or (value == "" and column.typname != "varchar"):
            expected = "\\N"
        else:
            try:
                converted = convert_value(value)
                if converted is None:
                    expected = "\\N"
                elif column.typname == "varchar":
                    expected = '"' + converted.replace('"', '""') + '"'
                else:
                    expected = converted
            except FieldError as exc:
                expected = ("rejected", exc.code)
        assert got == expected, value


def test_the_row_fast_path_takes_valid_rows_only():
    pattern = row_pattern([INT4, VARCHAR5, TIMESTAMP, BOOL], spec())
    assert pattern.fullmatch("\0".join(["1", "abc", "2024-01-02 03:04:05", "t"]))
    assert pattern.fullmatch("\0".join(["\\N", "\\N", "\\N", "\\N"]))
    assert not pattern.fullmatch("\0".join(["1", "abcdef", "2024-01-02", "t"]))  # too long
    assert not pattern.fullmatch("\0".join(["1", "abc", "2024-02-29", "t"]))  # leap day: slow way
    assert not pattern.fullmatch("\0".join(["1", "abc", "2024-01-02", "on"]))
    # NULL AS that PostgreSQL cannot share, or a single column: no fast path
    assert row_pattern([INT4, VARCHAR5], spec("csv null as 'NULL'")) is None
    assert row_pattern([INT4], spec()) is None
