"""Findings as text: ``path:line:col: CODE severity message``, then evidence and the fix."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.control import strip_control_codes
from rich.text import Text

from nandoctor.core.types import Finding, Severity
from nandoctor.report.console import visible

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
_TAB = "\t"


def render_finding(console: Console, f: Finding, indent: str = "") -> None:
    write_lines(console, finding_lines(f, indent))


def finding_lines(f: Finding, indent: str = "") -> list[list[tuple[str, str]]]:
    """The finding as lines of (text, style) runs: location, code, message, evidence, fix."""
    where = f"{f.location}: " if f.location else ""
    lines = [[(indent, ""), (where, "bold"), (f"{f.code} {f.severity.value}", _STYLE[f.severity]),
              (f" {f.message} ", ""), (f"({f.cause.value})", "dim")]]  # fmt: skip
    for ev in f.evidence:
        loc = f"{ev.location}: " if ev.location else ""
        lines.append([(f"{indent}    ", ""), ("evidence:", "dim"), (f" {loc}{ev.text}", "")])
    if f.fix:
        lines.append([(f"{indent}    ", ""), ("fix:", "green"), (f" {f.fix.description}", "")])
        for e in f.fix.edits:
            pos = f"{e.path}:{e.line}:{e.col}" if e.line else e.path
            old = e.old.replace("\n", "\\n")
            new = e.new.replace("\n", "\\n")
            lines.append([(f"{indent}        ", ""), (f"{pos}: {old!r} -> {new!r}", "dim")])
    return lines


def write_lines(console: Console, lines: list[list[tuple[str, str]]]) -> None:
    """Styled on a terminal; piped, the same text written straight to the stream.

    A log of thousands of runs gives tens of thousands of findings, and rich costs ~100 us
    a finding: a piped report of 50,000 took longer than reading the 1 GB log. rich's own
    plain output is the text with its control codes (BEL, BS, VT, FF, CR) stripped, the others shown as symbols (report.console); a line
    with a tab still goes through rich, which expands tabs by cell width.
    """
    if console.is_terminal:
        for runs in lines:
            console.print(Text.assemble(*runs))
        return
    out = []
    for runs in lines:
        text = "".join(t for t, _ in runs)
        if _TAB in text:
            if out:
                console.file.write("".join(out))
                out = []
            console.print(Text.assemble(*runs))
        else:
            out.append(visible(strip_control_codes(text)) + "\n")
    if out:
        console.file.write("".join(out))


def render_findings(console: Console, findings: list[Finding]) -> None:
    for f in findings:
        render_finding(console, f)
    counts = Counter(f.severity for f in findings)
    if not findings:
        console.print("[green]No findings.[/green]")
        return
    parts = [f"{counts[s]} {s.value}{'s' if counts[s] != 1 else ''}" for s in Severity if counts[s]]
    console.print(f"Found {len(findings)}: " + ", ".join(parts) + ".")
