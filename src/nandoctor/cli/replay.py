"""``nandoctor replay RUN_DIR --out DIR``: a ready-to-run debug_info replay (or input probe) of a failed run.

Writes the copies (originals untouched), prints the exact command, and with ``--run``
runs Caffe when one is found, stops it once the failure is reproduced and reads the
log it wrote: the layer that went wrong first, in which pass, the growth path of an
explosion, and a heat map. A PyTorch reproducer bundle is replayed with the torch
replay instead (``--model-factory``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.markup import escape

from nandoctor.core.types import InputError
from nandoctor.report.console import make_console

NAME = "replay"
HELP = (
    "write (and with --run, run) a debug_info replay or an input probe of a failed Caffe run, then localise the layer"
)


def add_arguments(p) -> None:
    p.add_argument("target", help="the run folder (or its solver prototxt), or a PyTorch reproducer bundle")
    p.add_argument("--out", default="nandoctor-replay", help="folder for the copies and the replay log")
    p.add_argument("--solver", help="the run's solver (default: found in the folder)")
    p.add_argument("--log", help="the run's log (default: *.log in the folder); sets the replay horizon")
    p.add_argument("--cwd", help="the folder Caffe was started from (default: the solver's folder)")
    p.add_argument("--probe-input", action="store_true", help="a net of the data layers only, each top reduced")
    p.add_argument("--horizon", type=int, default=100, help="iterations to replay when the log shows no failure")
    p.add_argument("--margin", type=int, default=5, help="iterations to replay past the first non-finite one")
    p.add_argument("--no-resume", action="store_true", help="start from iteration 0 even when snapshots exist")
    p.add_argument("--run", action="store_true", help="run Caffe now (--caffe, $CAFFE_BIN, caffe on PATH, pycaffe)")
    p.add_argument("--caffe", metavar="PATH", help="the caffe binary")
    p.add_argument("--gpu", help="passed to caffe train --gpu")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds before the run is stopped")
    p.add_argument("--stop-after", type=int, default=3, help="iterations to let run past the first non-finite one")
    p.add_argument("--heatmap", metavar="PNG", help="heat map file (default: DIR/debug_heatmap.png after --run)")
    p.add_argument("--json", action="store_true", help="print the plan (and the run's result) as JSON")
    p.add_argument("--model-factory", metavar="MODULE:CALLABLE", help="PyTorch bundles: builds the model to replay")
    p.add_argument("--device", default="cpu", help="PyTorch bundles: device of the replay")


def run(args) -> int:
    if _is_bundle(args.target):
        return _run_bundle(args)
    from nandoctor.replay.plan import missing_paths, prepare_replay

    if args.horizon < 1 or args.margin < 0 or args.stop_after < 0:
        raise InputError("--horizon must be >= 1, --margin and --stop-after >= 0")
    plan = prepare_replay(args.target, args.out, solver=args.solver, log=args.log, cwd=args.cwd,
                          probe=args.probe_input, horizon=args.horizon, margin=args.margin,
                          resume=not args.no_resume)  # fmt: skip
    missing = missing_paths(plan)
    console = make_console(sys.stderr if args.json else None)
    caffe = None
    if args.run:
        from nandoctor.replay.runner import find_caffe

        try:
            caffe = find_caffe(args.caffe, pycaffe_only=plan.needs_pycaffe)
        except FileNotFoundError as exc:
            raise InputError(str(exc)) from None
    _print_plan(console, plan, missing, caffe, args.gpu)
    out = {"plan": plan.to_dict(), "missing_paths": missing}
    code = 0
    if args.run and caffe is None and plan.needs_pycaffe:
        console.print("the original stepped its solver with pycaffe, and `import caffe` fails here: make pycaffe "
                      "importable (PYTHONPATH=CAFFE_ROOT/python), then run again or run replay.sh")  # fmt: skip
        out["run"] = None
    elif args.run and caffe is None:
        console.print("no Caffe found (--caffe PATH, $CAFFE_BIN, `caffe` on PATH, or an importable pycaffe): "
                      "run the command above, then `nandoctor log` the replay log")  # fmt: skip
        out["run"] = None
    elif args.run:
        code, out["run"] = _run_and_read(console, plan, caffe, args)
    if args.json:
        print(json.dumps(out, indent=1, default=str))
    return code


def _is_bundle(target: str) -> bool:
    from nandoctor.torch.bundle import is_bundle  # no torch import: bundles are plain folders

    return Path(target).is_dir() and is_bundle(target)


def _print_plan(console, plan, missing, caffe, gpu) -> None:
    what = "input probe" if plan.mode == "probe" else "debug_info replay"
    console.print(f"[bold]{what}[/bold] of {escape(str(plan.run.solver_path))} written to {escape(str(plan.out_dir))}")
    for name, (old, new) in plan.copy.changes.items():
        console.print(
            f"  {escape(name.split('#')[0])}: {escape(old) if old is not None else '(unset)'} -> {escape(new)}"
        )
    f = plan.failure
    if f is not None and f.first_nonfinite is not None:
        console.print(f"  the log went non-finite at iteration {f.first_nonfinite} (last finite display: "
                      f"{f.last_finite}); replaying iterations {plan.start_iteration}..{plan.max_iter}")  # fmt: skip
    for p in plan.probes:
        console.print(f"  probe net {escape(str(p.path))}: {len(p.outputs)} probed top(s)")
    for note in plan.notes:
        console.print(f"  note: {escape(note)}")
    for m in missing:
        console.print(f"  [red]does not resolve from {escape(str(plan.run.cwd))}: {escape(m)}[/red]")
    console.print("run it with:")
    console.print(f"  {escape(plan.shell(caffe, gpu))}")


def _run_and_read(console, plan, caffe, args) -> tuple[int, dict]:
    from nandoctor.replay.runner import run_caffe

    cmd = plan.command(caffe, args.gpu)
    console.print(f"running {escape(caffe.where)} Caffe ({caffe.kind}); output goes to {escape(str(plan.log_path))}")
    show = _ProgressLine()
    try:
        result = run_caffe(cmd, plan.run.cwd, plan.log_path, timeout=args.timeout, stop_after=args.stop_after,
                           progress=show)  # fmt: skip
    except OSError as exc:  # not executable, wrong format, vanished
        raise InputError(f"cannot start {cmd[0]}: {exc.strerror or exc}", cmd[0]) from None
    finally:
        show.close()
    words = {"reproduced": "the failure was reproduced", "finished": "Caffe finished without a non-finite value",
             "crashed": f"Caffe exited with code {result.returncode}", "timeout": f"stopped after {args.timeout:g} s",
             }  # fmt: skip
    console.print(f"{words.get(result.status, result.status)} ({result.progress.lines} lines, {result.elapsed:.1f} s"
                  + (", stopped by nandoctor" if result.stopped_by_us else "") + ")")  # fmt: skip
    disagreement = None
    if plan.mode == "debug" and result.status != "interrupted":
        from nandoctor.replay.plan import replay_disagreement

        disagreement = replay_disagreement(plan, result.progress.first_nonfinite, result.progress.iteration)
        if disagreement:
            console.print(f"[yellow]not the original's failure: {escape(disagreement)}[/yellow]")
    report = _read_log(console, plan, args)
    report["disagreement"] = disagreement
    report["diagnosis"] = _diagnose(console, plan)
    report.update(status=result.status, returncode=result.returncode, stopped_by_us=result.stopped_by_us,
                  first_nonfinite_iteration=result.progress.first_nonfinite, log=str(plan.log_path))  # fmt: skip
    return (1 if report["findings"] else 0), report


def _read_log(console, plan, args) -> dict:
    from nandoctor.cli.log import log_findings
    from nandoctor.log.debug_analysis import localize
    from nandoctor.log.parser import parse_log
    from nandoctor.replay.probe import read_probe
    from nandoctor.report.findings_text import render_findings

    trace = parse_log(plan.log_path)
    out: dict = {}
    if plan.mode == "probe":
        hits = read_probe(trace, [o for p in plan.probes for o in p.outputs])
        out["probe"] = hits
        for h in hits:
            console.print(f"[red]input probe: {escape(h['layer'])} top {escape(h['top'])} is {h['value']} at "
                          f"{h['phase']} iteration {h['iteration']}[/red] (log line {h['line']})")  # fmt: skip
        if not hits:
            console.print("input probe: every batch read was finite")
    loc = localize(trace)
    out["localization"] = loc.to_dict() if loc is not None else None
    if loc is not None and loc.layer:
        text = f"debug_info: culprit layer {loc.layer} ({loc.phase}, iteration {loc.iteration}, {loc.cause.value})"
        if loc.loss_head:
            text += f"; loss head {loc.loss_head}"
        if len(loc.path) > 1:
            text += f"; growth path {' -> '.join(loc.path)}"
        console.print(f"[bold]{escape(text)}[/bold]")
    findings = log_findings(trace).findings
    out["findings"] = [f.to_dict() for f in findings]
    render_findings(console, findings)
    if trace.has_debug:
        from nandoctor.report.debug_heatmap import plot_debug_heatmap

        target = plot_debug_heatmap(trace, args.heatmap or plan.out_dir / "debug_heatmap.png")
        if target is not None:
            out["heatmap"] = str(target)
            console.print(f"heat map: {escape(str(target))}")
    return out


def _diagnose(console, plan) -> dict | None:
    """The whole diagnosis with the replay's log as the run's log."""
    from nandoctor.diagnose.engine import diagnose
    from nandoctor.diagnose.inputs import discover
    from nandoctor.report.diagnosis_text import render_diagnosis

    inputs = discover(str(plan.run.run_dir), log=str(plan.log_path), solver=str(plan.run.solver_path))
    diagnosis, _ = diagnose(inputs, scan_data=False, options={})
    console.print()
    render_diagnosis(console, diagnosis, title="Diagnosis with the replay's log", findings=False)
    return diagnosis.to_dict()


class _ProgressLine:
    """One status line on a terminal (rewritten in place); a line every few seconds when piped."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.last = -1e9
        self.shown = False

    def __call__(self, p) -> None:
        if p.elapsed - self.last < (0.2 if self.tty else 10.0):
            return
        self.last = p.elapsed
        text = f"iteration {p.iteration if p.iteration is not None else '-'}  loss {p.loss or '-'}  lr {p.lr or '-'}"
        if p.first_nonfinite is not None:
            text += f"  non-finite since {p.first_nonfinite}"
        text += f"  ({p.elapsed:.0f} s)"
        self.stream.write(("\r\x1b[K" + text) if self.tty else text + "\n")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.tty and self.shown:
            self.stream.write("\n")
            self.stream.flush()


