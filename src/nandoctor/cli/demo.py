"""``nandoctor demo``: diagnose the example runs that ship with nandoctor, one per cause.

Each example (``nandoctor/examples/<cause>/``) is a small run folder with its solver,
net, HDF5 data and the log of a training run that went NaN for that reason (the
``healthy`` one did not). The demo shows what ``nandoctor diagnose RUN_DIR`` says about
each, then a summary table: a quick tour, and a self-check of the installation.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from rich.table import Table

from nandoctor.diagnose.engine import diagnose
from nandoctor.diagnose.inputs import discover
from nandoctor.report.console import make_console
from nandoctor.report.diagnosis_text import render_diagnosis

NAME = "demo"
HELP = "diagnose the bundled example runs (one per cause) and show the reports"
ORDER = ("healthy", "gradient_explosion", "lr_policy", "loss_function", "bad_input", "pooling")


def examples_dir() -> Path:
    return Path(str(resources.files("nandoctor") / "examples"))


def add_arguments(p) -> None:
    p.add_argument("names", nargs="*", metavar="EXAMPLE", help=f"which examples (default: all of {', '.join(ORDER)})")
    p.add_argument("--brief", action="store_true", help="only the summary table")


def run(args) -> int:
    root = examples_dir()
    names = args.names or [n for n in ORDER if (root / n).is_dir()]
    console = make_console()
    rows = []
    for name in names:
        folder = root / name
        if not folder.is_dir():
            console.print(f"[red]no example named {name}[/red] (have: {', '.join(ORDER)})")
            return 2
        d, _g = diagnose(discover(folder))
        top = d.causes[0] if d.causes else None
        got = top.cause.value if top else "healthy"
        rows.append((name, d.verdict.value, got, top.culprit if top else "-", f"{top.confidence:.0%}" if top else "-"))
        if not args.brief:
            console.print(f"[bold]=== example: {name}[/bold] ({folder})")
            render_diagnosis(console, d, findings=False)
            console.print()
    table = Table(title="nandoctor demo: bundled example runs")
    for col in ("example", "verdict", "top cause", "culprit", "confidence", "as expected"):
        table.add_column(col)
    wrong = 0
    for name, verdict, got, culprit, conf in rows:
        ok = got == name
        wrong += not ok
        table.add_row(name, verdict, got, culprit or "-", conf, "yes" if ok else "[red]NO[/red]")
    console.print(table)
    console.print(f"Try it on your own run: [bold]nandoctor diagnose RUN_DIR[/bold] (the examples are in {root})")
    return 1 if wrong else 0
