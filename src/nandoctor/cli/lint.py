"""``nandoctor lint FILE...``: static checks of nets and solvers (a solver brings its nets along)."""

from __future__ import annotations

import json

from nandoctor.cli.options import add_select_options, parse_input_shapes, split_codes
from nandoctor.core.types import Severity
from nandoctor.lint import lint_paths
from nandoctor.report.console import make_console
from nandoctor.report.findings_text import render_findings
from nandoctor.report.sarif import to_sarif

NAME = "lint"
HELP = "check solver/net prototxt files for settings that lead to NaN (exit 0 clean, 1 findings, 2 bad input)"


def add_arguments(p) -> None:
    p.add_argument("files", nargs="+", metavar="FILE", help="net or solver prototxt files")
    p.add_argument("--format", choices=("text", "json", "sarif"), default="text")
    p.add_argument(
        "--iters", type=int, help="iterations a pycaffe solver.step(N) run performs (max_iter is then no stop)"
    )
    p.add_argument(
        "--input-shape",
        action="append",
        default=[],
        metavar="BLOB=N,C,H,W",
        help="shape of an input blob, overriding what the net declares (repeatable)",
    )
    add_select_options(p)


def run(args) -> int:
    options = {"iters": args.iters, "input_shapes": parse_input_shapes(args.input_shape)}
    report, configs = lint_paths(args.files, options, split_codes(args.select), split_codes(args.ignore))
    findings = report.sorted()
    if args.format == "json":
        data = report.to_dict()
        data["problems"] = configs.problems
        print(json.dumps(data, indent=2))
    elif args.format == "sarif":
        print(json.dumps(to_sarif(findings), indent=2))
    else:
        console = make_console()
        for problem in configs.problems:
            console.print(f"[yellow]warning:[/yellow] {problem}")
        render_findings(console, findings)
    return 1 if any(f.severity is not Severity.INFO for f in findings) else 0
