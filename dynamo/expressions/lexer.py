"""Tokenizer shared by every expression language.

DynamoDB's lexical rules: a name is a letter followed by letters, digits and ``_``; ``#ref`` and
``:ref`` take letters, digits and ``_`` after the sigil; list indexes are decimal digits. Any other
character is a one-character token the parser rejects with DynamoDB's syntax error.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from dynamo.errors import ValidationException


class Tok(enum.Enum):
    NAME = "name"
    NAME_REF = "#ref"
    VALUE_REF = ":ref"
    NUMBER = "number"
    PUNCT = "punct"
    BAD = "bad"
    EOF = "eof"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Tok
    text: str
    start: int
    end: int


_TOKEN = re.compile(
    r"""
    (?P<ws>[\ \t\r\n]+)
  | (?P<name>[A-Za-z][A-Za-z0-9_]*)
  | (?P<nameref>\#[A-Za-z0-9_]+)
  | (?P<valueref>:[A-Za-z0-9_]+)
  | (?P<number>[0-9]+)
  | (?P<punct><>|<=|>=|[()\[\],.=<>+\-])
    """,
    re.VERBOSE,
)
_KINDS = {"name": Tok.NAME, "nameref": Tok.NAME_REF, "valueref": Tok.VALUE_REF, "number": Tok.NUMBER, "punct": Tok.PUNCT}


def tokenize(text: str) -> list[Token]:
    """All tokens of ``text``, ending with one EOF token. Never raises: bad characters become BAD tokens."""
    tokens: list[Token] = []
    pos = 0
    size = len(text)
    match = _TOKEN.match
    while pos < size:
        m = match(text, pos)
        if m is None:
            tokens.append(Token(Tok.BAD, text[pos], pos, pos + 1))
            pos += 1
            continue
        group = m.lastgroup
        assert group is not None
        if group != "ws":
            tokens.append(Token(_KINDS[group], m.group(), pos, m.end()))
        pos = m.end()
    tokens.append(Token(Tok.EOF, "<EOF>", size, size))
    return tokens


def syntax_error(kind: str, text: str, tokens: list[Token], index: int) -> ValidationException:
    """DynamoDB's syntax error at ``tokens[index]``: the token, and ``near``: the source text from the
    token before it to the token after it (at the end of the text, the last two tokens)."""
    token = tokens[index]
    if token.kind is Tok.EOF:
        first = tokens[max(index - 2, 0)]
        near = text[first.start : tokens[index - 1].end] if index > 0 else ""
    else:
        first = tokens[index - 1] if index > 0 else token
        last = tokens[index + 1] if tokens[index + 1].kind is not Tok.EOF else token
        near = text[first.start : last.end]
    return ValidationException(f'Invalid {kind}: Syntax error; token: "{token.text}", near: "{near}"')
