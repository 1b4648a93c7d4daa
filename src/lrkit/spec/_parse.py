"""The string grammar: a hand-written tokenizer and recursive-descent parser.

Text becomes a small syntax tree (:mod:`lrkit.spec._convert` turns it into the raw form the
builder takes). Nothing is evaluated; every loop advances through the text, so time is
linear in its length.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from lrkit.errors import SpecError
from lrkit.spec._build import MAX_DEPTH

__all__ = ["MAX_LENGTH", "parse_tree", "tokenize"]

#: Longest spec string accepted.
MAX_LENGTH = 10_000
_MAX_NUMBER = 40
_PUNCT = "()[],=*"
_KEYWORDS = ("then", "over")
#: Unit words that may follow a number: ``10 epochs``, ``0.5 steps``.
UNITS = {"step": "steps", "steps": "steps", "epoch": "epochs", "epochs": "epochs"}
_LITERALS: dict[str, Any] = {
    "none": None, "None": None, "null": None,
    "true": True, "True": True, "false": False, "False": False,
}  # fmt: skip


def _ident_start(c: str) -> bool:
    return c.isascii() and (c.isalpha() or c == "_")


def _ident_char(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c == "_")


@dataclasses.dataclass(frozen=True)
class Token:
    kind: str  # name, number, rel, string, eof, or the punctuation character itself
    text: str
    col: int  # 1-based
    value: Any = None

    def show(self) -> str:
        if self.kind == "eof":
            return "end of input"
        text = self.text if len(self.text) <= 24 else self.text[:21] + "..."
        return repr(text)


def _fail(col: int, message: str) -> SpecError:
    return SpecError(f"at column {col}: {message}")


def _is_digit(c: str) -> bool:
    return "0" <= c <= "9"


def _digits(text: str, i: int) -> int:
    while i < len(text) and _is_digit(text[i]):
        i += 1
    return i


def _number(text: str, i: int) -> tuple[Token, int]:
    start = i
    if text[i] in "+-":
        i += 1
    j = _digits(text, i)
    has_int = j > i
    i = j
    is_float = False
    if i < len(text) and text[i] == ".":
        is_float = True
        j = _digits(text, i + 1)
        if j == i + 1 and not has_int:
            raise _fail(start + 1, f"bad number {text[start : j + 1]!r}: expected digits")
        i = j
    if not has_int and not is_float:
        raise _fail(start + 1, f"bad number {text[start : i + 1]!r}: expected digits")
    if i < len(text) and text[i] in "eE":
        j = i + 1
        if j < len(text) and text[j] in "+-":
            j += 1
        k = _digits(text, j)
        if k == j:
            raise _fail(
                start + 1,
                f"bad number {text[start:k]!r}: expected digits after the exponent 'e'",
            )
        is_float = True
        i = k
    word = text[start:i]
    kind = "number"
    if i < len(text) and text[i] in "xX" and not (i + 1 < len(text) and _ident_char(text[i + 1])):
        kind = "rel"
        i += 1
    elif i < len(text) and text[i] == "%":
        kind = "pct"
        i += 1
    elif i < len(text) and (_ident_char(text[i]) or text[i] == "."):
        end = i
        while end < len(text) and (_ident_char(text[end]) or text[end] == "."):
            end += 1
        raise _fail(
            start + 1,
            f"bad number {text[start:end]!r}: expected digits, a '.', an exponent such as"
            " e-5, or a trailing x for a relative value",
        )
    if len(word) > _MAX_NUMBER:
        raise _fail(start + 1, f"number {word[:20]!r}... too long: expected at most 40 characters")
    value: float | int = float(word) if is_float else int(word)
    if isinstance(value, float) and not (abs(value) < float("inf")):
        raise _fail(start + 1, f"number {word!r} out of range: expected a finite number")
    return Token(kind, text[start:i], start + 1, value), i


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens; raises :class:`SpecError` at the first bad character."""
    if len(text) > MAX_LENGTH:
        raise SpecError(f"spec too long: {len(text)} characters, expected at most {MAX_LENGTH}")
    out: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            i += 1
        elif c in _PUNCT:
            out.append(Token(c, c, i + 1))
            i += 1
        elif _ident_start(c):
            j = i + 1
            while j < n and _ident_char(text[j]):
                j += 1
            out.append(Token("name", text[i:j], i + 1, text[i:j]))
            i = j
        elif _is_digit(c) or (
            c in "+-." and i + 1 < n and (_is_digit(text[i + 1]) or text[i + 1] == ".")
        ):
            tok, i = _number(text, i)
            out.append(tok)
        elif c in "'\"":
            j, chars = i + 1, []
            while j < n and text[j] != c:
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                chars.append(text[j])
                j += 1
            if j >= n:
                raise _fail(i + 1, f"unterminated string: expected a closing {c}")
            out.append(Token("string", text[i : j + 1], i + 1, "".join(chars)))
            i = j + 1
        else:
            what = repr(c) if c.isprintable() else f"U+{ord(c):04X}"
            raise _fail(
                i + 1,
                f"unexpected character {what}: expected a name, a number, a string or one of"
                " ( ) [ ] , = *",
            )
    out.append(Token("eof", "", n + 1))
    return out


# -- syntax tree -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Node:
    col: int


