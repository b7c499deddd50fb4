"""``nandoctor scan-data``: find the records that poison training, and write a clean copy.

nandoctor scan-data NET.prototxt|SOLVER.prototxt|SOURCE... [--root DIR]
nandoctor scan-data SOURCE --clean OUT [--replace-nonfinite 0]
nandoctor scan-data NET.prototxt --shard 0/4 --output part0.json   (one per machine)
nandoctor scan-data --merge part0.json part1.json ...
"""

from __future__ import annotations

import json
import os
import sys

from rich.markup import escape

from nandoctor.core.registry import Facts, area_rules, run_rules
from nandoctor.core.types import InputError, Severity
from nandoctor.report.console import make_console
from nandoctor.report.findings_text import render_findings

NAME = "scan-data"
HELP = "scan LMDB/LevelDB/HDF5/image-list data (or every source of a net) for records that poison training"


def add_arguments(p) -> None:
    p.add_argument("paths", nargs="*", metavar="PATH", help="net or solver prototxt, or data sources")
    p.add_argument("--root", help="directory relative sources resolve from (default: the prototxt's folder)")
    p.add_argument("--phase", choices=("TRAIN", "TEST", "both"), default="both")
    p.add_argument("--batch-size", type=int, help="for a source given directly: its batch_size")
    p.add_argument("--iter-size", type=int, default=1, help="for a source given directly: the solver's iter_size")
    p.add_argument("--num-classes", type=int, help="for a source given directly: labels must be below this")
    p.add_argument("--scale", type=float, default=1.0, help="for a source given directly: transform_param scale")
    p.add_argument("--clean", metavar="OUT", help="write a copy without the bad records to OUT (a new path)")
    p.add_argument(
        "--replace-nonfinite",
        type=float,
        metavar="VALUE",
        help="with --clean: repair NaN/inf values with VALUE instead of dropping those records",
    )
    p.add_argument("--shard", metavar="I/N", help="scan only part I of N (0-based) of every source")
    p.add_argument("--merge", nargs="+", metavar="REPORT", help="merge shard reports (JSON) instead of scanning")
    p.add_argument("--output", "-o", metavar="REPORT", help="also write the scan report as JSON (for --merge)")
    p.add_argument("--workers", type=int, help="worker processes (default: one per core; 0: none)")
    p.add_argument("--snapshot", action="store_true", help="read a copy of a LevelDB locked by a running job")
    p.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    p.add_argument("--format", choices=("text", "json"), default="text")


def parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise InputError(f"--shard {text!r}: expected I/N, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise InputError(f"--shard {text!r}: need 0 <= I < N")
    return i, n


def run(args) -> int:
    from nandoctor.data.api import specs_for_paths
    from nandoctor.data.report import DataReport, merge_reports
    from nandoctor.data.scan import scan_specs

    console = make_console()
    if args.replace_nonfinite is not None and not args.clean:
        raise InputError("--replace-nonfinite only applies with --clean OUT")
    specs = []
    if args.merge:
        if args.clean:
            raise InputError("--clean needs a scan, not --merge")
        report = merge_reports([DataReport.load(p) for p in args.merge])
    else:
        if not args.paths:
            raise InputError("give a net/solver prototxt or a data source (or --merge REPORT...)")
        shard = parse_shard(args.shard)
        if args.clean and shard is not None:
            raise InputError("--clean needs the whole data set, not a --shard")
        phases = ("TRAIN", "TEST") if args.phase == "both" else (args.phase,)
        specs = specs_for_paths(
            args.paths,
            args.root,
            phases,
            batch_size=args.batch_size,
            iter_size=args.iter_size,
            num_classes=args.num_classes,
            scale=args.scale,
            snapshot=args.snapshot,
        )
        if not specs:
            raise InputError("no data layer with a source found", args.paths[0])
        for s in specs:
            s.snapshot = args.snapshot
        report = scan_specs(specs, workers=args.workers, progress=False if args.no_progress else None, shard=shard)
    if args.output:
        report.save(args.output)
    findings = list(run_rules(Facts(data=report), [r for r in area_rules("data") if r.code.startswith("NAN4")]))
    cleaned = []
    if args.clean and not report.interrupted:
        cleaned = _clean(specs, report, args.clean, args.replace_nonfinite)
    if args.format == "json":
        out = {"data": report.to_dict(), "findings": [f.to_dict() for f in findings],
               "clean": [c.to_dict() | {"report": c.report_path} for c in cleaned]}  # fmt: skip
        print(json.dumps(out, indent=1))
    else:
        _render(console, report, findings, cleaned)
    if report.interrupted:
        print("nandoctor: interrupted: the report covers the records scanned so far", file=sys.stderr)
        return 130
    return 1 if any(f.severity != Severity.INFO for f in findings) else 0


def _clean(specs, report, out: str, replace):
    from nandoctor.core.safeio import OutputDir, safe_name
    from nandoctor.data.clean import clean_copy

    results = []
    if len(specs) == 1:
        return [clean_copy(specs[0], report.sources[0], out, replace)]
    folder = OutputDir(out, [s.path for s in specs], what="--clean folder")
    used: set[str] = set()
    for spec, src in zip(specs, report.sources, strict=True):
        # a layer name is input text: it becomes one safe file name inside OUT, never a path
        name = safe_name(f"{spec.phase or 'source'}_{spec.layer or os.path.basename(os.path.normpath(spec.path))}")
        while name in used:
            name += "_"
        used.add(name)
        results.append(clean_copy(spec, src, name, replace, folder=folder))
    return results


def _render(console, report, findings, cleaned) -> None:
    for src in report.sources:
        mb = src.bytes / 1e6
        rate = f", {src.records / src.seconds:,.0f} records/s" if src.seconds > 0 and src.records else ""
        bad = len(src.bad_indices())
        where = f" ({src.phase} {src.layer})" if src.layer else ""
        console.print(
            f"[bold]{escape(src.kind)}[/bold] {escape(src.path)}{escape(where)}: {src.records} of {src.total} records, "
            f"{mb:.1f} MB{rate}; {bad} bad"
        )
    render_findings(console, findings)
    for c in cleaned:
        console.print(
            f"clean copy: {escape(c.output)} ({c.kept} kept, {len(c.removed)} removed, {len(c.repaired)} repaired); "
            f"report {escape(c.report_path)}"
        )