# ------------------------------------------------------------------ PyTorch bundles
def _run_bundle(args) -> int:
    from nandoctor.report.diagnosis_text import render_diagnosis

    console = make_console()
    if args.model_factory is None:
        from nandoctor.torch.bundle import diagnose_bundle

        diagnosis = diagnose_bundle(args.target)
        hint = (f"to replay the step with hooks: nandoctor replay {args.target} --model-factory MODULE:CALLABLE "
                "(a function of yours that builds the model; needs torch)")  # fmt: skip
    else:
        diagnosis = _replay_bundle(args)
        hint = None
    if args.json:
        print(json.dumps(diagnosis.to_dict(), indent=1, default=str))
    else:
        render_diagnosis(console, diagnosis)
        if hint:
            console.print(escape(hint))
    from nandoctor.core.types import Verdict

    return 0 if diagnosis.verdict is Verdict.HEALTHY else 1


def _replay_bundle(args):
    import importlib

    module_name, sep, attr = args.model_factory.partition(":")
    if not sep or not module_name or not attr:
        raise InputError(f"--model-factory {args.model_factory!r}: expected MODULE:CALLABLE")
    try:
        import torch  # noqa: F401
    except ImportError:
        raise InputError("replaying a PyTorch bundle needs torch (pip install nandoctor[torch])") from None
    from nandoctor.torch.bundle_replay import replay_bundle

    sys.path.insert(0, str(Path.cwd()))
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise InputError(f"--model-factory {args.model_factory}: {exc}") from None
    return replay_bundle(args.target, factory, device=args.device)
