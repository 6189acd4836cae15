"""SQL tokens: the lexer under the rewrites and the COPY parser.

Lossless (rendering the tokens gives the text back), so a rewrite can change a
few tokens and keep the rest of the statement, comments included, as it was.
Enough of PostgreSQL's lexical rules for Redshift SQL: strings (E'', $tag$),
quoted identifiers, #temp names, numbers, $n parameters, operators.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

WS, COMMENT, STRING, QIDENT, WORD, NUMBER, PARAM, OP = (
    "ws",
    "comment",
    "string",
    "qident",
    "word",
    "number",
    "param",
    "op",
)

_TOKEN_RE = re.compile(
    r"""
      (?P<ws>\s+)
    | (?P<comment>--[^\n]*|/\*(?:[^*]|\*(?!/))*(?:\*/|$))
    | (?P<estring>[eE]'(?:[^'\\]|\\.|'')*'?)
    | (?P<string>'(?:[^']|'')*'?)
    | (?P<dollar>\$(?P<tag>[A-Za-z_][A-Za-z_0-9]*)?\$)
    | (?P<qident>"(?:[^"]|"")*"?)
    | (?P<temp>\#[A-Za-z_][A-Za-z_0-9$]*)
    | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<param>\$\d+)
    | (?P<word>[A-Za-z_\u0080-\uffff][A-Za-z_0-9$\u0080-\uffff]*)
    | (?P<op>::|<=|>=|<>|!=|\|\||[^\s])
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass
class Token:
    kind: str
    text: str

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == WORD else ""

    def is_word(self, *words: str) -> bool:
        return self.kind == WORD and self.text.upper() in words

    def is_op(self, *ops: str) -> bool:
        return self.kind == OP and self.text in ops


def tokenize(sql: str) -> list[Token]:
    """The tokens of `sql`, whitespace and comments included: render(tokenize(s)) == s."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(sql):
        m = _TOKEN_RE.match(sql, pos)
        assert m is not None  # the last alternative matches any character
        kind = m.lastgroup
        if kind == "tag":
            kind = "dollar"
        if kind == "dollar":
            # a dollar-quoted string runs to the same tag
            tag = m.group(0)
            end = sql.find(tag, m.end())
            end = len(sql) if end < 0 else end + len(tag)
            tokens.append(Token(STRING, sql[pos:end]))
            pos = end
            continue
        text = m.group(0)
        if kind == "estring":
            kind = STRING
        elif kind == "temp":
            kind = WORD  # handled by the #temp rewrite
        tokens.append(Token(kind, text))
        pos = m.end()
    return tokens


def render(tokens: list[Token]) -> str:
    return "".join(t.text for t in tokens)


def split_statements(sql: str) -> list[str]:
    """Top-level statements (text without the separating semicolons); empty ones dropped."""
    out: list[str] = []
    current: list[Token] = []
    depth = 0
    for tok in tokenize(sql):
        if tok.is_op("("):
            depth += 1
        elif tok.is_op(")"):
            depth = max(0, depth - 1)
        if tok.is_op(";") and depth == 0:
            out.append(render(current))
            current = []
        else:
            current.append(tok)
    out.append(render(current))
    return [s for s in out if any(t.kind not in (WS, COMMENT) for t in tokenize(s))]


def significant(tokens: list[Token]) -> list[Token]:
    """The tokens without whitespace and comments."""
    return [t for t in tokens if t.kind not in (WS, COMMENT)]
