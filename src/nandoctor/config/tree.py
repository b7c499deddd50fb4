"""The parse tree of a protobuf text-format file: literals, fields, messages, the document.

Plain data with exact positions, shared by the parser (``config.textformat``) and the
schema checks that read a tree (``config.literals``, ``config.validate``, ``config.upgrade``);
it lives apart from the parser because the parser asks those checks for protobuf's words.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from nandoctor.config.tokenizer import TOKEN_RE, Pos
from nandoctor.core.types import Location

__all__ = ["Document", "Field", "Message", "Pos", "Scalar"]


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
            m = TOKEN_RE.match(self.text)
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
