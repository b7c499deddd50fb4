"""``nandoctor log RUN`` for a Hugging Face Trainer, Lightning or TensorBoard run.

The same three outputs as for a Caffe log: a trace summary (what was read, the logged
steps, evaluation passes, the first non-finite step and where it was read) with the
NAN7xx findings, ``--csv DIR`` (:mod:`nandoctor.runs.export`) and ``--plot PNG``;
``--json`` prints the scalars and the findings. Exit 1 when there are findings.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from rich.markup import escape

from nandoctor.core.registry import Facts, run_rules, select_rules
from nandoctor.core.types import Finding
from nandoctor.runs.detect import read_run, run_kind
from nandoctor.runs.export import cell, plot_run, where_text, write_run_csv
from nandoctor.runs.record import TRAIN_FIELDS, RunLog
from nandoctor.runs.timeline import RunTimeline, build_timeline


def is_framework_run(path: str) -> bool:
    """Whether ``nandoctor log`` should read ``path`` as a framework run rather than a Caffe log."""
    return run_kind(path) is not None


def run_findings(tl: RunTimeline, select=(), ignore=()) -> list[Finding]:
    rules = [c for c in select_rules(select or ["NAN7"], ignore) if "run" in c.needs]
    return list(run_rules(Facts(run=tl), rules))


def summary_lines(run: RunLog, tl: RunTimeline) -> list[str]:
    """Plain-text lines (rich markup escaped) describing what was read and when it went wrong."""
    files = ", ".join(_relative(f, run.path) for f in run.files[:4]) + (
        f" (+{len(run.files) - 4})" if len(run.files) > 4 else ""
    )
    lines = [f"[bold]{escape(str(run.path))}[/bold]: {run.kind} run, read from {escape(files)}"]
    parts = []
    if run.points:
        parts.append(f"steps {run.points[0].step}-{run.points[-1].step} ({len(run.points)} logged)")
        logged = [f for f in TRAIN_FIELDS if f != "epoch" and any(getattr(p, f) is not None for p in run.points)]
        parts.append("scalars " + "/".join(logged))
    if run.evals:
        parts.append(f"{len(run.evals)} evaluation pass(es)")
    if run.args_source:
        parts.append(f"arguments from {escape(Path(run.args_source).name)}")
    onset = tl.onset_step
    if onset is not None:
        first = next((x for x in (tl.onset, tl.first_bad_eval, tl.first_bad_lr) if x and x.step == onset), None)
        where = where_text(first.where) if first is not None else ""
        reason = tl.onset_reason if tl.onset is not None and tl.onset.step == onset else "evaluation"
        parts.append(f"[red]first non-finite at step {onset} ({escape(reason)}; {escape(where)})[/red]")
    elif run.points:
        losses = [p.loss for p in run.points if p.loss is not None and math.isfinite(p.loss)]
        parts.append(f"finite throughout (last loss {losses[-1]:g})" if losses else "no finite loss logged")
    if tl.masked:
        parts.append(f"[yellow]{len(tl.masked)} logged step(s) hide a NaN behind logging_nan_inf_filter[/yellow]")
    lines.append("  " + ", ".join(parts))
    lines.extend(f"  note: {escape(n)}" for n in run.notes)
    return lines


def _relative(file: str, root: Path) -> str:
    try:
        return str(Path(file).relative_to(root))
    except ValueError:
        return Path(file).name


def run_to_dict(run: RunLog, findings: list[Finding]) -> dict:
    return {
        "source": run.kind,
        "path": str(run.path),
        "files": run.files,
        "args_source": run.args_source,
        "notes": run.notes,
        "train": [{"step": p.step, **{f: cell(getattr(p, f)) or None for f in TRAIN_FIELDS}} for p in run.points],
        "eval": [{"step": e.step, "metrics": {k: cell(v) for k, v in e.metrics.items()}} for e in run.evals],
        "findings": [f.to_dict() for f in findings],
    }


def log_run(args, console) -> int:
    """The ``nandoctor log`` command on a framework run (``args`` as parsed by cli/log.py)."""
    from nandoctor.cli.options import split_codes
    from nandoctor.report.findings_text import render_findings

    run = read_run(args.logfile)
    tl = build_timeline(run)
    findings = run_findings(tl, split_codes(args.select), split_codes(args.ignore))
    quiet = bool(args.json)
    if args.csv:
        for path in write_run_csv(run, args.csv):
            if not quiet:
                console.print(f"wrote {escape(str(path))}")
    if args.plot:
        target = plot_run(run, args.plot)
        if not quiet:
            console.print(f"wrote {escape(str(target))}")
    if getattr(args, "heatmap", None) and not quiet:
        console.print("no debug_info in a framework run: no heat map written")
    if quiet:
        json.dump(run_to_dict(run, findings), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        for line in summary_lines(run, tl):
            console.print(line, highlight=False)
        render_findings(console, findings)
    return 1 if findings else 0
