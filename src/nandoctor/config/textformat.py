"""Protobuf text format, as Caffe files use it, with every value's exact position.

The parser knows no schema: ``name { ... }`` (or ``name: { ... }``, ``name < ... >``)
is a message, ``name: value`` a scalar, ``name: [a, b]`` / ``name [ {..}, {..} ]``
repeat the field. Fields may be separated by ``,`` or ``;``. Schema questions
(is the field known, is the value the right type) belong to ``config.validate``.

Positions are 1-based line and column plus 0-based character offsets into the
text, so a finding can point at a value and a fix can replace exactly it.
Besides the natural spans, a field remembers where protobuf's own parser would
report an error about it (the token after the field name, or after an enum
value), so our messages can match Caffe's ``line:col`` exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nandoctor.core.types import InputError, Location

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>[ \t\r\n\f\v]+)
  | (?P<comment>\#[^\n]*)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<number>0[xX][0-9A-Fa-f]+
      | (?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fF]?)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<badstring>["'])
  | (?P<symbol>[{}<>\[\]:,;\-])
    """,
    re.VERBOSE,
)

_ESCAPES = {
    "n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v",
    "\\": "\\", "'": "'", '"': '"', "?": "?",
}  # fmt: skip


@dataclass(slots=True, frozen=True)
class Pos:
    line: int
    col: int
    offset: int


@dataclass(slots=True, frozen=True)
class Token:
    kind: str  # ident | int | float | string | symbol | eof
    text: str
    pos: Pos

    @property
    def end(self) -> int:
        return self.pos.offset + len(self.text)


@dataclass(slots=True)
class Scalar:
    """A scalar literal as written. ``kind`` is ident, int, float or string."""

    kind: str
    text: str  # the literal exactly as in the file (with sign, quotes)
    value: Any  # int, float, str (decoded string or identifier)
    start: Pos
    end: int  # offset just past the literal (adjacent strings included)
    negative: bool = False
    after: Pos | None = None  # position of the token after the literal (protobuf's error spot)

    @property
    def span(self) -> tuple[int, int]:
        return (self.start.offset, self.end)


@dataclass(slots=True)
class Field:
    name: str
    value: Scalar | Message
    name_pos: Pos
    after_name: Pos  # the token after the name: where protobuf reports "no field named"

    @property
    def is_message(self) -> bool:
        return isinstance(self.value, Message)


@dataclass(slots=True)
class Message:
    fields: list[Field] = field(default_factory=list)
    start: Pos | None = None  # the opening brace (None for the top level)
    end: int | None = None  # offset just past the closing brace

    def __iter__(self) -> Iterator[Field]:
        return iter(self.fields)

    def all(self, name: str) -> list[Field]:
        return [f for f in self.fields if f.name == name]

    def first(self, name: str) -> Field | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None

    def last(self, name: str) -> Field | None:
        found = None
        for f in self.fields:
            if f.name == name:
                found = f
        return found

    def has(self, name: str) -> bool:
        return self.first(name) is not None

    def get(self, name: str, default: Any = None) -> Any:
        """Value of the last ``name`` field (protobuf: last one wins); a Message or a Python scalar."""
        f = self.last(name)
        if f is None:
            return default
        return f.value if isinstance(f.value, Message) else f.value.value

    def get_all(self, name: str) -> list[Any]:
        return [f.value if isinstance(f.value, Message) else f.value.value for f in self.all(name)]

    def messages(self, name: str) -> list[Message]:
        return [f.value for f in self.fields if f.name == name and isinstance(f.value, Message)]


@dataclass(slots=True)
class Document:
    """A parsed file: its path, its text and the top-level message."""

    path: str
    text: str
    root: Message

    def location(self, pos: Pos) -> Location:
        return Location(self.path, pos.line, pos.col)

    def field_location(self, f: Field) -> Location:
        return Location(self.path, f.name_pos.line, f.name_pos.col)


class ParseError(InputError):
    """Malformed text format; carries protobuf-style ``line:col`` and what was expected."""


class _Lexer:
    def __init__(self, text: str, path: str):
        self.text = text
        self.path = path
        self.line = 1
        self.line_start = 0
        self.offset = 0

    def _pos(self, offset: int) -> Pos:
        return Pos(self.line, offset - self.line_start + 1, offset)

    def _advance_lines(self, start: int, end: int) -> None:
        nl = self.text.count("\n", start, end)
        if nl:
            self.line += nl
            self.line_start = self.text.rfind("\n", start, end) + 1

    def tokens(self) -> Iterator[Token]:
        text, n = self.text, len(self.text)
        match = _TOKEN_RE.match
        while self.offset < n:
            m = match(text, self.offset)
            if m is None:
                pos = self._pos(self.offset)
                ch = text[self.offset]
                if ord(ch) > 127:
                    code = ord(ch) if ord(ch) < 256 else ch.encode("utf-8")[0]
                    raise ParseError(f"Interpreting non ascii codepoint {code}.", self.path, pos.line, pos.col)
                raise ParseError(f"Unexpected character {ch!r}.", self.path, pos.line, pos.col)
            kind = m.lastgroup
            start, end = m.span()
            if kind in ("ws", "comment"):
                self._advance_lines(start, end)
                self.offset = end
                continue
            pos = self._pos(start)
            if kind == "badstring":
                eol = text.find("\n", start)
                eol = n if eol < 0 else eol
                p = self._pos(eol)
                raise ParseError("String literals cannot cross line boundaries.", self.path, p.line, p.col)
            tok_text = m.group()
            if kind == "number":
                is_int = re.fullmatch(r"0[xX][0-9A-Fa-f]+|[0-9]+", tok_text) is not None
                kind = "int" if is_int else "float"
            self.offset = end
            yield Token(kind, tok_text, pos)
        yield Token("eof", "", self._pos(n))


