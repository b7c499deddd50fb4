"""Protobuf text format, as Caffe files use it, with every value's exact position.

The parse tree knows no schema: ``name { ... }`` (or ``name: { ... }``, ``name < ... >``)
is a message, ``name: value`` a scalar, ``name: [a, b]`` / ``name [ {..}, {..} ]``
repeat the field. Fields may be separated by ``,`` or ``;``. Schema questions
(is the field known, is the value the right type) belong to ``config.validate``.

One thing the parser cannot do well without a schema: ``input_param shape { ... }``
is a syntax error either way, but protobuf, which knows ``input_param`` is a
message, says ``Expected "{", found "shape".``. With ``root`` given (a message
name of ``config.schema``, or ``"auto"`` for a net or a solver), the parser
follows the field types and reports what protobuf reports. ``root=None`` parses
without any schema.

Positions are 1-based line and column plus 0-based character offsets into the
text, so a finding can point at a value and a fix can replace exactly it. Columns
are counted the way protobuf's tokenizer counts them (a tab advances to the next
multiple of 8, a non-ASCII character counts its UTF-8 bytes), so our ``line:col``
equals the one in Caffe's error messages. Besides the natural spans, a field
remembers where protobuf's own parser would report an error about it (the token
after the field name, or after a value).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nandoctor.core.types import InputError, Location

# One token per match; whitespace and comments are matched (and skipped) too, so
# finditer walks the whole text. Anything else is a one-character symbol, as in
# protobuf's tokenizer (the parser then rejects it).
_TOKEN_RE = re.compile(
    r"""
    (?P<ws>[ \t\r\n\f\v]+|\#[^\n]*)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<number>0[xX][0-9A-Fa-f]*
      | (?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]*)?[fF]?)
  | (?P<string>"(?:[^"\\\n]|\\[^\n])*"|'(?:[^'\\\n]|\\[^\n])*')
  | (?P<badstring>["'])
  | (?P<control>[\x00-\x08\x0e-\x1f])
  | (?P<nonascii>[^\x00-\x7f])
  | (?P<symbol>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_PLAIN_INT_RE = re.compile(r"[1-9][0-9]*|0")
_PLAIN_FLOAT_RE = re.compile(
    r"(?:[1-9][0-9]*|0)?\.[0-9]+(?:[eE][+-]?[0-9]+)?[fF]?|(?:[1-9][0-9]*|0)\.?(?:[eE][+-]?[0-9]+)?[fF]?"
)
_VALID_ESCAPE_RE = re.compile(r"\\(?:[abfnrtv\\?'\"0-7]|[xX][0-9A-Fa-f]|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8})")
_SPECIAL_COLUMN_RE = re.compile(r"[\t]|[^\x00-\x7f]")

_ESCAPES = {
    "n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v",
    "\\": "\\", "'": "'", '"': '"', "?": "?",
}  # fmt: skip


class Pos:
    """A place in the text: 1-based ``line``/``col`` (protobuf's counting) and 0-based ``offset``.

    The parser creates positions lazily: line and column are worked out from the
    offset the first time anyone asks, since most positions are never looked at.
    """

    __slots__ = ("_col", "_line", "_where", "offset")

    def __init__(self, line: int, col: int, offset: int):
        self._line = line
        self._col = col
        self.offset = offset
        self._where = None

    @classmethod
    def _lazy(cls, offset: int, where: _Positions) -> Pos:
        pos = cls.__new__(cls)
        pos._line = 0
        pos.offset = offset
        pos._where = where
        return pos

    def _resolve(self) -> None:
        self._line, self._col = self._where.line_col(self.offset)
        self._where = None

    @property
    def line(self) -> int:
        if self._where is not None:
            self._resolve()
        return self._line

    @property
    def col(self) -> int:
        if self._where is not None:
            self._resolve()
        return self._col

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Pos):
            return NotImplemented
        return (self.line, self.col, self.offset) == (other.line, other.col, other.offset)

    def __hash__(self) -> int:
        return hash((self.line, self.col, self.offset))

    def __repr__(self) -> str:
        return f"Pos(line={self.line}, col={self.col}, offset={self.offset})"


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
    body: Pos | None = None  # for a negative literal: the token after the '-'

    @property
    def span(self) -> tuple[int, int]:
        return (self.start.offset, self.end)

    @property
    def first_token(self) -> str:
        """The first token of the literal as protobuf's tokenizer sees it (``-`` for negatives)."""
        if self.negative:
            return "-"
        if self.kind == "string":
            m = _TOKEN_RE.match(self.text)
            return m.group() if m else self.text
        return self.text


@dataclass(slots=True)
class Field:
    name: str
    value: Scalar | Message
    name_pos: Pos
    after_name: Pos  # the token after the name: where protobuf reports "no field named"
    colon: bool = False  # written with ':' after the name
    list_pos: Pos | None = None  # the '[' when written in list form ``name: [a, b]``

    @property
    def is_message(self) -> bool:
        return isinstance(self.value, Message)


@dataclass(slots=True)
class Message:
    fields: list[Field] = field(default_factory=list)
    start: Pos | None = None  # the opening brace (None for the top level)
    end: int | None = None  # offset just past the closing brace
    # ``name: []`` sets nothing, but protobuf still checks the name: kept apart from ``fields``.
    empty_lists: list[Field] = field(default_factory=list)

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


class _Positions:
    """Offsets -> protobuf line/column, computed on demand (most tokens never need one)."""

    def __init__(self, text: str):
        self.text = text
        self.starts = [0]
        self.starts.extend(m.end() for m in re.finditer("\n", text))
        special = {bisect_right(self.starts, m.start()) for m in _SPECIAL_COLUMN_RE.finditer(text)}
        self.special_lines = special

    def __call__(self, offset: int) -> Pos:
        return Pos._lazy(offset, self)

    def line_col(self, offset: int) -> tuple[int, int]:
        line = bisect_right(self.starts, offset)
        start = self.starts[line - 1]
        if line not in self.special_lines:
            return line, offset - start + 1
        return line, _protobuf_column(self.text[start:offset]) + 1


def _protobuf_column(segment: str) -> int:
    """Zero-based column protobuf's tokenizer reaches after ``segment`` (tabs to 8, UTF-8 bytes)."""
    if segment.isascii():
        return len(segment.expandtabs(8))
    col = 0
    for ch in segment:
        if ch == "\t":
            col += 8 - col % 8
        elif ch < "\x80":
            col += 1
        else:
            col += len(ch.encode("utf-8", "replace"))
    return col


# A token is (kind, text, offset); a symbol's kind is the symbol itself ("{", ":"), and
# kind "error" carries the tokenizer's message in text (always the last token).
_Tok = tuple[str, str, int]


def _number_error(text: str, tok: str, start: int) -> tuple[str, int] | None:
    """The tokenizer error protobuf reports for a number token, with its offset (None: fine)."""
    end = start + len(tok)
    following = text[end : end + 1]
    if _PLAIN_INT_RE.fullmatch(tok) is None and _PLAIN_FLOAT_RE.fullmatch(tok) is None:
        low = tok.lower()
        if low.startswith("0x"):
            if len(tok) == 2:
                return '"0x" must be followed by hex digits.', end
        elif re.fullmatch(r"0[0-9]+", tok) or re.match(r"0[0-9]", tok):
            octal = re.match(r"0[0-7]*", tok).group()
            if octal != tok:
                if tok[len(octal)].isdigit():
                    return "Numbers starting with leading zero must be in octal.", start + len(octal)
                return "Hex and octal numbers must be integers.", start + len(octal)
        elif re.search(r"[eE][+-]?(?:[fF])?$", tok):
            m = re.search(r"[eE][+-]?", tok)
            return '"e" must be followed by exponent.', start + m.end()
    if following and ((following.isalpha() and following.isascii()) or following == "_"):
        return "Need space between number and identifier.", end
    if following == ".":
        is_float = any(c in tok for c in ".eEfF") and not tok.lower().startswith("0x")
        if is_float:
            return "Already saw decimal point or exponent; can't have another one.", end
        if tok.lower().startswith("0x") or (len(tok) > 1 and tok[0] == "0"):
            return "Hex and octal numbers must be integers.", end
    return None


def _string_error(text: str, start: int) -> tuple[str, int]:
    """Why the string starting at ``start`` does not lex, as protobuf's tokenizer says it."""
    quote = text[start]
    i = start + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            return "String literals cannot cross line boundaries.", i
        if ch == "\\":
            m = _VALID_ESCAPE_RE.match(text, i)
            if m is None:
                nxt = text[i + 1 : i + 2]
                if nxt in ("x", "X"):
                    return "Expected hex digits for escape sequence.", i + 2
                return "Invalid escape sequence in string literal.", i + 1
            i = m.end()
            continue
        if ch == quote:
            break  # pragma: no cover - a well-formed string never reaches here
        i += 1
    return "Unexpected end of string.", n


def _lex(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    append = toks.append
    for m in _TOKEN_RE.finditer(text):
        kind = m.lastgroup
        if kind == "ws":
            continue
        start = m.start()
        tok = m.group()
        if kind == "ident":
            append(("ident", tok, start))
        elif kind == "symbol":
            append((tok, tok, start))  # the kind of a symbol is the symbol itself
        elif kind == "number":
            if _PLAIN_INT_RE.fullmatch(tok) or re.fullmatch(r"0[xX][0-9A-Fa-f]+|0[0-7]+", tok):
                tkind = "int"
            else:
                tkind = "float"
            end = m.end()
            nxt = text[end : end + 1]
            if tkind == "int" and not nxt.isalnum() and nxt not in "._":
                append(("int", tok, start))
                continue
            err = _number_error(text, tok, start)
            if err is not None:
                append(("error", err[0], err[1]))
                return toks
            append((tkind, tok, start))
        elif kind == "string":
            if "\\" in tok:
                bad = _bad_escape(tok)
                if bad is not None:
                    append(("error", bad[0], start + bad[1]))
                    return toks
            append(("string", tok, start))
        elif kind == "badstring":
            msg, at = _string_error(text, start)
            append(("error", msg, at))
            return toks
        elif kind == "control":
            append(("error", "Invalid control characters encountered in text.", start))
            return toks
        else:  # nonascii
            code = ord(tok) if ord(tok) < 128 else tok.encode("utf-8", "replace")[0]
            append(("error", f"Interpreting non ascii codepoint {code}.", start))
            return toks
    append(("eof", "", len(text)))
    return toks


def _bad_escape(lit: str) -> tuple[str, int] | None:
    i = 1
    while True:
        i = lit.find("\\", i)
        if i < 0 or i >= len(lit) - 1:
            return None
        m = _VALID_ESCAPE_RE.match(lit, i)
        if m is None:
            if lit[i + 1] in "xX":
                return "Expected hex digits for escape sequence.", i + 2
            return "Invalid escape sequence in string literal.", i + 1
        i = m.end()


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
        elif nxt in ("x", "X"):
            m = re.match(r"[0-9A-Fa-f]{1,2}", body[i + 2 :])
            out.append(chr(int(m.group(), 16)) if m else nxt)
            i += 2 + (len(m.group()) if m else 0)
        elif nxt and nxt in "01234567":
            m = re.match(r"[0-7]{1,3}", body[i + 1 :])
            out.append(chr(int(m.group(), 8)))
            i += 1 + len(m.group())
        elif nxt in ("u", "U"):
            width = 4 if nxt == "u" else 8
            digits = body[i + 2 : i + 2 + width]
            try:
                out.append(chr(int(digits, 16)))
            except (ValueError, OverflowError):
                out.append("\ufffd")
            i += 2 + width
        else:
            out.append(nxt)
            i += 2
    return "".join(out)


def _number_value(text: str) -> int | float:
    t = text
    if t[:2] in ("0x", "0X"):
        return int(t, 16)
    if len(t) > 1 and t[0] == "0" and t.isdigit():
        return int(t, 8)
    if t.isdigit():
        return int(t)
    return float(t.rstrip("fF"))


class _Types:
    """The schema view the parser needs: is a field a message, of which type, what protobuf expects."""

    def __init__(self, root: str):
        from nandoctor.config import schema

        self.schema = schema
        self.root = root

    def lookup(self, mtype: str | None, name: str):
        """``(spec, child type)`` for a field of ``mtype``; spec None when unknown.

        The child type is None for scalars, "" for a message type the schema does not
        describe (a fork's ``*_param``: followed untyped), else the message name.
        """
        if mtype is None:
            return None, None
        s = self.schema
        if mtype == "auto":  # a net or a solver: their top-level field names do not overlap
            spec = s.field_spec("NetParameter", name) or s.field_spec("SolverParameter", name)
        else:
            spec = s.field_spec(mtype, name)
            if spec is None:
                ext = s.fork_field(mtype, name)
                spec = ext[1] if ext else None
        if spec is None:
            return None, None
        if not s.is_message(spec.type):
            return spec, None
        return spec, spec.type if spec.type in s.MESSAGES else ""

    def name_error(self, mtype: str | None, name: str, msg: Message) -> str | None:
        """What protobuf says about a field name before reading its value (unknown, or set twice)."""
        s = self.schema
        if mtype in (None, "auto") or mtype not in s.MESSAGES:
            return None
        spec = s.field_spec(mtype, name)
        if spec is None:
            if s.fork_field(mtype, name) is not None:
                return None
            return f'Message type "caffe.{mtype}" has no field named "{name}".'
        if not spec.repeated and msg.has(name):
            return f'Non-repeated field "{name}" is specified multiple times.'
        return None

    def expected(self, spec) -> str | None:
        """The word in protobuf's ``Expected <word>, got: X`` for a scalar field (None: unknown)."""
        if spec is None:
            return None
        t = spec.type
        if t in self.schema.INT_RANGES:
            return "integer"
        if t in ("float", "double"):
            return "double"
        if t in ("string", "bytes"):
            return "string"
        if t == "bool":
            return "identifier"
        if self.schema.is_enum(t):
            return "integer or identifier"
        return None


class _Parser:
    """Recursive descent over the token list; ``self.toks[self.i]`` is protobuf's current token.

    Symbol tokens use the character itself as their kind, so ``kind == "{"`` tests a brace.
    Message fields are attached to their parent before their body is parsed, so that after
    a syntax error ``self.root`` holds everything read so far (see ``parse_text``).
    """

    def __init__(self, text: str, path: str, root: str | None):
        self.path = path
        self.text = text
        self.toks = _lex(text)
        self.i = 0
        self.pos = _Positions(text)
        self.types = _Types(root) if root is not None else None
        self.root = Message()
        self._raise_if_error()

    def _raise_if_error(self) -> None:
        kind, msg, off = self.toks[self.i]
        if kind == "error":
            p = self.pos(off)
            raise ParseError(msg, self.path, p.line, p.col)

    def _next(self) -> _Tok:
        tok = self.toks[self.i]
        if tok[0] != "eof":
            self.i += 1
            if self.toks[self.i][0] == "error":
                self._raise_if_error()
        return tok

    def _kind(self) -> str:
        return self.toks[self.i][0]

    def _error(self, msg: str, tok: _Tok | None = None) -> ParseError:
        p = self.pos((tok or self.toks[self.i])[2])
        return ParseError(msg, self.path, p.line, p.col)

    def parse(self) -> Message:
        self._fields(self.root, None, self.types.root if self.types else None)
        return self.root

    def _fields(self, msg: Message, closer: str | None, mtype: str | None) -> None:
        toks = self.toks
        while True:
            kind, text, _ = toks[self.i]
            if kind != "ident":
                if closer is None:
                    if kind == "eof":
                        return
                elif kind in ("}", ">"):
                    if kind == closer:
                        return
                    raise self._error(f'Expected "{closer}", found "{text}".')
                raise self._error(f"Expected identifier, got: {text}")
            self._field(msg, mtype)
            if toks[self.i][0] in (",", ";"):
                self._next()

    def _field(self, msg: Message, mtype: str | None) -> None:
        name_tok = self._next()
        name = name_tok[1]
        name_pos = self.pos(name_tok[2])
        kind, text, off = self.toks[self.i]
        after_name = self.pos(off)
        spec, child = self.types.lookup(mtype, name) if self.types else (None, None)
        colon = kind == ":"
        if colon:
            self._next()
            kind, text, off = self.toks[self.i]
        if kind == "{" or kind == "<":
            sub = Message(start=self.pos(off))
            msg.fields.append(Field(name, sub, name_pos, after_name, colon))
            self._message_body(sub, child or None)
            return
        try:
            if kind == "[":
                self._list(msg, name, name_pos, after_name, colon, child, spec)
                return
            if child is not None:
                # protobuf knows this is a message: the ':' is optional, the '{' is not.
                raise self._error(f'Expected "{{", found "{text}".')
            if not colon:
                raise self._error(f'Expected ":", found "{text}".')
            value = self._scalar(spec)
        except ParseError:
            # protobuf judges the name before the value: an unknown or repeated name is its error
            problem = self.types.name_error(mtype, name, msg) if self.types else None
            if problem is not None:
                raise ParseError(problem, self.path, after_name.line, after_name.col) from None
            raise
        msg.fields.append(Field(name, value, name_pos, after_name, colon))

    def _list(self, msg: Message, name: str, name_pos: Pos, after_name: Pos, colon: bool, child, spec) -> None:
        open_tok = self._next()  # [
        list_pos = self.pos(open_tok[2])
        if self._kind() == "]":
            close = self._next()
            after = self.pos(self.toks[self.i][2])
            empty = Scalar("empty_list", "[]", None, list_pos, close[2] + 1, after=after)
            msg.empty_lists.append(Field(name, empty, name_pos, after_name, colon, list_pos))
            return
        while True:
            kind, text, off = self.toks[self.i]
            if kind == "{" or kind == "<":
                sub = Message(start=self.pos(off))
                msg.fields.append(Field(name, sub, name_pos, after_name, colon, list_pos))
                self._message_body(sub, child or None)
            elif not colon:
                raise self._error(f'Expected "{{", found "{text}".')
            else:
                msg.fields.append(Field(name, self._scalar(spec), name_pos, after_name, colon, list_pos))
            kind = self._kind()
            if kind == "]":
                self._next()
                return
            if kind != ",":
                raise self._error(f'Expected "]", found "{self.toks[self.i][1]}".')
            self._next()

    def _message_body(self, sub: Message, mtype: str | None) -> None:
        open_tok = self._next()
        self._fields(sub, "}" if open_tok[0] == "{" else ">", mtype)
        close = self._next()
        sub.end = close[2] + 1

    def _scalar(self, spec=None) -> Scalar:
        toks = self.toks
        kind, text, off = toks[self.i]
        start = self.pos(off)
        negative = False
        body = None
        word = self.types.expected(spec) if self.types else None
        if kind == "-":
            sign = toks[self.i]
            negative = True
            self._next()
            kind, text, off = toks[self.i]
            body = self.pos(off)
            if kind not in ("int", "float", "ident"):
                if word in ("string", "identifier"):  # protobuf reads no sign for these types
                    raise self._error(f"Expected {word}, got: -", sign)
                if word is None:
                    raise self._error(f"Expected number, got: {text}")
                raise self._error(f"Expected {'double' if word == 'double' else 'integer'}, got: {text}")
        end = off + len(text)
        if kind == "string":
            parts = []
            while toks[self.i][0] == "string":
                t = self._next()
                parts.append(_decode_string(t[1]))
                end = t[2] + len(t[1])
            after = self.pos(toks[self.i][2])
            return Scalar("string", self.text[start.offset : end], "".join(parts), start, end, after=after)
        if kind == "int" or kind == "float":
            self._next()
            value = _number_value(text)
            if negative:
                value = -value
        elif kind == "ident":
            self._next()
            value = text
        else:
            raise self._error(f"Expected {word}, got: {text}" if word else f"Expected value, got: {text}")
        after = self.pos(toks[self.i][2])
        return Scalar(kind, self.text[start.offset : end], value, start, end, negative, after, body)


def _earlier_schema_error(parser: _Parser, err: ParseError) -> ParseError | None:
    """A schema error protobuf would have met before ``err``, in what was read before it."""
    root = parser.types.root if parser.types else None
    if root == "auto":
        from nandoctor.config import schema

        names = {f.name for f in parser.root.fields}
        root = next((r for r in ("NetParameter", "SolverParameter") if names & set(schema.MESSAGES[r].fields)), None)
    if root is None or err.line is None:
        return None
    from nandoctor.config.validate import validate  # validate imports this module

    for finding in validate(Document(parser.path, parser.text, parser.root), root):
        loc = finding.location
        positional = "protobuf_message" in finding.data and "caffe_stage" not in finding.data
        if positional and loc is not None and (loc.line, loc.col) < (err.line, err.col or 0):
            return ParseError(finding.data["protobuf_message"], parser.path, loc.line, loc.col)
    return None


def parse_text(text: str, path: str = "<text>", root: str | None = "auto") -> Document:
    """Parse protobuf text format; raises :class:`ParseError` with file:line:col on malformed input.

    ``root`` names the top-level message type for protobuf-exact syntax errors ("auto": a
    net or a solver, "NetParameter", "SolverParameter", ...); ``None`` parses without schema.
    With a schema, the error raised is the first one protobuf would report: a schema error
    (unknown field, wrong value) before the syntax error wins, as protobuf stops there.
    """
    parser = _Parser(text, path, root)
    try:
        tree = parser.parse()
    except ParseError as err:
        earlier = _earlier_schema_error(parser, err) if parser.types else None
        if earlier is not None:
            raise earlier from None
        raise
    return Document(path, text, tree)


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


def parse_file(path: str | Path, root: str | None = "auto") -> Document:
    return parse_text(read_text(path), str(path), root)


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
