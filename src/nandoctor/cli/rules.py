"""``nandoctor rules [CODE]``: list every rule, or print one rule's documentation."""

from __future__ import annotations

import json

from rich.markup import escape
from rich.table import Table

from nandoctor.core.registry import DOC_SECTIONS, all_rules, get_rule
from nandoctor.core.types import InputError
from nandoctor.report.console import make_console

NAME = "rules"
HELP = "list the rules, or show the documentation of one (e.g. nandoctor rules NAN101)"


def add_arguments(p) -> None:
    p.add_argument("code", nargs="?", help="a rule code such as NAN101")
    p.add_argument("--format", choices=("text", "json"), default="text")


def run(args) -> int:
    console = make_console()
    if args.code:
        cls = get_rule(args.code)
        if cls is None:
            raise InputError(f"no rule {args.code!r}; `nandoctor rules` lists them")
        docs = cls.docs()
        if args.format == "json":
            print(json.dumps(_rule_dict(cls), indent=2))
            return 0
        console.print(f"[bold]{cls.code}[/bold] {escape(cls.title)}")
        console.print(f"cause: {cls.cause.value}   default severity: {cls.severity.value}")
        for section in DOC_SECTIONS:
            console.print(f"\n[bold]{section}[/bold]")
            console.print(escape(docs[section]))
        return 0
    rules = all_rules()
    if args.format == "json":
        print(json.dumps([_rule_dict(c) for c in rules], indent=2))
        return 0
    table = Table(box=None, show_header=True, header_style="bold")
    for col in ("code", "cause", "severity", "title"):
        table.add_column(col)
    for cls in rules:
        table.add_row(cls.code, cls.cause.value, cls.severity.value, escape(cls.title))
    console.print(table)
    return 0


def _rule_dict(cls) -> dict:
    return {
        "code": cls.code,
        "title": cls.title,
        "cause": cls.cause.value,
        "severity": cls.severity.value,
        "needs": list(cls.needs),
        "docs": cls.docs(),
    }
