"""``nandoctor log train.log``: parse a Caffe log, summarise its runs and report the log symptoms."""

from __future__ import annotations

import math
import sys

from rich.markup import escape

from nandoctor.cli.options import add_select_options, split_codes
from nandoctor.core.registry import Facts, run_rules, select_rules
from nandoctor.core.types import Report
from nandoctor.log.export import write_csv, write_trace_json
from nandoctor.log.parser import parse_log
from nandoctor.log.symptoms import first_nonfinite_point
from nandoctor.log.trace import Trace
from nandoctor.report.console import make_console
from nandoctor.report.findings_text import render_findings

NAME = "log"
HELP = "read a Caffe training log (plain or gzip): trace, NaN symptoms, CSV/JSON export, plot"


def add_arguments(p) -> None:
    p.add_argument("logfile", help="Caffe log (stderr of caffe train, glog file, pasted excerpt; .gz allowed)")
    p.add_argument("--csv", metavar="DIR", help="write parse_log.py-style .train/.test tables (+ lr, debug) to DIR")
    p.add_argument("--json", action="store_true", help="print the whole trace and the findings as JSON")
    p.add_argument("--plot", metavar="PNG", help="plot loss, outputs and lr (log scale) to a PNG file")
    p.add_argument("--heatmap", metavar="PNG", help="debug_info logs: per-layer magnitudes, layers x iterations")
    p.add_argument("--debug-limit", type=int, default=100_000, help="debug_info records per run in --json")
    add_select_options(p)


def log_findings(trace: Trace, select=(), ignore=()) -> Report:
    """Run the log rules (NAN3xx, NAN5xx) on a trace."""
    rules = [c for c in select_rules(select, ignore) if "trace" in c.needs]
    report = Report(inputs=[trace.path])
    report.extend(run_rules(Facts(trace=trace), rules))
    return report


def run(args) -> int:
    from nandoctor.runs.log_view import is_framework_run, log_run

    if is_framework_run(args.logfile):  # a HF Trainer / Lightning / TensorBoard run folder or file
        return log_run(args, make_console())
    trace = parse_log(args.logfile)
    report = log_findings(trace, split_codes(args.select), split_codes(args.ignore))
    findings = report.findings
    console = make_console()
    if args.csv:
        for path in write_csv(trace, args.csv):
            if not args.json:
                console.print(f"wrote {escape(str(path))}")
    if args.plot:
        from nandoctor.report.log_plot import plot_trace

        target = plot_trace(trace, args.plot)
        if not args.json:
            console.print(f"wrote {escape(str(target))}")
    if getattr(args, "heatmap", None):
        from nandoctor.report.debug_heatmap import plot_debug_heatmap

        target = plot_debug_heatmap(trace, args.heatmap)
        if not args.json:
            console.print(f"wrote {escape(str(target))}" if target else "no debug_info values: no heat map written")
    if args.json:
        write_trace_json(trace, sys.stdout, args.debug_limit, findings=[f.to_dict() for f in findings])
    else:
        _summary(console, trace)
        render_findings(console, findings)
    return 1 if findings else 0


def _summary(console, trace: Trace) -> None:
    st = trace.stats
    console.print(
        f"[bold]{escape(trace.path)}[/bold]: {st['lines']:,} lines, {st.get('runs') or len(trace.segments):,} run(s)"
        + (
            f" ({len(trace.segments):,} analysed, the first and the last; {st['runs_dropped']:,} between them counted only)"
            if st.get("runs_dropped")
            else ""
        )
        + (", gzip" if st.get("gzip") else "")
        + (f", {st['unparsed_lines']:,} line(s) neither glog nor dump" if st.get("unparsed_lines") else "")
        + (f", {st['long_lines']} over-long line(s) skipped" if st.get("long_lines") else "")
        + (", read error: the file is damaged" if st.get("read_error") else "")
    )
    for seg in trace.segments:
        if not (seg.has_training or len(seg.debug) or seg.crashes):
            continue
        first = seg.train[0].iteration if seg.train else None
        last = seg.train[-1].iteration if seg.train else None
        parts = [f"run {seg.index + 1} (lines {seg.start_line}-{seg.end_line})"]
        if seg.info.get("solving"):
            parts.append(f"net {seg.info['solving']}")
        if first is not None:
            parts.append(f"iterations {first}-{last} ({len(seg.train)} displayed)")
        if seg.tests:
            parts.append(f"{len(seg.tests)} test pass(es)")
        if len(seg.debug):
            parts.append(f"{len(seg.debug):,} debug_info values")
        found = first_nonfinite_point(seg)
        if found is not None:
            parts.append(f"[red]first non-finite at iteration {found[1].iteration} (line {found[1].line})[/red]")
        elif seg.train:
            loss = seg.train[-1].loss
            shown = f"{loss:g}" if loss is not None and math.isfinite(loss) else "?"
            parts.append(f"finite throughout (last loss {shown})")
        console.print("  " + ", ".join(parts))
