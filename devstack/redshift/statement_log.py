"""A record of every statement the stand-in receives, for the grammar gate of the tests.

Off unless $DEVSTACK_REDSHIFT_STATEMENT_LOG names a file (LocalRedshift passes it on to
the proxy process). Then each Query and each Parse appends one JSON line:

    {"at": 1718000000.123, "sql": "...", "user": "stack", "application": "redshift_connector",
     "protocol": "simple" | "extended", "session": 4711, "refused": "<message>" (when refused)}

The text is the client's, before any rewrite, with the values of COPY's and CREATE USER's
secrets (CREDENTIALS, ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN, PASSWORD) replaced
by '***': the log never holds a key. One os.write() of a whole line on a file opened
O_APPEND: lines of concurrent sessions (and of the test process, which appends marker lines
to the same file) never interleave, and there is no lock to wait for.
"""

from __future__ import annotations

import json
import os
import time

from devstack.redshift.tokens import COMMENT, STRING, WORD, WS, tokenize

STATEMENT_LOG_ENV = "DEVSTACK_REDSHIFT_STATEMENT_LOG"
MASK = "'***'"
# Longer statements are logged cut, flagged "truncated": a gate cannot parse them anyway
MAX_LOGGED_CHARS = 1 << 20

_SECRET_WORDS = frozenset({"CREDENTIALS", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY", "SESSION_TOKEN", "PASSWORD"})


def mask_secrets(sql: str) -> str:
    """`sql` with the string after each secret-bearing keyword (AS allowed between) as '***'."""
    upper = sql.upper()
    if not any(word in upper for word in _SECRET_WORDS):
        return sql
    tokens = tokenize(sql)
    after_secret_word = False
    for i, tok in enumerate(tokens):
        if tok.kind in (WS, COMMENT):
            continue
        if tok.kind == WORD and tok.text.upper() in _SECRET_WORDS:
            after_secret_word = True
            continue
        if after_secret_word and tok.kind == WORD and tok.text.upper() == "AS":
            continue
        if after_secret_word and tok.kind == STRING:
            tokens[i] = type(tok)(STRING, MASK)
        after_secret_word = False
    return "".join(t.text for t in tokens)


class StatementLog:
    """Appends the statements a session receives to one JSON-lines file."""

    def __init__(self, path: str):
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    @classmethod
    def from_environment(cls) -> StatementLog | None:
        path = os.environ.get(STATEMENT_LOG_ENV)
        return cls(path) if path else None

    def record(
        self,
        sql: str,
        *,
        user: str,
        application: str,
        protocol: str,
        session: int,
        refused: str | None = None,
    ) -> None:
        entry = {
            "at": round(time.time(), 3),
            "sql": mask_secrets(sql[:MAX_LOGGED_CHARS]),
            "user": user,
            "application": application,
            "protocol": protocol,
            "session": session,
        }
        if len(sql) > MAX_LOGGED_CHARS:
            entry["truncated"] = len(sql)
        if refused:
            entry["refused"] = refused
        os.write(self._fd, (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8"))

    def close(self) -> None:
        os.close(self._fd)


__all__ = ["STATEMENT_LOG_ENV", "StatementLog", "mask_secrets"]
