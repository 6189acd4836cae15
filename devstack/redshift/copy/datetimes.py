"""DATEFORMAT and TIMEFORMAT: Redshift's date and timestamp input, field by field.

The default formats take ISO input only; 'auto' recognizes the forms Redshift
lists; 'epochsecs'/'epochmillisecs' take seconds or milliseconds since 1970; any
other format string is translated into strptime's (docs:
r_DATEFORMAT_and_TIMEFORMAT_strings, automatic-recognition,
copy-parameters-data-conversion). A value that does not match raises FieldError
with Redshift's code: 1205 for a date, 1206 for a timestamp.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from devstack.redshift.copy.errors import FieldError

_ISO_DATE_RE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}\Z")
_ISO_TS_RE = re.compile(
    r"\d{4}-\d{1,2}-\d{1,2}(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?"
    r"(?:\s*(?:[+-]\d{2}(?::?\d{2})?|Z|UTC))?\Z"
)

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
        raise FieldError(1205 if want == "date" else 1206, f"Invalid {want} format: {exc}") from None
    return parsed.date().isoformat() if want == "date" else parsed.isoformat(sep=" ")


def _auto_converter(want: str) -> Callable[[str], str]:
    def convert_auto(v: str) -> str:
        return _parse_auto(v, want)

    return convert_auto


def _format_converter(
    fmt: str, finish: Callable[[dt.datetime], str], code: int, reason: str
) -> Callable[[str], str]:
    """A converter for an explicit DATEFORMAT/TIMEFORMAT string; `reason` has {fmt} and {v}."""
    pattern, _ = _strptime_format(fmt)

    def convert_formatted(v: str) -> str:
        try:
            return finish(dt.datetime.strptime(v.strip(), pattern))
        except ValueError:
            raise FieldError(code, reason.format(fmt=fmt, v=v)) from None

    return convert_formatted


def date_converter(fmt: str | None) -> Callable[[str], str]:
    """raw date field → ISO date, for DATEFORMAT `fmt` (None: the default)."""
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
        convert_date = _auto_converter("date")
    else:
        convert_date = _format_converter(
            fmt, lambda parsed: parsed.date().isoformat(), 1205, "Invalid date format '{fmt}', value '{v}'"
        )

    return convert_date


def timestamp_converter(fmt: str | None, with_tz: bool) -> Callable[[str], str]:
    """raw timestamp field → PostgreSQL timestamp input, for TIMEFORMAT `fmt` (None: the default)."""
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
            raise FieldError(1206, f"Invalid timestamp format or value [YYYY-MM-DD HH24:MI:SS], value '{v}'")

    elif fmt.lower() == "auto":
        convert_ts = _auto_converter("timestamp")
    elif fmt.lower() in ("epochsecs", "epochmillisecs"):
        divisor = 1 if fmt.lower() == "epochsecs" else 1000

        def convert_ts(v: str) -> str:
            try:
                seconds = float(v) / divisor
            except ValueError:
                raise FieldError(1206, f"Invalid timestamp format or value [{fmt}], value '{v}'") from None
            stamp = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=seconds)
            return stamp.isoformat(sep=" ") + ("+00" if with_tz else "")

    else:
        convert_ts = _format_converter(
            fmt,
            lambda parsed: parsed.isoformat(sep=" "),
            1206,
            "Invalid timestamp format or value [{fmt}], value '{v}'",
        )

    return convert_ts