@dataclasses.dataclass(frozen=True)
class Lit(Node):
    """A number, relative number (``rel``), percentage (``pct``), number with a unit
    (``unit``: ``value`` is ``(number, "steps" or "epochs")``), string or word (a bare name).
    ``text`` is the number as written (exact decimal arithmetic for percentages)."""

    kind: str  # number, rel, pct, unit, string, word
    value: Any
    text: str = ""


@dataclasses.dataclass(frozen=True)
class ListNode(Node):
    items: tuple[Node, ...]


@dataclasses.dataclass(frozen=True)
class Arg:
    col: int
    key: str | None
    value: Node


@dataclasses.dataclass(frozen=True)
class Call(Node):
    name: str
    args: tuple[Arg, ...]


@dataclasses.dataclass(frozen=True)
class ChainNode(Node):
    pieces: tuple[Node, ...]


@dataclasses.dataclass(frozen=True)
class MulNode(Node):
    factors: tuple[Node, ...]


@dataclasses.dataclass(frozen=True)
class OverNode(Node):
    node: Node
    total: Lit  # a number, or a number with a unit


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.toks = tokens
        self.i = 0
        self.depth = 0

    def peek(self, k: int = 0) -> Token:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def take(self) -> Token:
        tok = self.peek()
        self.i = min(self.i + 1, len(self.toks) - 1)
        return tok

    def is_word(self, word: str) -> bool:
        tok = self.peek()
        return tok.kind == "name" and tok.text == word

    def enter(self, col: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _fail(col, f"nested too deeply: expected at most {MAX_DEPTH} levels")

    def spec(self) -> Node:
        node = self.expr()
        tok = self.peek()
        if tok.kind != "eof":
            raise _fail(tok.col, f"expected 'then', '*', 'over' or end of input, got {tok.show()}")
        return node

    def expr(self) -> Node:
        self.enter(self.peek().col)
        node = self.chain()
        if self.is_word("over"):
            over = self.take()
            tok = self.peek()
            if tok.kind != "number" or not tok.value > 0:
                raise _fail(
                    tok.col,
                    f"expected a number of steps > 0 after 'over' (or N epochs), got {tok.show()}",
                )
            node = OverNode(over.col, node, self.number())
        self.depth -= 1
        return node

    def chain(self) -> Node:
        first = self.term()
        pieces = [first]
        while self.is_word("then"):
            self.take()
            pieces.append(self.term())
        return first if len(pieces) == 1 else ChainNode(first.col, tuple(pieces))

    def term(self) -> Node:
        first = self.atom()
        factors = [first]
        while self.peek().kind == "*":
            self.take()
            factors.append(self.atom())
        return first if len(factors) == 1 else MulNode(first.col, tuple(factors))

    def number(self) -> Lit:
        """A number token, with the unit word that follows it (``10 epochs``), if any."""
        tok = self.take()
        unit = self.peek()
        if unit.kind == "name" and unit.text in UNITS and self.peek(1).kind != "=":
            self.take()
            return Lit(tok.col, "unit", (tok.value, UNITS[unit.text]), tok.text)
        return Lit(tok.col, "number", tok.value, tok.text)

    def atom(self) -> Node:
        tok = self.peek()
        if tok.kind == "number":
            return self.number()
        if tok.kind in ("rel", "pct", "string"):
            self.take()
            return Lit(tok.col, tok.kind, tok.value, tok.text)
        if tok.kind == "[":
            self.take()
            items = self.sequence("]", "list item", f"'[' at column {tok.col}")
            return ListNode(tok.col, tuple(a.value for a in items))
        if tok.kind == "(":
            self.take()
            node = self.expr()
            close = self.take()
            if close.kind != ")":
                raise _fail(
                    close.col, f"expected ')' to close '(' at column {tok.col}, got {close.show()}"
                )
            return node
        if tok.kind == "name" and tok.text not in _KEYWORDS:
            self.take()
            if self.peek().kind == "(":
                self.take()
                args = self.sequence(")", "argument", f"{tok.text}(...) at column {tok.col}")
                return Call(tok.col, tok.text, tuple(args))
            return Lit(tok.col, "word", tok.text)
        raise _fail(tok.col, f"expected a schedule or a value, got {tok.show()}")

    def sequence(self, close: str, what: str, opened: str) -> list[Arg]:
        """Comma-separated arguments (``key=value`` allowed for calls) up to ``close``."""
        self.enter(self.peek().col)
        out: list[Arg] = []
        while self.peek().kind != close:
            tok = self.peek()
            key = None
            if close == ")" and tok.kind == "name" and self.peek(1).kind == "=":
                key = tok.text
                self.take()
                self.take()
            out.append(Arg(tok.col, key, self.expr()))
            sep = self.peek()
            if sep.kind == ",":
                self.take()
            elif sep.kind != close:
                raise _fail(
                    sep.col,
                    f"expected ',' or '{close}' after {what} of {opened}, got {sep.show()}",
                )
        self.take()
        self.depth -= 1
        return out


def parse_tree(text: str) -> Node:
    """The syntax tree of a spec string."""
    if not isinstance(text, str):
        raise SpecError(f"expected a spec string, got {type(text).__name__}")
    return _Parser(tokenize(text)).spec()
