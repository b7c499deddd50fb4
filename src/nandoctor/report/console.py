"""One place that decides how terminal output looks: rich on a terminal, plain text when piped.

Text from inputs (layer names, paths, log lines) may hold control characters: an escape
sequence in a layer name would clear the screen or retitle the terminal. Every string and
rich Text printed here shows them as visible symbols instead (one character for one, so the
styles of a Text stay where they were).
"""

from __future__ import annotations

import re
import sys

from rich.console import Console
from rich.text import Text

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _symbol(m: re.Match) -> str:
    code = ord(m.group())
    if code < 0x20:
        return chr(0x2400 + code)  # the Unicode "control pictures": ␛ for ESC
    return "\u2421" if code == 0x7F else "\ufffd"


def visible(text: str) -> str:
    """``text`` with every control character but newline and tab shown as a symbol."""
    return _CONTROL.sub(_symbol, text)


class _InertConsole(Console):
    def render_str(self, text: str, *args, **kwargs) -> Text:
        return super().render_str(visible(text), *args, **kwargs)

    def print(self, *objects, **kwargs) -> None:
        super().print(*(_inert(o) for o in objects), **kwargs)


def _inert(obj):
    if isinstance(obj, Text) and _CONTROL.search(obj.plain):
        obj = obj.copy()
        obj.plain = visible(obj.plain)
    return obj


def make_console(file=None) -> Console:
    stream = file or sys.stdout
    interactive = hasattr(stream, "isatty") and stream.isatty()
    return _InertConsole(
        file=stream,
        highlight=False,
        soft_wrap=not interactive,
        force_terminal=None if interactive else False,
        no_color=not interactive,
        emoji=False,
        width=None if interactive else 10_000,
    )