def _decode_string(lit: str) -> str:
    body = lit[1:-1]
    if "\\" not in body:
        return body
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1] if i + 1 < len(body) else ""
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt in "xX":
            m = re.match(r"[0-9A-Fa-f]{1,2}", body[i + 2 :])
            out.append(chr(int(m.group(), 16)) if m else nxt)
            i += 2 + (len(m.group()) if m else 0)
        elif nxt.isdigit():
            m = re.match(r"[0-7]{1,3}", body[i + 1 :])
            out.append(chr(int(m.group(), 8)) if m else nxt)
            i += 1 + (len(m.group()) if m else 1)
        else:
            out.append(nxt)
            i += 2
    return "".join(out)


def _number_value(text: str) -> int | float:
    t = text
    if re.fullmatch(r"0[xX][0-9A-Fa-f]+", t):
        return int(t, 16)
    if re.fullmatch(r"0[0-7]+", t):
        return int(t, 8)
    if re.fullmatch(r"[0-9]+", t):
        return int(t)
    return float(t.rstrip("fF"))


class _Parser:
    def __init__(self, text: str, path: str):
        self.path = path
        self.text = text
        self._it = _Lexer(text, path).tokens()
        self.tok = next(self._it)

    def _next(self) -> Token:
        tok = self.tok
        if tok.kind != "eof":
            self.tok = next(self._it)
        return tok

    def _error(self, msg: str, tok: Token | None = None) -> ParseError:
        tok = tok or self.tok
        return ParseError(msg, self.path, tok.pos.line, tok.pos.col)

    def _is(self, text: str) -> bool:
        return self.tok.kind == "symbol" and self.tok.text == text

    def parse(self) -> Message:
        root = Message()
        self._fields(root, closer=None)
        return root

    def _fields(self, msg: Message, closer: str | None) -> None:
        while True:
            tok = self.tok
            if closer is None and tok.kind == "eof":
                return
            if closer is not None and self._is(closer):
                return
            if tok.kind != "ident":
                raise self._error(f"Expected identifier, got: {tok.text}")
            self._field(msg)
            if self._is(",") or self._is(";"):
                self._next()

    def _field(self, msg: Message) -> None:
        name_tok = self._next()
        after_name = self.tok.pos
        colon = False
        if self._is(":"):
            self._next()
            colon = True
        if self._is("{") or self._is("<"):
            msg.fields.append(Field(name_tok.text, self._message(), name_tok.pos, after_name))
            return
        if self._is("["):
            self._list(msg, name_tok, after_name, colon)
            return
        if not colon:
            raise self._error(f'Expected ":", found "{self.tok.text}".')
        msg.fields.append(Field(name_tok.text, self._scalar(), name_tok.pos, after_name))

    def _list(self, msg: Message, name_tok: Token, after_name: Pos, colon: bool) -> None:
        self._next()  # [
        if self._is("]"):
            self._next()
            return
        while True:
            if self._is("{") or self._is("<"):
                value: Scalar | Message = self._message()
            elif not colon:
                raise self._error(f'Expected "{{", found "{self.tok.text}".')
            else:
                value = self._scalar()
            msg.fields.append(Field(name_tok.text, value, name_tok.pos, after_name))
            if self._is("]"):
                self._next()
                return
            if not self._is(","):
                raise self._error(f'Expected "]", found "{self.tok.text}".')
            self._next()

    def _message(self) -> Message:
        open_tok = self._next()
        closer = "}" if open_tok.text == "{" else ">"
        sub = Message(start=open_tok.pos)
        self._fields(sub, closer)
        close = self._next()
        sub.end = close.end
        return sub

    def _scalar(self) -> Scalar:
        tok = self.tok
        negative = False
        start = tok.pos
        if self._is("-"):
            negative = True
            self._next()
            tok = self.tok
            if tok.kind not in ("int", "float", "ident"):
                raise self._error(f"Expected number, got: {tok.text}")
        if tok.kind == "string":
            parts = []
            end = tok.end
            while self.tok.kind == "string":
                t = self._next()
                parts.append(_decode_string(t.text))
                end = t.end
            return Scalar("string", self.text[start.offset : end], "".join(parts), start, end, after=self.tok.pos)
        if tok.kind in ("int", "float"):
            self._next()
            value = _number_value(tok.text)
            if negative:
                value = -value
            return Scalar(tok.kind, self.text[start.offset : tok.end], value, start, tok.end, negative, self.tok.pos)
        if tok.kind == "ident":
            self._next()
            return Scalar("ident", self.text[start.offset : tok.end], tok.text, start, tok.end, negative, self.tok.pos)
        raise self._error(f"Expected value, got: {tok.text}")


def parse_text(text: str, path: str = "<text>") -> Document:
    """Parse protobuf text format; raises :class:`ParseError` with file:line:col on malformed input."""
    return Document(path, text, _Parser(text, path).parse())


def read_text(path: str | Path) -> str:
    """Read a config file as text; bad bytes never raise (they become U+FFFD and a parse error)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise InputError("file not found", str(path)) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a prototxt file", str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", str(path)) from None
    return data.decode("utf-8", errors="replace")


def parse_file(path: str | Path) -> Document:
    return parse_text(read_text(path), str(path))


def number(value: Any) -> float | None:
    """A scalar's numeric value; ``inf``/``nan`` identifiers count (protobuf accepts them for floats)."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        low = value.lower()
        if low in ("inf", "infinity"):
            return float("inf")
        if low == "nan":
            return float("nan")
    return None
