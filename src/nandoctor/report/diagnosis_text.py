"""A diagnosis for people: the verdict, the ranked causes, the evidence and the fix."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from nandoctor.core.types import Diagnosis, Severity, Verdict
from nandoctor.report.findings_text import render_finding

_VERDICT = {
    Verdict.NAN: ("bold red", "training went NaN"),
    Verdict.DIVERGING: ("bold yellow", "training is diverging"),
    Verdict.WILL_FAIL: ("bold red", "this configuration will fail"),
    Verdict.HEALTHY: ("bold green", "healthy: no sign of NaN"),
    Verdict.INCONCLUSIVE: ("bold", "inconclusive"),
}


def render_diagnosis(
    console: Console, d: Diagnosis, *, all_findings: bool = False, title: str | None = None, findings: bool = True
) -> None:
    style, words = _VERDICT[d.verdict]
    if d.verdict is Verdict.NAN and d.first_nonfinite_iteration is None:
        words = "training failed: Caffe stopped on a check that guards against NaN"
    head = f"[{style}]{words}[/{style}]"
    if d.first_nonfinite_iteration is not None:
        head += f" (first non-finite value at iteration {d.first_nonfinite_iteration})"
    if title:
        console.print(f"[bold]{escape(title)}[/bold]")
    console.print(head)
    if d.causes:
        console.print()
        console.print("[bold]Causes, ranked[/bold]")
        for rank, c in enumerate(d.causes, 1):
            culprit = f" -- culprit: [bold]{escape(c.culprit)}[/bold]" if c.culprit else ""
            console.print(f"  {rank}. {c.cause.value} ({c.confidence:.0%}){culprit}")
            if c.explanation:
                console.print(f"     {escape(c.explanation)}")
        top = d.causes[0]
        _bullets(console, "Evidence", [f"{ev.location}: {ev.text}" if ev.location else ev.text for ev in top.evidence])
        if top.fixes:
            console.print()
            console.print("[bold green]Fix[/bold green]")
            for fx in top.fixes:
                console.print(f"  - {escape(fx.description)}")
                for e in fx.edits:
                    console.print(
                        f"      [dim]{escape(f'{e.path}:{e.line}:{e.col}')}: {escape(repr(e.old))} -> {escape(repr(e.new))}[/dim]"
                    )
    _bullets(console, "Warnings", d.warnings)
    _bullets(console, "Ruled out", [f"{cause.value}: {why}" for cause, why in d.ruled_out])
    _bullets(console, "What would settle it", d.next_steps)
    shown = [f for f in d.findings if all_findings or f.severity is not Severity.INFO]
    if findings and shown and (all_findings or d.verdict is not Verdict.HEALTHY):
        console.print()
        console.print("[bold]Findings[/bold]")
        for f in shown:
            render_finding(console, f, indent="  ")


def _bullets(console: Console, heading: str, items: list[str]) -> None:
    if not items:
        return
    console.print()
    console.print(f"[bold]{heading}[/bold]")
    for item in items:
        console.print(f"  - {escape(item)}")
