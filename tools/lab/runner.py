"""Turn a run spec into a run folder: write its net, solver and data, run the real Caffe, read
what it did, and keep the run only when Caffe showed the outcome the mechanism stands for.

A kept run is stored compactly (configs, the gzipped log, ``expected.json`` and ``spec.json``);
``materialize`` writes the same folder again, data included, from ``spec.json`` alone.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from tools.lab import datasets, nets, truth
from tools.lab.matrix import RunSpec
from tools.lab.mechanisms import REGISTRY
from tools.lab.plan import Plan
from tools.lab.shapes import SHAPES

CAFFE_PREFIX = Path(os.environ.get("NANDOCTOR_CAFFE_PREFIX", Path.home() / ".cache/nandoctor/caffe"))
RUNS = Path(__file__).resolve().parent / "runs"  # the kept runs, in the repo
TIMEOUT_S = 120
SNAP = "snapshots/lab"

_STEP_SCRIPT = """\
import sys

import caffe

caffe.set_mode_cpu()
solver = caffe.get_solver("solver.prototxt")
solver.step({n})
"""


def plan_for(spec: RunSpec) -> Plan:
    plan = SHAPES[spec.shape].apply(REGISTRY[spec.mechanism].build(spec.seed))
    if plan.resume_at is not None:
        plan = plan.with_solver(snapshot_prefix=SNAP)
    return plan


def write_configs(plan: Plan, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train_val.prototxt").write_text(nets.net(plan.net_name, list(plan.layers)))
    (folder / "solver.prototxt").write_text(nets.solver_text(plan.solver))
    for rel, text in plan.extra_files:
        (folder / rel).write_text(text)
    if plan.driver == "step":
        (folder / "train.py").write_text(_STEP_SCRIPT.format(n=plan.step_iters))


def write_data(plan: Plan, folder: Path) -> None:
    for split, spec in enumerate(plan.datasets, start=1):
        if not (folder / spec["name"]).exists() and not (folder / f"{spec['name']}_h5.txt").exists():
            datasets.write(spec, folder, split)
    if plan.mean:
        m = plan.mean
        datasets.write_mean(folder, m["rel"], m["shape"], m["value"], m.get("nan_at"))


def materialize(run_dir: Path, into: Path) -> Path:
    """Write a kept run whole (configs, data, plain train.log) into ``into``; returns the folder."""
    spec = RunSpec(**json.loads((run_dir / "spec.json").read_text()))
    plan = plan_for(spec)
    into.mkdir(parents=True, exist_ok=True)
    for p in run_dir.iterdir():
        if p.name.endswith(".log.gz"):
            (into / p.name[:-3]).write_bytes(gzip.decompress(p.read_bytes()))
        elif p.name != "spec.json":
            shutil.copy(p, into / p.name)
    write_data(plan, into)
    return into


def _env(plan: Plan, folder: Path, log_dir: Path | None) -> dict:
    env = dict(os.environ)
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", GLOG_logtostderr="1", GLOG_minloglevel="0")
    python = [str(CAFFE_PREFIX / "src/python")]
    if plan.extra_files:
        python.insert(0, str(folder))  # the Python layer's module, as a user's PYTHONPATH would have it
    env["PYTHONPATH"] = os.pathsep.join(python)
    env["PATH"] = f"{CAFFE_PREFIX / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    if log_dir is not None:
        env.update(GLOG_logtostderr="0", GLOG_log_dir=str(log_dir), GLOG_alsologtostderr="0")
    env.update(dict(plan.env))
    return env


def _invoke(plan: Plan, folder: Path, solver: str, extra: list[str], log_dir: Path | None) -> tuple[str, int]:
    if plan.driver == "step":
        cmd = ["python3", "train.py"]
    else:
        cmd = [str(CAFFE_PREFIX / "bin/caffe"), "train", f"--solver={solver}", *extra]
    try:
        done = subprocess.run(
            cmd, cwd=folder, env=_env(plan, folder, log_dir), capture_output=True, timeout=TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        return (exc.stderr or b"").decode(errors="replace"), -9
    text = done.stderr.decode(errors="replace")
    if log_dir is not None:
        infos = sorted(p for p in log_dir.iterdir() if ".INFO." in p.name and not p.is_symlink())
        text = "".join(p.read_text(errors="replace") for p in infos)
        for p in log_dir.iterdir():
            p.unlink()
    return text, done.returncode


def execute(plan: Plan, folder: Path) -> tuple[str, int, str]:
    """Run Caffe the way the plan says; returns (log text, exit code, the command a user would have typed)."""
    log_dir = Path(tempfile.mkdtemp(prefix="lab-glog-")) if plan.log_file else None
    try:
        if plan.resume_at is not None:
            (folder / "snapshots").mkdir(exist_ok=True)
            part1 = folder / "solver_part1.prototxt"
            part1.write_text(
                nets.solver_text({**plan.solver, "max_iter": plan.resume_at, "snapshot_after_train": True})
            )
            log1, code1 = _invoke(plan, folder, part1.name, [], log_dir)
            part1.unlink()
            state = f"{SNAP}_iter_{plan.resume_at}.solverstate"
            if code1 != 0 or not (folder / state).exists():
                return log1, code1 or 1, "caffe train --solver=solver.prototxt (part 1 failed)"
            log2, code2 = _invoke(plan, folder, "solver.prototxt", [f"--snapshot={state}"], log_dir)
            return log1 + log2, code2, f"caffe train --solver=solver.prototxt --snapshot={state}"
        logs, code = [], 0
        for _ in range(plan.invocations):
            text, code = _invoke(plan, folder, "solver.prototxt", [], log_dir)
            logs.append(text)
        command = "python3 train.py" if plan.driver == "step" else "caffe train --solver=solver.prototxt"
        return "".join(logs), code, command
    finally:
        if log_dir is not None:
            shutil.rmtree(log_dir, ignore_errors=True)
        shutil.rmtree(folder / "snapshots", ignore_errors=True)


@dataclass(frozen=True)
class Outcome:
    spec: RunSpec
    kept: bool
    reason: str
    truth: truth.Truth | None


def _expected(spec: RunSpec, plan: Plan, t: truth.Truth, command: str) -> dict:
    return {
        "id": spec.id,
        "expected_cause": plan.cause,
        "culprit": plan.culprit,
        "culprit_tokens": [list(g) for g in plan.culprit_tokens],
        "first_nan_iteration": t.first_nan_iteration,
        "first_nan_iteration_strict": t.first_nan_iteration_strict,
        "first_nonfinite_loss_value": t.first_nonfinite_loss_value,
        "first_nonfinite_output_iteration": t.first_nonfinite_output_iteration,
        "first_nonfinite_test_iteration": t.first_nonfinite_test_iteration,
        "first_nonfinite_lr_iteration": t.first_nonfinite_lr_iteration,
        "outcome": t.outcome,
        "caffe_exit_code": t.exit_code,
        "abort_message": t.abort_message,
        "driver": "step" if plan.driver == "step" else "caffe train",
        "command": command,
        "what_was_done": plan.what,
        "mechanism": spec.mechanism,
        "mechanism_summary": REGISTRY[spec.mechanism].summary,
        "shape": spec.shape,
        "shape_summary": SHAPES[spec.shape].summary,
        "healthy_kind": plan.healthy_kind,
        "seed": spec.seed,
        "part": spec.part,
        "notes": "first_nan_iteration = first displayed iteration whose train loss is nan or inf; "
        "_strict = nan only; first_nonfinite_test_iteration = the Testing net iteration of the "
        "first non-finite Test net output. Data is not stored: `python3 -m tools.lab materialize` "
        "writes it again from spec.json.",
    }


def build_one(spec: RunSpec, out_root: Path, work_root: Path) -> Outcome:
    """Make one run; keep it under ``out_root/<id>`` when Caffe showed the expected outcome."""
    plan = plan_for(spec)
    folder = work_root / spec.id
    shutil.rmtree(folder, ignore_errors=True)
    write_configs(plan, folder)
    write_data(plan, folder)
    log, code, command = execute(plan, folder)
    t = truth.read(log, code)
    wanted = plan.expect
    if t.outcome != wanted:
        reason = f"wanted {wanted}, Caffe showed {t.outcome} (exit {code}, abort {t.abort_message!r})"
        (work_root / f"{spec.id}.rejected.log").write_text(log)
        shutil.rmtree(folder, ignore_errors=True)
        return Outcome(spec, False, reason, t)
    keep = out_root / spec.id
    shutil.rmtree(keep, ignore_errors=True)
    keep.mkdir(parents=True)
    (keep / "train.log.gz").write_bytes(gzip.compress(log.encode(), compresslevel=9, mtime=0))
    for p in folder.iterdir():
        if p.suffix in (".prototxt", ".py"):
            shutil.copy(p, keep / p.name)
    (keep / "expected.json").write_text(json.dumps(_expected(spec, plan, t, command), indent=1) + "\n")
    (keep / "spec.json").write_text(json.dumps(asdict(spec), indent=1) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    return Outcome(spec, True, "kept", t)
