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

from pathlib import Path
from typing import Any

from nandoctor.config import schema
from nandoctor.config.literals import expected_word
from nandoctor.config.tokenizer import Pos, Positions, Tok, decode_string, lex, number_value
from nandoctor.config.tree import Document, Field, Message, Scalar
from nandoctor.config.validate import validate
from nandoctor.core.safeio import MB, read_input
from nandoctor.core.types import InputError

__all__ = [
    "Document", "Field", "Message", "ParseError", "Pos", "Scalar", "number", "parse_file", "parse_text", "read_text",
]  # fmt: skip

# Real prototxts are kilobytes to a few megabytes; the token list costs ~20 bytes per byte.
MAX_CONFIG_BYTES = 16 * MB
# protobuf's text parser stops at this nesting depth; Caffe's own messages nest a few levels.
MAX_DEPTH = 100
# no integer type holds more than 20 digits (uint64); Python's int() refuses over 4300
MAX_INT_DIGITS = 100


class ParseError(InputError):
    """Malformed text format; carries protobuf-style ``line:col`` and what was expected."""


class _Types:
    """The schema view the parser needs: is a field a message, of which type, what protobuf expects."""

    def __init__(self, root: str):
        self.schema = schema
        self.expected_word = expected_word
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
        if spec is None or self.schema.is_message(spec.type) or spec.type == self.schema.UNKNOWN_TYPE:
            return None
        return self.expected_word(spec.type)


class _Parser:
    """Recursive descent over the token list; ``self.toks[self.i]`` is protobuf's current token.

    Symbol tokens use the character itself as their kind, so ``kind == "{"`` tests a brace.
    Message fields are attached to their parent before their body is parsed, so that after
    a syntax error ``self.root`` holds everything read so far (see ``parse_text``).
    """

    def __init__(self, text: str, path: str, root: str | None):
        self.path = path
        self.text = text
        self.toks = lex(text)
        self.i = 0
        self.pos = Positions(text)
        self.types = _Types(root) if root is not None else None
        self.root = Message()
        self.depth = 0
        self._raise_if_error()

    def _raise_if_error(self) -> None:
        kind, msg, off = self.toks[self.i]
        if kind == "error":
            p = self.pos(off)
            raise ParseError(msg, self.path, p.line, p.col)

    def _next(self) -> Tok:
        tok = self.toks[self.i]
        if tok[0] != "eof":
            self.i += 1
            if self.toks[self.i][0] == "error":
                self._raise_if_error()
        return tok

    def _kind(self) -> str:
        return self.toks[self.i][0]

    def _error(self, msg: str, tok: Tok | None = None) -> ParseError:
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
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self._error(
                f"Message is too deep, the parser exceeded the configured recursion limit of {MAX_DEPTH}.", open_tok
            )
        self._fields(sub, "}" if open_tok[0] == "{" else ">", mtype)
        self.depth -= 1
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
                parts.append(decode_string(t[1]))
                end = t[2] + len(t[1])
            after = self.pos(toks[self.i][2])
            return Scalar("string", self.text[start.offset : end], "".join(parts), start, end, after=after)
        if kind == "int" or kind == "float":
            if kind == "int" and len(text) > MAX_INT_DIGITS:
                # far beyond uint64, and int() refuses numbers this long: protobuf's words for it
                shown = text if len(text) <= 40 else f"{text[:20]}...{text[-8:]} ({len(text)} digits)"
                raise self._error(f"Integer out of range ({shown})")
            self._next()
            value = number_value(text)
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
        names = {f.name for f in parser.root.fields}
        root = next((r for r in ("NetParameter", "SolverParameter") if names & set(schema.MESSAGES[r].fields)), None)
    if root is None or err.line is None:
        return None
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
    """Read a config file as text; bad bytes never raise (they become U+FFFD and a parse error).

    Only a regular file of at most MAX_CONFIG_BYTES is read (a FIFO, a device such as
    /dev/zero, a socket: an InputError).
    """
    data = read_input(path, "a prototxt file", MAX_CONFIG_BYTES)
    return data.decode("utf-8", errors="replace")


def parse_file(path: str | Path, root: str | None = "auto") -> Document:
    return parse_text(read_text(path), str(path), root)


# protobuf's text parser reads these identifiers (and the integers 0 and 1) as a bool; any
# other spelling is a parse error, so ``bool()`` of the identifier would call ``false`` true.
_TRUE_WORDS = ("true", "True", "t")
_FALSE_WORDS = ("false", "False", "f")


def boolean(value: Any, default: bool | None = None) -> bool | None:
    """A bool field's value as protobuf reads it; ``default`` when absent or not a boolean literal."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        if value in _TRUE_WORDS:
            return True
        if value in _FALSE_WORDS:
            return False
    return default


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
