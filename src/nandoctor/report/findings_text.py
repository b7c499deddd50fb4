"""Findings as text: ``path:line:col: CODE severity message``, then evidence and the fix."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.markup import escape

from nandoctor.core.types import Finding, Severity

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def render_finding(console: Console, f: Finding, indent: str = "") -> None:
    where = f"{f.location}: " if f.location else ""
    style = _STYLE[f.severity]
    console.print(
        f"{indent}[bold]{escape(where)}[/bold][{style}]{f.code} {f.severity.value}[/{style}] "
        f"{escape(f.message)} [dim]({f.cause.value})[/dim]"
    )
    for ev in f.evidence:
        loc = f"{ev.location}: " if ev.location else ""
        console.print(f"{indent}    [dim]evidence:[/dim] {escape(loc)}{escape(ev.text)}")
    if f.fix:
        console.print(f"{indent}    [green]fix:[/green] {escape(f.fix.description)}")
        for e in f.fix.edits:
            pos = f"{e.path}:{e.line}:{e.col}" if e.line else e.path
            old = e.old.replace("\n", "\\n")
            new = e.new.replace("\n", "\\n")
            console.print(f"{indent}        [dim]{escape(pos)}: {escape(repr(old))} -> {escape(repr(new))}[/dim]")


def render_findings(console: Console, findings: list[Finding]) -> None:
    for f in findings:
        render_finding(console, f)
    counts = Counter(f.severity for f in findings)
    if not findings:
        console.print("[green]No findings.[/green]")
        return
    parts = [f"{counts[s]} {s.value}{'s' if counts[s] != 1 else ''}" for s in Severity if counts[s]]
    console.print(f"Found {len(findings)}: " + ", ".join(parts) + ".")
