"""``nandoctor lint FILE...``: static checks of nets and solvers (a solver brings its nets along).

Made to run as a pre-commit hook and a CI step: ``--format github`` prints workflow
annotations, ``--select``/``--ignore`` take codes or prefixes (``NAN1``) as ruff does,
``--exit-zero`` reports without failing, and ``# nandoctor: noqa[: NAN123]`` at the end of a
prototxt line silences findings on that line.
"""

from __future__ import annotations

import json
import sys

from nandoctor.cli.options import add_select_options, parse_input_shapes, split_codes
from nandoctor.config.forks import FLAVORS, flavor_id
from nandoctor.config.noqa import drop_silenced
from nandoctor.core.registry import all_rules
from nandoctor.core.types import InputError, Severity
from nandoctor.lint import lint_paths
from nandoctor.report.console import make_console
from nandoctor.report.findings_text import render_findings
from nandoctor.report.github import to_github
from nandoctor.report.sarif import to_sarif

NAME = "lint"
HELP = "check solver/net prototxt files for settings that lead to NaN (exit 0 clean, 1 findings, 2 bad input)"


def add_arguments(p) -> None:
    p.add_argument("files", nargs="+", metavar="FILE", help="net or solver prototxt files")
    p.add_argument("--format", choices=("text", "json", "sarif", "github"), default="text")
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
    p.add_argument(
        "--caffe",
        metavar="FLAVOR",
        help=f"the Caffe that runs the files ({', '.join(FLAVORS)}); default: recognised from each file",
    )
    p.add_argument("--exit-zero", action="store_true", help="exit 0 even when there are findings")
    add_select_options(p)


def check_selectors(codes: list[str], option: str) -> list[str]:
    """Codes or prefixes, as ruff takes them; one that names no rule is a mistake worth saying."""
    known = [cls.code for cls in all_rules()]
    if "ALL" in codes:
        return [] if option == "--select" else ["NAN"]
    for code in codes:
        if not any(k.startswith(code) for k in known):
            raise InputError(f"{option} {code}: no rule code starts with it (`nandoctor rules` lists them)")
    return codes


def run(args) -> int:
    options = {"iters": args.iters, "input_shapes": parse_input_shapes(args.input_shape)}
    if args.caffe:
        try:
            options["caffe"] = flavor_id(args.caffe)
        except ValueError as e:
            raise InputError(f"--caffe: {e}") from None
    select = check_selectors(split_codes(args.select), "--select")
    ignore = check_selectors(split_codes(args.ignore), "--ignore")
    report, configs = lint_paths(args.files, options, select, ignore)
    texts = {doc.path: doc.text for doc, _ in configs.documents}
    report.findings, silenced = drop_silenced(report.findings, texts)
    findings = report.sorted()
    if args.format == "json":
        data = report.to_dict()
        data["problems"] = configs.problems
        data["silenced"] = silenced
        print(json.dumps(data, indent=2))
    elif args.format == "sarif":
        print(json.dumps(to_sarif(findings), indent=2))
    elif args.format == "github":
        sys.stdout.write(to_github(findings))
        for problem in configs.problems:
            print(f"::warning title=nandoctor::{problem}")
    else:
        console = make_console()
        for problem in configs.problems:
            console.print(f"[yellow]warning:[/yellow] {problem}")
        render_findings(console, findings)
        if silenced:
            console.print(f"({silenced} silenced by noqa comments)")
    if args.exit_zero:
        return 0
    return 1 if any(f.severity is not Severity.INFO for f in findings) else 0
