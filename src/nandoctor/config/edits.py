"""Exact text edits of a prototxt: replace a value, add a field, apply the edits to the text.

Every fix is a list of ``core.types.Edit`` (character offsets of the file's text, the old
text and the new), so comments, order and spelling outside the edit stay as the user wrote
them. ``apply_edits`` refuses an edit whose old text is not where it says (the file changed
since it was read) and overlapping edits, so a fix is applied exactly or not at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from nandoctor.config.tree import Document, Message, Scalar
from nandoctor.core.types import Edit


def replace_edit(path: str, scalar: Scalar, new: str) -> Edit:
    """Replace the literal ``scalar`` (as written, sign and quotes included) with ``new``."""
    return Edit(path, scalar.start.offset, scalar.end, scalar.text, new, scalar.start.line, scalar.start.col)


def insert_field_edit(doc: Document, msg: Message, text: str) -> Edit | None:
    """Insert ``text`` (e.g. ``round_mode: FLOOR``) as the last field of ``msg``, matching its layout."""
    if not msg.fields:
        if msg.end is None:
            return None
        at = msg.end - 1  # just before the closing brace
        return Edit(doc.path, at, at, "", f" {text} ")
    last = msg.fields[-1]
    end = last.value.end if isinstance(last.value, (Scalar, Message)) else None
    if end is None:
        return None
    src = doc.text
    same_line = "\n" not in src[msg.fields[0].name_pos.offset : end] and (
        msg.start is not None and "\n" not in src[msg.start.offset : msg.fields[0].name_pos.offset]
    )
    if same_line:
        new = f" {text}"
    else:
        line_start = src.rfind("\n", 0, last.name_pos.offset) + 1
        indent = src[line_start : last.name_pos.offset]
        newline = "\r\n" if src[line_start - 2 : line_start] == "\r\n" else "\n"
        new = f"{newline}{indent if not indent.strip() else ''}{text}"
        eol = src.find("\n", end)
        eol = len(src) if eol < 0 else eol
        rest = src[end:eol].rstrip("\r")
        if not rest.strip() or rest.strip().startswith("#"):
            end = end + len(rest)  # after a trailing comment, so it stays with its own field
    line = src.count("\n", 0, end) + 1
    col = end - (src.rfind("\n", 0, end) + 1) + 1
    return Edit(doc.path, end, end, "", new, line, col)


def insert_edit(solver: Any, name: str, value_text: str) -> Edit:
    """Insert a new ``name: value`` line after the last top-level field, using the
    indentation of that field and the file's newline style."""
    text = solver.doc.text
    newline = "\r\n" if "\r\n" in text else "\n"
    top = solver.msg.fields
    if not top:
        return Edit(solver.path, 0, 0, "", f"{name}: {value_text}{newline}", 1, 1)
    last = top[-1]
    end = last.value.end
    if end is None:
        end = len(text)
    eol = _end_of_line(text, end)
    line_start = text.rfind("\n", 0, last.name_pos.offset) + 1
    indent = re.match(r"[ \t]*", text[line_start:]).group()
    new = f"{newline}{indent}{name}: {value_text}"
    line = text.count("\n", 0, eol) + 1
    col = eol - (text.rfind("\n", 0, eol) + 1) + 1
    return Edit(solver.path, eol, eol, "", new, line, col)


def _end_of_line(text: str, pos: int) -> int:
    """Offset of the end of the line holding ``pos`` (before ``\\r\\n``/``\\n``); a trailing
    comment on that line stays on it."""
    nl = text.find("\n", pos)
    if nl < 0:
        return len(text)
    return nl - 1 if nl > 0 and text[nl - 1] == "\r" else nl


def _end_of_line(text: str, pos: int) -> int:
    """Offset of the end of the line holding ``pos`` (before ``\\r\\n``/``\\n``); a trailing
    comment on that line stays on it."""
    nl = text.find("\n", pos)
    if nl < 0:
        return len(text)
    return nl - 1 if nl > 0 and text[nl - 1] == "\r" else nl


def apply_edits(text: str, edits: Iterable[Edit]) -> str:
    """Apply non-overlapping edits (by character offsets of ``text``); identical duplicates count once."""
    unique = sorted({(e.start, e.end, e.old, e.new): e for e in edits}.values(), key=lambda e: (e.start, e.end))
    out: list[str] = []
    cursor = 0
    for e in unique:
        if e.start < cursor:
            raise ValueError(f"overlapping edits at offset {e.start} in {e.path}")
        if text[e.start : e.end] != e.old:
            raise ValueError(
                f"edit at offset {e.start} of {e.path} expected {e.old!r}, found {text[e.start : e.end]!r}"
            )
        out.append(text[cursor : e.start])
        out.append(e.new)
        cursor = e.end
    out.append(text[cursor:])
    return "".join(out)
