"""One place that decides how terminal output looks: rich on a terminal, plain text when piped."""

from __future__ import annotations

import sys

from rich.console import Console


def make_console(file=None) -> Console:
    stream = file or sys.stdout
    interactive = hasattr(stream, "isatty") and stream.isatty()
    return Console(
        file=stream,
        highlight=False,
        soft_wrap=not interactive,
        force_terminal=None if interactive else False,
        no_color=not interactive,
        emoji=False,
        width=None if interactive else 10_000,
    )
