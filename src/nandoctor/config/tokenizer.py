"""protobuf's text-format tokenizer, as Caffe's protobuf (3.x) runs it, with its error messages.

``lex(text)`` turns the whole text into ``(kind, text, offset)`` tuples in one regex pass;
a symbol's kind is the symbol itself. Where protobuf's tokenizer reports an error (a bad
number, escape, control byte or non-ASCII character, an unterminated string), the token
list ends with an ``("error", message, offset)`` token, so the parser raises it exactly
when protobuf would: when that token becomes the current one.

Positions follow protobuf's counting: ``Pos`` is 1-based line/column, where a tab advances
the column to the next multiple of 8 and a non-ASCII character counts its UTF-8 bytes, plus
the 0-based character offset. ``Positions`` computes them lazily from offsets.
"""

from __future__ import annotations

import re
from bisect import bisect_right

# One token per match; whitespace and comments are matched (and skipped) too, so
# finditer walks the whole text. Anything else is a one-character symbol, as in
# protobuf's tokenizer (the parser then rejects it). String literals repeat possessively
# (``*+``): a backtracking repeat keeps state per character, ~200 bytes each on a long string.
TOKEN_RE = re.compile(
    r"""
    (?P<ws>[ \t\r\n\f\v]+|\#[^\n]*)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<number>0[xX][0-9A-Fa-f]*
      | (?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]*)?[fF]?)
  | (?P<string>"(?:[^"\\\n]++|\\[^\n])*+"|'(?:[^'\\\n]++|\\[^\n])*+')
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
_SIMPLE_ESCAPES = frozenset("abfnrtv\\?'\"01234567")
_HEX = frozenset("0123456789abcdefABCDEF")
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
    def _lazy(cls, offset: int, where: Positions) -> Pos:
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


class Positions:
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
        return line, protobuf_column(self.text[start:offset]) + 1


def protobuf_column(segment: str) -> int:
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
Tok = tuple[str, str, int]


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


def _escape(text: str, i: int) -> tuple[int, tuple[str, int] | None]:
    """The escape sequence at ``text[i] == "\\"``: where it ends, and protobuf's error if it is bad."""
    nxt = text[i + 1 : i + 2]
    if nxt and nxt in _SIMPLE_ESCAPES:
        return i + 2, None
    if nxt == "x":  # lowercase only, as in protobuf
        if text[i + 2 : i + 3] and text[i + 2] in _HEX:
            return i + 3, None
        return i + 2, ("Expected hex digits for escape sequence.", i + 2)
    if nxt == "u":
        for k in range(4):
            if not (text[i + 2 + k : i + 3 + k] and text[i + 2 + k] in _HEX):
                return i + 2 + k, ("Expected four hex digits for \\u escape sequence.", i + 2 + k)
        return i + 6, None
    if nxt == "U":  # 8 hex digits, at most 0010ffff
        rules = ["0", "0", "01"] + [_HEX] * 5
        for k, allowed in enumerate(rules):
            ch = text[i + 2 + k : i + 3 + k]
            if not ch or ch not in allowed:
                return i + 2 + k, ("Expected eight hex digits up to 10ffff for \\U escape sequence", i + 2 + k)
        return i + 10, None
    return i + 1, ("Invalid escape sequence in string literal.", i + 1)


def _string_error(text: str, start: int) -> tuple[str, int]:
    """Why the string starting at ``start`` does not lex, as protobuf's tokenizer says it."""
    quote = text[start]
    i = start + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            return "String literals cannot cross line boundaries.", i
        if ch == "\x00":
            return "Unexpected end of string.", i
        if ch == "\\":
            i, err = _escape(text, i)
            if err is not None:
                return err
            continue
        if ch == quote:
            break  # pragma: no cover - a well-formed string never reaches here
        i += 1
    return "Unexpected end of string.", n


def lex(text: str) -> list[Tok]:
    toks: list[Tok] = []
    append = toks.append
    for m in TOKEN_RE.finditer(text):
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
            if tok[0] == "." and toks and toks[-1][0] == "ident" and toks[-1][2] + len(toks[-1][1]) == start:
                err = ("Need space between identifier and decimal point.", start)  # `blah.123`
            if err is not None:
                append(("error", err[0], err[1]))
                return toks
            append((tkind, tok, start))
        elif kind == "string":
            if "\\" in tok or "\x00" in tok:
                bad = _bad_string(tok)
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


def _bad_string(lit: str) -> tuple[str, int] | None:
    """protobuf's error inside a lexed string literal (a bad escape, a NUL byte), offset within ``lit``."""
    i = 1
    end = len(lit) - 1
    while i < end:
        ch = lit[i]
        if ch == "\\":
            i, err = _escape(lit, i)
            if err is not None:
                return err
        elif ch == "\x00":
            return "Unexpected end of string.", i
        else:
            i += 1
    return None


_HEX2 = re.compile(r"[0-9A-Fa-f]{1,2}")
_OCT3 = re.compile(r"[0-7]{1,3}")


def decode_string(lit: str) -> str:
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
            m = _HEX2.match(body, i + 2)
            out.append(chr(int(m.group(), 16)) if m else nxt)
            i += 2 + (len(m.group()) if m else 0)
        elif nxt and nxt in "01234567":
            m = _OCT3.match(body, i + 1)
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


def number_value(text: str) -> int | float:
    t = text
    if t[:2] in ("0x", "0X"):
        return int(t, 16)
    if len(t) > 1 and t[0] == "0" and t.isdigit():
        return int(t, 8)
    if t.isdigit():
        return int(t)
    return float(t.rstrip("fF"))
