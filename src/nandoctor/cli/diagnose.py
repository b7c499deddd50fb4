"""``nandoctor diagnose RUN_DIR``: name the cause with evidence and write the fix."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from nandoctor.core.types import Diagnosis, InputError, Verdict
from nandoctor.diagnose.inputs import discover
from nandoctor.report.console import make_console
from nandoctor.report.diagnosis_text import render_diagnosis
from nandoctor.report.sarif import to_sarif

NAME = "diagnose"
HELP = "find why a Caffe run went NaN (or will): the cause, the evidence and the fix (exit 0 healthy, 1 problem, 2 bad input)"


def add_arguments(p) -> None:
    p.add_argument(
        "target", nargs="?", help="a run folder, a log, a solver/net prototxt, or a PyTorch reproducer bundle"
    )
    p.add_argument("--log", help="the training log (Caffe's stderr); '-' reads a pasted excerpt from stdin")
    p.add_argument("--solver", help="solver.prototxt")
    p.add_argument("--net", action="append", default=[], help="net prototxt (repeatable)")
    p.add_argument("--data-root", help="folder the data sources are relative to (default: the run folder)")
    p.add_argument("--no-data", action="store_true", help="do not scan the data sets")
    p.add_argument("--iters", type=int, help="iterations a pycaffe solver.step(N) run performs")
    p.add_argument("--format", choices=("text", "json", "sarif"), default="text")
    p.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report with plots")
    p.add_argument("--fix", metavar="OUTDIR", help="write patched copies of the configs and a unified diff here")
    p.add_argument("--all", action="store_true", help="show every finding, informational ones too")
    follow = p.add_argument_group("following a run still training")
    follow.add_argument(
        "--follow",
        action="store_true",
        help="follow the log as Caffe writes it; when a value turns nan/inf, diagnose and exit 1",
    )
    follow.add_argument("--interval", type=float, default=1.0, help="--follow: seconds between looks (default 1)")
    follow.add_argument(
        "--timeout", type=float, default=None, help="--follow: give up after this many seconds (exit 0)"
    )
    follow.add_argument("--on-nan", metavar="CMD", help="--follow: command to run when the run goes bad")


def run(args) -> int:
    if args.target is None and not (args.log or args.solver or args.net):
        raise InputError("give a run folder, a log or a prototxt (see nandoctor diagnose --help)")
    if args.log == "-":
        from nandoctor.core.safeio import terminate_as_exit

        with terminate_as_exit(), _stdin_excerpt() as excerpt:
            args.log = excerpt
            return run(args)
    if args.target is not None and not (args.log or args.solver or args.net) and _framework_run(args.target):
        from nandoctor.runs import diagnose_run

        diagnosis = diagnose_run(args.target)
        if args.html:
            write_html(diagnosis, None, args.html, title=f"nandoctor: {args.target}")
        _print(diagnosis, args, [])
        return exit_code(diagnosis)
    inputs = discover(args.target, log=args.log, solver=args.solver, nets=args.net, data_root=args.data_root)
    if getattr(args, "follow", False):
        return _follow(args, inputs)
    if inputs.bundle is not None:
        from nandoctor.torch import diagnose_bundle

        diagnosis, gathered = diagnose_bundle(inputs.bundle), None
    else:
        from nandoctor.diagnose.engine import diagnose

        options = {"iters": args.iters} if args.iters else {}
        diagnosis, gathered = diagnose(inputs, scan_data=not args.no_data, options=options)
    written = write_fix(diagnosis, args.fix) if args.fix else []
    if args.html:
        write_html(diagnosis, gathered, args.html, title=f"nandoctor: {args.target or args.log}")
    _print(diagnosis, args, written)
    return exit_code(diagnosis)


def _follow(args, inputs) -> int:
    """Follow the run's log like ``watch``; the moment it turns bad, the full diagnosis (then exit 1)."""
    from nandoctor.cli.watch import follow, on_nan

    if inputs.log is None:
        raise InputError("--follow needs the training log (give --log or a run folder with one)")
    if follow(str(inputs.log), make_console(), args.interval, args.timeout) is None:
        return 0
    from nandoctor.diagnose.engine import diagnose

    diagnosis, _gathered = diagnose(
        inputs, scan_data=not args.no_data, options={"iters": args.iters} if args.iters else {}
    )
    _print(diagnosis, args, [])
    on_nan(args.on_nan)
    sys.stdout.flush()
    return 1


def _framework_run(target: str) -> bool:
    """A Hugging Face Trainer, Lightning or TensorBoard run (or a pasted console log of one)."""
    from nandoctor.runs import run_kind

    return run_kind(target) is not None


def write_fix(diagnosis: Diagnosis, out_dir: str) -> list[Path]:
    """Patched copies for the top cause's edits (plus fix.diff); the originals stay as they are."""
    from nandoctor.fixes import write_fixes

    edits = [e for c in diagnosis.causes[:1] for fx in c.fixes for e in fx.edits]
    written = write_fixes(edits, out_dir)
    diagnosis.inputs["fix_files"] = [str(p) for p in written]
    return written


def write_html(diagnosis: Diagnosis, gathered, path: str, title: str) -> None:
    from nandoctor.report.html import render_html
    from nandoctor.report.plots import diagnosis_plots

    plots = diagnosis_plots(gathered) if gathered is not None else []
    from nandoctor.core.safeio import write_file

    write_file(path, render_html(diagnosis, plots, title=title), _input_paths(diagnosis), what="HTML report")


def _input_paths(d: Diagnosis) -> list[str]:
    found = [d.inputs.get("log"), d.inputs.get("solver"), *d.inputs.get("nets", []), *d.inputs.get("debug_logs", [])]
    return [p for p in found if isinstance(p, str)]


def exit_code(d: Diagnosis) -> int:
    return 0 if d.verdict is Verdict.HEALTHY else 1


@contextlib.contextmanager
def _stdin_excerpt() -> Iterator[str]:
    """A pasted excerpt becomes a temporary log file (the parser streams files), removed on every way out."""
    import shutil
    import tempfile

    fd, name = tempfile.mkstemp(prefix="nandoctor-excerpt-", suffix=".log")
    try:
        with open(fd, "wb") as fh:
            shutil.copyfileobj(sys.stdin.buffer, fh, 1 << 20)
        yield name
    finally:
        Path(name).unlink(missing_ok=True)


def _print(d: Diagnosis, args, written: list[Path]) -> None:
    if args.format == "json":
        print(json.dumps(d.to_dict(), indent=2, default=str))
        return
    if args.format == "sarif":
        print(json.dumps(to_sarif(d.findings), indent=2))
        return
    console = make_console()
    render_diagnosis(console, d, all_findings=args.all)
    if written:
        console.print()
        console.print("[bold]Fixed copies written[/bold] (originals untouched):")
        for p in written:
            console.print(f"  {p}")
    elif args.fix:
        console.print()
        console.print("No file edit to write for this cause (the fix above is advice or a data rebuild).")
    if args.html:
        console.print(f"HTML report: {args.html}")
