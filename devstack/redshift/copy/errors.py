"""What can go wrong with a COPY, as the client will be told."""

from __future__ import annotations


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


class FieldError(Exception):
    """One field Redshift would not load: its stl_load_errors err_code and err_reason."""

    def __init__(self, code: int, reason: str):
        super().__init__(code, reason)
        self.code = code
        self.reason = reason
