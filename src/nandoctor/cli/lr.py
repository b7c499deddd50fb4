"""``nandoctor lr SOLVER``: the learning-rate schedule exactly as Caffe computes it, and its problems."""

from __future__ import annotations

import json

import numpy as np

from nandoctor.config import lr
from nandoctor.config.solver import load_solver
from nandoctor.config.textformat import parse_file
from nandoctor.core.registry import Facts, run_rules, select_rules
from nandoctor.core.types import InputError, Report, Severity
from nandoctor.report.console import make_console
from nandoctor.report.findings_text import render_findings
from nandoctor.rules.solver._shared import MAX_ANALYSED, analysis

NAME = "lr"
HELP = "print a solver's learning-rate schedule as Caffe computes it, with its problems (and a plot)"
MAX_TEXT_ROWS = 40  # the text table is for reading: change/display points, sampled when there are more


def add_arguments(p) -> None:
    p.add_argument("solver", metavar="SOLVER", help="solver prototxt")
    p.add_argument(
        "--iters", type=int, help="iterations a pycaffe solver.step(N) run performs (max_iter is then no stop)"
    )
    p.add_argument("--format", choices=("text", "json", "csv"), default="text")
    p.add_argument("--plot", metavar="PNG", help="write a plot of the schedule (log scale) to this file")
    p.add_argument(
        "--unchecked",
        action="store_true",
        help="where Caffe (2018+) aborts on a parameter check, show what builds without the checks "
        "(Caffe 1.0 and older) compute instead",
    )


def run(args) -> int:
    if args.iters is not None and not 0 <= args.iters <= lr.INT32[1]:
        raise InputError(f"--iters {args.iters}: expected 0..{lr.INT32[1]}")
    solver = load_solver(parse_file(args.solver))
    params = lr.LrParams.from_solver(solver)
    horizon = lr.horizon(params, args.iters)
    stop = min(horizon.stop, MAX_ANALYSED)
    facts = Facts(solver=solver, options={"iters": args.iters})
    report = Report(inputs=[args.solver])
    report.extend(run_rules(facts, select_rules(["NAN2"])))
    findings = report.sorted()
    abort = lr.caffe_abort(params)
    rates = analysis(facts).rates if stop > 0 else None  # the schedule the rules analysed (cached)
    if abort is not None and args.unchecked and stop > 0:
        try:
            rates = lr.schedule(params, stop, checks=False)
            abort = None  # shown as computed; the finding still says what newer builds do
        except lr.LrAbort:
            pass  # no rate in any build: unknown policy, or SIGFPE for step without stepsize
    rows = _rows(params, rates, stop)

    if args.format == "csv":
        print("iteration,lr")
        for it in rows:
            print(f"{it},{lr.format_lr(rates[it])}")
    elif args.format == "json":
        data = {
            "solver": args.solver,
            "policy": params.policy,
            "horizon": {"runner": horizon.runner, "iterations": horizon.stop, "evaluated": stop},
            "caffe_abort": abort.text if abort else None,
            "schedule": [{"iteration": int(it), "lr": lr.format_lr(rates[it])} for it in rows],
            "findings": [f.to_dict() for f in findings],
        }
        print(json.dumps(data, indent=2))
    else:
        _text(args.solver, params, horizon, abort, rates, rows, findings)
    if args.plot:
        if rates is None or rates.size == 0:
            raise InputError("no schedule to plot (Caffe aborts, or the run has no iteration)", args.solver)
        from nandoctor.report.lr_plot import plot_schedule

        plot_schedule(
            rates, args.plot, title=f"{args.solver}: lr_policy {params.policy}", changes=lr.changes(params, stop)
        )
    return 1 if any(f.severity is not Severity.INFO for f in findings) else 0


def _rows(params, rates, stop: int) -> np.ndarray:
    """Iterations to list: where the rate changes, plus the display points."""
    if rates is None or stop == 0:
        return np.zeros(0, dtype=np.int64)
    bits = rates.view(np.uint32)
    changed = np.concatenate(([0], np.flatnonzero(bits[1:] != bits[:-1]) + 1))
    return np.union1d(changed, lr.display_points(params, stop)).astype(np.int64)


def _text(path, params, horizon, abort, rates, rows, findings) -> None:
    console = make_console()
    console.print(f"[bold]{path}[/bold]: lr_policy {params.policy or '(not set)'}; {horizon.describe()}")
    if horizon.stop > MAX_ANALYSED:
        console.print(f"(only the first {MAX_ANALYSED:,} iterations are evaluated)")
    if abort is not None:
        console.print(f"Caffe aborts at iteration 0: {abort.text}")
    elif rows.size:
        bits = rates.view(np.uint32)
        changed = np.concatenate(([0], np.flatnonzero(bits[1:] != bits[:-1]) + 1, [rates.size - 1]))
        shown = np.unique(changed)
        if shown.size > MAX_TEXT_ROWS:  # a smooth schedule changes every iteration: sample it
            shown = np.unique(shown[np.linspace(0, shown.size - 1, MAX_TEXT_ROWS).astype(np.int64)])
            # the moments a reader looks for survive the sampling: first zero, first negative, first non-finite
            special = [
                np.flatnonzero(~np.isfinite(rates))[:1],
                np.flatnonzero(rates < 0)[:1],
                np.flatnonzero(rates == 0)[:1],
            ]
            shown = np.union1d(shown, np.concatenate(special)).astype(np.int64)
        console.print(f"{shown.size} of {rows.size} change/display points shown (--format csv lists all)")
        steps = set(lr.multistep_advances(params.stepvalues)) if params.policy == "multistep" else set()
        console.print(f"{'iteration':>10}  lr")
        for it in shown:
            note = "  (MultiStep Status)" if int(it) in steps else ""
            console.print(f"{int(it):>10}  {lr.format_lr(rates[it])}{note}")
    else:
        console.print("no iteration runs (max_iter <= 0; pass --iters N for a solver.step(N) run)")
    if findings:
        console.print("")
        render_findings(console, findings)
