"""The segment filter language: a tokenizer and a recursive-descent parser producing a small syntax tree.

Grammar (keywords are case-insensitive; ``#`` starts nothing — there are no comments)::

    expression  := or_expr EOF
    or_expr     := and_expr ("or" and_expr)*
    and_expr    := unary ("and" unary)*
    unary       := "not" unary | primary
    primary     := "(" or_expr ")"
                 | "tag" TEXT                      a customer tag, e.g. tag "vip"
                 | "has" "consent" TEXT            consent granted for a channel, e.g. has consent "email"
                 | "has" ("email" | "phone")       a contact point of that kind
                 | FIELD condition
    condition   := ("=" | "!=" | "<" | "<=" | ">" | ">=") value
                 | ["not"] "in" "(" value ("," value)* ")"
                 | ["not"] "between" value "and" value
                 | ["not"] "contains" TEXT
                 | ["not"] "starts" "with" TEXT
                 | "is" ["not"] ("null" | "empty")
    value       := STRING | NUMBER | DATE | DATETIME | "true" | "false" | "today" | "now"
                 | NUMBER ("day"|"week"|"month"|"year")["s"] "ago"

Strings take double or single quotes (``\\"`` escapes a quote) and any Unicode text
(``"Hà Nội"``); dates are written bare (``2025-01-29``, ``2025-01-29T08:30``). Negated
conditions (``!=``, ``not in``…) are parsed as ``not`` around the positive one. Every error
names the 1-based column of the mistake: ``column 17: expected a value after '='``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import attrs

from crmkit.errors import ValidationError

COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")
UNITS = {
    "day": "days",
    "days": "days",
    "week": "weeks",
    "weeks": "weeks",
    "month": "months",
    "months": "months",
    "year": "years",
    "years": "years",
}
KEYWORDS = frozenset(
    {
        "and",
        "or",
        "not",
        "in",
        "between",
        "contains",
        "starts",
        "with",
        "is",
        "null",
        "empty",
        "tag",
        "has",
        "true",
        "false",
        "today",
        "now",
        "ago",
    }
)


class SegmentSyntaxError(ValidationError):
    """A segment expression that does not parse or does not type-check; ``column`` is 1-based."""

    def __init__(self, column: int, message: str, *, field: str = "expression") -> None:
        self.column = column
        self.detail = message
        super().__init__(f"column {column}: {message}", field=field)


# --- tokens ------------------------------------------------------------------------------------------


@attrs.frozen
class Token:
    """One lexical token: ``kind`` is word, string, number, date, datetime, op, '(' , ')' , ',' or end."""

    kind: str
    text: str
    column: int
    value: Any = None

    def describe(self) -> str:
        """How an error message quotes this token."""
        return "the end of the expression" if self.kind == "end" else repr(self.text)


_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_WORD = re.compile(r"[^\W\d]\w*")  # Unicode letters: a bare Huế is reported as unquoted text
_OPS = ("<=", ">=", "!=", "<>", "==", "=", "<", ">")


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with an ``end`` token; raises ``SegmentSyntaxError``."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        ch = text[pos]
        column = pos + 1
        if ch.isspace():
            pos += 1
        elif ch in "(),":
            tokens.append(Token(ch, ch, column))
            pos += 1
        elif ch in "\"'":
            value, pos = _string(text, pos)
            tokens.append(Token("string", text[column - 1 : pos], column, value))
        elif ch.isdigit() or (ch == "-" and pos + 1 < len(text) and text[pos + 1].isdigit()):
            tokens.append(_number_or_date(text, pos))
            pos += len(tokens[-1].text)
        elif _WORD.match(text, pos):
            word = _WORD.match(text, pos).group()  # type: ignore[union-attr]
            tokens.append(Token("word", word, column, word.lower()))
            pos += len(word)
        else:
            op = next((op for op in _OPS if text.startswith(op, pos)), None)
            if op is None:
                raise SegmentSyntaxError(column, f"unexpected character {ch!r}")
            tokens.append(Token("op", op, column, {"==": "=", "<>": "!="}.get(op, op)))
            pos += len(op)
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


def _string(text: str, start: int) -> tuple[str, int]:
    quote = text[start]
    out: list[str] = []
    pos = start + 1
    while pos < len(text):
        ch = text[pos]
        if ch == "\\" and pos + 1 < len(text):
            out.append(text[pos + 1])
            pos += 2
        elif ch == quote:
            return "".join(out), pos + 1
        else:
            out.append(ch)
            pos += 1
    raise SegmentSyntaxError(start + 1, f"unterminated string: add the closing {quote}")


def _number_or_date(text: str, pos: int) -> Token:
    column = pos + 1
    for pattern, kind in ((_DATETIME, "datetime"), (_DATE, "date")):
        found = pattern.match(text, pos)
        if found:
            raw = found.group()
            try:
                value: Any = datetime.fromisoformat(raw) if kind == "datetime" else date.fromisoformat(raw)
            except ValueError:
                raise SegmentSyntaxError(
                    column, f"{raw!r} is not a valid {'date' if kind == 'date' else 'date-time'}"
                ) from None
            return Token(kind, raw, column, value)
    found = _NUMBER.match(text, pos)
    assert found is not None  # noqa: S101 - narrows the type for mypy; nothing relies on it being checked
    raw = found.group()
    if _WORD.match(text, found.end()) and not text[found.end()].isspace():
        raise SegmentSyntaxError(column, f"{text[pos : found.end() + 1]!r}…: put a space between a number and a word")
    return Token("number", raw, column, Decimal(raw) if "." in raw else int(raw))


# --- syntax tree ------------------------------------------------------------------------------------


@attrs.frozen
class Literal:
    """A value in an expression: ``kind`` is text, number, date, datetime, boolean, today, now or ago."""

    kind: str
    value: Any
    column: int
    text: str


@attrs.frozen
class Compare:
    """``field op values``; ``op`` is one of COMPARISONS minus ``!=``, or in, between, contains, starts, null."""

    field: str
    op: str
    values: tuple[Literal, ...]
    column: int  # of the field name
    op_column: int


@attrs.frozen
class Tag:
    """``tag "vip"``: the customer carries the tag."""

    value: str
    column: int


@attrs.frozen
class HasConsent:
    """``has consent "email"``: consent granted (and not withdrawn) for the channel."""

    channel: str
    column: int


@attrs.frozen
class HasContact:
    """``has email`` / ``has phone``."""

    kind: str
    column: int


@attrs.frozen
class Not:
    """``not x``."""

    item: Any


@attrs.frozen
class And:
    """``a and b and …``."""

    items: tuple[Any, ...]


@attrs.frozen
class Or:
    """``a or b or …``."""

    items: tuple[Any, ...]


Node = Compare | Tag | HasConsent | HasContact | Not | And | Or


def parse(text: str) -> Node:
    """Parse a segment expression into its syntax tree; raises ``SegmentSyntaxError`` naming the column."""
    if not text or not text.strip():
        raise SegmentSyntaxError(1, 'the expression is empty (example: city = "Hà Nội" and has consent "email")')
    return _Parser(tokenize(text)).expression()


class _Parser:
    def __init__(self, tokens: Sequence[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    # -- helpers ------------------------------------------------------------------------------------

    @property
    def current(self) -> Token:
        return self.tokens[self.pos]

    def advance(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def at_word(self, *words: str) -> bool:
        return self.current.kind == "word" and self.current.value in words

    def expect_word(self, word: str, context: str) -> Token:
        if not self.at_word(word):
            raise SegmentSyntaxError(
                self.current.column, f"expected '{word}' {context}, found {self.current.describe()}"
            )
        return self.advance()

    def expect(self, kind: str, context: str) -> Token:
        if self.current.kind != kind:
            raise SegmentSyntaxError(
                self.current.column, f"expected '{kind}' {context}, found {self.current.describe()}"
            )
        return self.advance()

    # -- grammar --------------------------------------------------------------------------------------

    def expression(self) -> Node:
        node = self.or_expr()
        if self.current.kind != "end":
            token = self.current
            hint = " (missing 'and' / 'or'?)" if token.kind in ("word", "string", "number") else ""
            raise SegmentSyntaxError(token.column, f"unexpected {token.describe()}{hint}")
        return node

    def or_expr(self) -> Node:
        items = [self.and_expr()]
        while self.at_word("or"):
            self.advance()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self) -> Node:
        items = [self.unary()]
        while self.at_word("and"):
            self.advance()
            items.append(self.unary())
        return items[0] if len(items) == 1 else And(tuple(items))

    def unary(self) -> Node:
        if self.at_word("not"):
            self.advance()
            return Not(self.unary())
        return self.primary()

    def primary(self) -> Node:
        token = self.current
        if token.kind == "(":
            self.advance()
            node = self.or_expr()
            if self.current.kind != ")":
                raise SegmentSyntaxError(
                    self.current.column,
                    f"expected ')' to close the '(' at column {token.column}, found {self.current.describe()}",
                )
            self.advance()
            return node
        if token.kind == "end":
            raise SegmentSyntaxError(token.column, "expected a condition at the end of the expression")
        if token.kind != "word":
            raise SegmentSyntaxError(
                token.column, f"expected a field name, 'tag', 'has', 'not' or '(', found {token.describe()}"
            )
        if token.value == "tag":
            self.advance()
            return Tag(self.name_argument("after 'tag'"), token.column)
        if token.value == "has":
            self.advance()
            if self.at_word("consent"):
                self.advance()
                column = self.current.column
                return HasConsent(self.name_argument("after 'has consent'"), column)
            if self.at_word("email", "phone"):
                return HasContact(self.advance().value, token.column)
            raise SegmentSyntaxError(
                self.current.column,
                f"expected 'consent', 'email' or 'phone' after 'has', found {self.current.describe()}",
            )
        if token.value in KEYWORDS:
            raise SegmentSyntaxError(token.column, f"expected a field name, found the keyword {token.text!r}")
        self.advance()
        return self.condition(token)

    def name_argument(self, context: str) -> str:
        token = self.current
        if token.kind == "string" or (token.kind == "word" and token.value not in KEYWORDS):
            self.advance()
            return token.value if token.kind == "string" else token.text
        raise SegmentSyntaxError(token.column, f"expected a quoted name {context}, found {token.describe()}")

    def condition(self, field: Token) -> Node:
        name = field.value
        token = self.current
        if token.kind == "op":
            self.advance()
            value = self.value(f"after '{token.text}'")
            if token.value == "!=":
                return Not(Compare(name, "=", (value,), field.column, token.column))
            return Compare(name, token.value, (value,), field.column, token.column)
        if self.at_word("is"):
            self.advance()
            negated = self.at_word("not")
            if negated:
                self.advance()
            if not self.at_word("null", "empty"):
                raise SegmentSyntaxError(
                    self.current.column, f"expected 'null' or 'empty' after 'is', found {self.current.describe()}"
                )
            self.advance()
            node: Node = Compare(name, "null", (), field.column, token.column)
            return Not(node) if negated else node
        negated = self.at_word("not")
        if negated:
            self.advance()
        node = self.positive_condition(field)
        return Not(node) if negated else node

    def positive_condition(self, field: Token) -> Compare:
        token = self.current
        name = field.value
        if self.at_word("in"):
            self.advance()
            self.expect("(", "after 'in'")
            values = [self.value("in the list")]
            while self.current.kind == ",":
                self.advance()
                values.append(self.value("after ','"))
            if self.current.kind != ")":
                raise SegmentSyntaxError(
                    self.current.column, f"expected ',' or ')' in the list, found {self.current.describe()}"
                )
            self.advance()
            return Compare(name, "in", tuple(values), field.column, token.column)
        if self.at_word("between"):
            self.advance()
            low = self.value("after 'between'")
            self.expect_word("and", "in 'between … and …'")
            high = self.value("after 'and'")
            return Compare(name, "between", (low, high), field.column, token.column)
        if self.at_word("contains"):
            self.advance()
            return Compare(name, "contains", (self.value("after 'contains'"),), field.column, token.column)
        if self.at_word("starts"):
            self.advance()
            self.expect_word("with", "after 'starts'")
            return Compare(name, "starts", (self.value("after 'starts with'"),), field.column, token.column)
        raise SegmentSyntaxError(
            token.column,
            f"expected an operator after {field.text!r} (=, !=, <, <=, >, >=, in, "
            f"between, contains, starts with, is null), found {token.describe()}",
        )

    def value(self, context: str) -> Literal:
        token = self.current
        if token.kind == "string":
            self.advance()
            return Literal("text", token.value, token.column, token.text)
        if token.kind in ("date", "datetime"):
            self.advance()
            return Literal(token.kind, token.value, token.column, token.text)
        if token.kind == "number":
            self.advance()
            if self.current.kind == "word" and self.current.value in UNITS:
                unit = self.advance()
                self.expect_word("ago", f"after '{token.text} {unit.text}'")
                if not isinstance(token.value, int) or token.value < 0:
                    raise SegmentSyntaxError(
                        token.column, "a relative date needs a whole, positive number (30 days ago)"
                    )
                return Literal("ago", (token.value, UNITS[unit.value]), token.column, f"{token.text} {unit.text} ago")
            return Literal("number", token.value, token.column, token.text)
        if token.kind == "word" and token.value in ("true", "false"):
            self.advance()
            return Literal("boolean", token.value == "true", token.column, token.text)
        if token.kind == "word" and token.value in ("today", "now"):
            self.advance()
            return Literal(token.value, None, token.column, token.text)
        if token.kind == "word":
            raise SegmentSyntaxError(
                token.column, f'expected a value {context}, found {token.describe()} (quote text: "{token.text}")'
            )
        raise SegmentSyntaxError(token.column, f"expected a value {context}")
