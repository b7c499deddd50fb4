"""Markdown pieces: rule docstrings made safe for Python-Markdown, code spans and fences."""

from __future__ import annotations

import re
from collections.abc import Callable

_CODE_SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)", re.S)
_INTRAWORD_STAR = re.compile(r"(?<=[\w).\]])\*(?=[\w(.])")
RULE_CODE = re.compile(r"\bNAN\d{3}\b")


def prose(text: str, link: Callable[[str], str | None]) -> str:
    """A docstring section as Markdown: code spans kept as they are; outside them ``<`` is
    escaped (``x<N>`` would vanish as an HTML tag), a ``*`` inside a product such as
    ``channels*height*width`` is escaped (it would turn into emphasis), and each rule code is
    linked where ``link`` gives a target."""
    out, last = [], 0
    for m in _CODE_SPAN.finditer(text):
        out.append(_plain(text[last : m.start()], link))
        out.append(m.group(0))
        last = m.end()
    out.append(_plain(text[last:], link))
    return "".join(out)


def _plain(text: str, link: Callable[[str], str | None]) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;")
    text = _INTRAWORD_STAR.sub(r"\\*", text)

    def linked(m: re.Match) -> str:
        target = link(m.group(0))
        return f"[{m.group(0)}]({target})" if target else m.group(0)

    return RULE_CODE.sub(linked, text)


def code_span(text: str) -> str:
    """``text`` as one inline code span, whatever backticks it holds."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def fence(text: str, info: str = "text") -> str:
    """A fenced code block that no run of backticks inside ``text`` can close early."""
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=2)
    marks = "`" * (longest + 1)
    body = text if text.endswith("\n") else text + "\n"
    return f"{marks}{info}\n{body}{marks}\n"


def cell(text: str) -> str:
    """Text for a table cell: a pipe would end the cell, a newline the row."""
    return text.replace("|", "\\|").replace("\n", " ")
