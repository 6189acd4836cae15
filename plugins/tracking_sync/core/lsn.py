"""LSNs (WAL positions) and transaction ids as the capture handles them: plain ints.

PostgreSQL writes an LSN as two hex halves, `16/B374D848`; the capture compares, stores
and writes them as the 64-bit number (a Redshift BIGINT holds every LSN below 2^63, i.e.
8 EiB of WAL). Transaction ids arrive from pgoutput as 32-bit xids and are widened to
64-bit xid8 values (epoch << 32 | xid), which never wrap.
"""

from __future__ import annotations

import re

_LSN_TEXT = re.compile(r"^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$")
XID_SPACE = 1 << 32


def parse_lsn(text: str) -> int:
    """'16/B374D848' -> 0x16B374D848."""
    match = _LSN_TEXT.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not an LSN (expected two hex halves, e.g. 16/B374D848)")
    return (int(match.group(1), 16) << 32) | int(match.group(2), 16)


def format_lsn(lsn: int) -> str:
    """0x16B374D848 -> '16/B374D848' (PostgreSQL's own spelling, accepted as pg_lsn)."""
    if not 0 <= lsn < 1 << 64:
        raise ValueError(f"{lsn} is not an LSN (0 <= lsn < 2^64)")
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def widen_xid(xid: int, next_full_xid: int) -> int:
    """The 64-bit xid8 of a 32-bit `xid` that was assigned before `next_full_xid`.

    `next_full_xid` is the next xid8 to be assigned, read on the source after the
    transaction started (pg_snapshot_xmax(pg_current_snapshot())). An xid at or below the
    low half of it belongs to the same epoch; one above it was assigned before the
    counter wrapped, in the previous epoch. PostgreSQL keeps every live xid within 2^31
    of the next one (wraparound protection), so there is no third case.
    """
    epoch, next_low = divmod(next_full_xid, XID_SPACE)
    if xid <= next_low:
        return epoch * XID_SPACE + xid
    if epoch == 0:
        raise ValueError(f"xid {xid} is above the next xid {next_full_xid} and there is no earlier epoch")
    return (epoch - 1) * XID_SPACE + xid
