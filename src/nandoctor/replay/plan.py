"""Prepare a replay: decide the horizon and the snapshot, write the copies, say how to run them.

``prepare_replay(target, out_dir, ...) -> ReplayPlan`` writes into ``out_dir`` (never into
the run's own folder):

* debug mode: ``<solver>_debug.prototxt`` (debug_info, display 1, max_iter a few
  iterations past the first non-finite one, tests off, snapshots into ``out_dir``) and
  resumes from the latest snapshot taken before the failure when there is one. A run that
  pycaffe drove with ``solver.step(N)`` is replayed the same way (``steps``): ``step`` ignores
  max_iter, so the copy leaves it as the user wrote it — poly's rate depends on it, and a poly
  run without max_iter is NaN from iteration 0 only when driven so;
* probe mode (``probe=True``): ``<solver>_probe.prototxt`` and ``<net>_probe.prototxt``
  (``replay.probe``), always from iteration 0 so the readers see the batches in order;

plus ``<copy>.diff`` (the change against the original), ``replay.sh`` (the exact command,
started from the run's working directory) and ``replay.json`` (the plan, read back by
``nandoctor replay`` after a run).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nandoctor.core.safeio import OutputDir
from nandoctor.core.types import InputError
from nandoctor.replay.locate import Failure, RunFiles, SnapshotPair, failure_in, find_run, find_snapshots, pick_snapshot
from nandoctor.replay.probe import ProbeNet, probe_solver
from nandoctor.replay.resume import Alignment, train_alignment
from nandoctor.replay.runner import DRIVER, Caffe
from nandoctor.replay.solver_copy import SolverCopy, debug_solver, write_copy

HORIZON = 100  # iterations replayed when the log shows no failure (or there is no log)
MARGIN = 5  # iterations replayed past the first non-finite one
LOG_NAME = "replay.log"


@dataclass
class ReplayPlan:
    mode: str  # debug | probe
    run: RunFiles
    out_dir: Path
    copy: SolverCopy
    failure: Failure | None
    max_iter: int | None
    snapshot: SnapshotPair | None = None
    probes: list[ProbeNet] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    python_layers: bool = False  # the replayed nets hold a Python layer (its module must be importable)
    same_batches: bool | None = None  # resumed: the replay reads the original's batches (None: cannot tell)
    steps: int | None = None  # the original was driven by pycaffe's solver.step: iterations to step

    @property
    def needs_pycaffe(self) -> bool:
        """Only pycaffe can step a solver: `caffe train` runs Solve(), which stops at max_iter."""
        return self.steps is not None

    @property
    def log_path(self) -> Path:
        return self.out_dir / LOG_NAME

    @property
    def start_iteration(self) -> int:
        return self.snapshot.iteration if self.snapshot is not None else 0

    def command(self, caffe: Caffe | None = None, gpu: str | None = None) -> list[str]:
        snap = self.snapshot.solverstate.resolve() if self.snapshot is not None else None
        if caffe is None:
            caffe = Caffe("binary", ("caffe",), "default")
        cmd = caffe.train_command(self.copy.path.resolve(), snap, gpu)
        if caffe.kind == "pycaffe" and self.steps is not None:
            cmd += ["--steps", str(self.steps)]
        if caffe.kind == "pycaffe" and self.python_layers:
            cmd.append("--python-layers")  # only then may the driver import from the run's folders
        return cmd

    def shell(self, caffe: Caffe | None = None, gpu: str | None = None) -> str:
        """The command as one shell line, started where Caffe resolves the run's relative paths."""
        cmd = shlex.join(self.command(caffe, gpu))
        # the log path is absolute: the line starts with a cd into the run's folder
        log = shlex.quote(str(self.log_path.resolve()))
        return f"cd {shlex.quote(str(self.run.cwd.resolve()))} && {cmd} 2>&1 | tee {log}"

    def to_dict(self) -> dict[str, Any]:
        f = self.failure
        return {
            "mode": self.mode,
            "solver": str(self.run.solver_path),
            "log": str(self.run.log_path) if self.run.log_path else None,
            "cwd": str(self.run.cwd.resolve()),
            "copy": str(self.copy.path),
            "changes": {k: list(v) for k, v in self.copy.changes.items()},
            "first_nonfinite_iteration": f.first_nonfinite if f else None,
            "last_finite_iteration": f.last_finite if f else None,
            "max_iter": self.max_iter,
            "snapshot": str(self.snapshot.solverstate) if self.snapshot else None,
            "start_iteration": self.start_iteration,
            "same_batches": self.same_batches if self.snapshot is not None else True,
            "steps": self.steps,
            "probe_outputs": [
                {"output": o.output, "layer": o.layer, "top": o.top, "type": o.layer_type}
                for p in self.probes
                for o in p.outputs
            ],
            "command": self.command(),
            "log_file": str(self.log_path),
            "files": [str(p) for p in self.files],
            "notes": self.notes,
        }


def prepare_replay(target: str | Path, out_dir: str | Path, *, solver=None, log=None, cwd=None,
                   probe: bool = False, horizon: int = HORIZON, margin: int = MARGIN,
                   resume: bool = True) -> ReplayPlan:  # fmt: skip
    """Write the replay's files into ``out_dir`` and return the plan (see the module docs)."""
    from nandoctor.log.parser import parse_log

    run = find_run(target, solver=solver, log=log, cwd=cwd)
    out = Path(out_dir)
    if out.resolve() == run.solver_path.resolve().parent:
        raise InputError("--out must not be the run's own folder (the originals stay untouched)", str(out))
    notes = list(run.notes)
    trace = parse_log(run.log_path) if run.log_path is not None else None
    failure = failure_in(trace) if trace is not None else None
    if trace is None:
        notes.append("no log found: replaying a short horizon from the start (give one with --log)")
    elif failure.first_nonfinite is None:
        notes.append(f"the log {run.log_path.name} shows no non-finite value: replaying a short horizon")
    snapshot, same_batches = None, None
    if not probe and resume and failure is not None:
        pairs = find_snapshots(run, trace)
        alignment = train_alignment(run) if pairs else None
        snapshot = pick_snapshot(pairs, failure, alignment.aligned if alignment is not None else None)
        if snapshot is not None:
            same_batches = alignment.aligned(snapshot.iteration)
            notes.append(_resume_note(snapshot, alignment))
    notes += _seed_note(run, snapshot)
    max_iter = _horizon(run, failure, snapshot, probe, horizon, margin)
    stepped = not probe and driven_by_step(trace)
    steps = max(1, max_iter - (snapshot.iteration if snapshot is not None else 0)) if stepped and max_iter else None
    if steps is not None:
        notes.append(f"the log has no 'Solving' line: the original was driven by pycaffe's solver.step(), which "
                     f"ignores max_iter; the replay steps {steps} iterations with pycaffe and leaves max_iter as "
                     "it is (poly's rate depends on it)")  # fmt: skip
    folder = OutputDir(out, [p for p in (run.solver_path, run.log_path) if p is not None], what="--out folder")
    probes: list[ProbeNet] = []
    if probe:
        copy, probes = probe_solver(run.solver, out, run.cwd, max_iter)
        for p in probes:
            notes += p.notes
    else:
        copy = debug_solver(run.solver, out, run.cwd, None if steps is not None else max_iter)
    notes += copy.notes
    plan = ReplayPlan("probe" if probe else "debug", run, out, copy, failure, max_iter, snapshot, probes, [], notes,
                      same_batches=same_batches, steps=steps)  # fmt: skip
    # every file goes through the folder: no symlink planted there is followed, no input replaced
    plan.files.append(write_copy(copy, folder))
    plan.python_layers = _has_python_layer(copy.path)
    for p in probes:
        plan.files.append(folder.write_text(p.path.name, p.text))
    plan.files.append(folder.write_text(copy.path.with_suffix(".diff").name, copy.diff()))
    plan.files.append(folder.write_text("replay.sh", _script(plan), executable=True))
    plan.files.append(folder / "replay.json")
    folder.write_text("replay.json", json.dumps(plan.to_dict(), indent=1))
    return plan


def driven_by_step(trace) -> bool:
    """Whether pycaffe's ``solver.step(N)`` drove the logged training rather than ``Solve()``.

    ``Solver::Solve`` (what `caffe train` and pycaffe's ``solve()`` run) prints ``Solving <net>``
    before its first iteration; ``Step`` alone prints none. A log that starts at the solver's
    dump, trains, and never says ``Solving`` was therefore stepped. A log cut before its header
    (no dump) cannot tell, and is taken as `caffe train`.
    """
    if trace is None:
        return False
    trained = [s for s in trace.segments if len(s.train) or len(s.lr)]
    return bool(trained) and all(s.solver is not None and not s.info.get("solving") for s in trained)


def _script(plan: ReplayPlan) -> str:
    """replay.sh: the exact command, with CAFFE_BIN (or PYTHON for a stepped run) overriding the default."""
    head = "#!/bin/sh\n# written by nandoctor replay; "
    if plan.needs_pycaffe:
        # the driver by its file: it imports nothing of nandoctor, so any Python with pycaffe runs it
        driver = Caffe("pycaffe", ("${PYTHON:-python3}", "-I", str(Path(DRIVER).resolve())), "default")
        line = plan.shell(driver).replace("'${PYTHON:-python3}'", '"${PYTHON:-python3}"')
        return (head + "PYTHON overrides the Python that runs pycaffe; CAFFE_PYTHON names the folder "
                "holding the caffe package\nset -e\n" + line + "\n")  # fmt: skip
    line = plan.shell(Caffe("binary", ("${CAFFE_BIN:-caffe}",), "default")).replace(
        "'${CAFFE_BIN:-caffe}'", '"${CAFFE_BIN:-caffe}"')  # fmt: skip
    return head + "CAFFE_BIN overrides the caffe binary\nset -e\n" + line + "\n"


def _has_python_layer(solver_path: Path) -> bool:
    """Whether a net the solver copy trains has a Python layer (unreadable nets: no)."""
    from nandoctor.config.load import load_configs

    try:
        configs = load_configs([solver_path])
    except InputError:
        return False
    return any(layer.type == "Python" for net in configs.nets for layer in net.layers)


def _resume_note(snapshot: SnapshotPair, alignment: Alignment) -> str:
    it = snapshot.iteration
    head = f"resuming from {snapshot.solverstate.name} (iteration {it}): "
    same = alignment.aligned(it)
    if same:
        return head + ("the data readers restart at their first record, which is where the original's were at "
                       f"iteration {it} (a whole number of passes over the data): the replay reads the same batches")  # fmt: skip
    if same is False:
        return head + (f"{alignment.shift_text(it)}; a failure made by one batch shows {it} iterations later here "
                       "or not at all (--no-resume replays from iteration 0 with the original's batches)")  # fmt: skip
    why = f" ({alignment.unknown[0]})" if alignment.unknown else ""
    return head + f"the data readers restart at their first record, so the batches may differ from the original's{why}"


def _seed_note(run: RunFiles, snapshot: SnapshotPair | None) -> list[str]:
    seed = run.solver.value("random_seed") if run.solver.is_set("random_seed") else None
    if isinstance(seed, int) and seed >= 0:
        return []
    what = "dropout masks and shuffles" if snapshot is not None else "the initial weights, dropout masks and shuffles"
    return [f"random_seed is not set: Caffe draws {what} from a fresh seed every run, so the replay need not "
            "fail where the original did (set random_seed in the solver to make runs repeatable)"]  # fmt: skip


def replay_disagreement(plan: ReplayPlan, replay_first: int | None, replay_last: int | None) -> str | None:
    """None when the replay went non-finite where the original did (or the original did not); else why not,
    in plain words. ``replay_first``/``replay_last``: the replay's first non-finite and last iteration."""
    f = plan.failure
    if f is None or f.first_nonfinite is None:
        return None
    low = f.last_finite + 1 if f.last_finite is not None else plan.start_iteration
    if replay_first is not None and low <= replay_first <= f.first_nonfinite:
        return None
    where = (f"at iteration {f.first_nonfinite}" if low == f.first_nonfinite
             else f"between iterations {low} and {f.first_nonfinite}")  # fmt: skip
    seen = (f"went non-finite at iteration {replay_first}" if replay_first is not None
            else f"stayed finite through iteration {replay_last if replay_last is not None else plan.start_iteration}")  # fmt: skip
    text = f"the replay {seen}, the original {where}"
    if plan.snapshot is not None and plan.same_batches is not True:
        it = plan.snapshot.iteration
        return (f"{text}: it resumed from iteration {it}, and a resumed Caffe restarts its data readers at the "
                f"first record, so it did not read the original's batches; a failure made by one batch cannot be "
                f"reproduced from this snapshot: replay with --no-resume")  # fmt: skip
    seed = plan.run.solver.value("random_seed") if plan.run.solver.is_set("random_seed") else None
    if not (isinstance(seed, int) and seed >= 0):
        return f"{text}: random_seed is not set, so the replay started from other random weights than the original"
    return (f"{text}: with the same seed and data Caffe on CPU repeats a run exactly, so the data, the nets or "
            "the Caffe build changed since the original ran (GPU runs are not bit-exact)")  # fmt: skip


def _horizon(run: RunFiles, failure: Failure | None, snapshot, probe: bool, horizon: int, margin: int) -> int | None:
    original = run.solver.value("max_iter") if run.solver.is_set("max_iter") else None
    if failure is not None and failure.first_nonfinite is not None:
        return failure.first_nonfinite + margin
    if probe and isinstance(original, int) and original > 0:
        return original  # no weights to compute: the probe can read the whole run's batches
    start = snapshot.iteration if snapshot is not None else 0
    if isinstance(original, int) and 0 < original < start + horizon:
        return original
    return start + horizon


def missing_paths(plan: ReplayPlan) -> list[str]:
    """Files the replay needs that do not resolve from its working directory (empty when all do)."""
    from nandoctor.data.netsources import specs_for_config

    missing = []
    for p in [plan.copy.path, *(n.path for n in plan.probes)]:
        if not p.is_file():
            missing.append(str(p))
    from nandoctor.config.solver import load_solver
    from nandoctor.config.textformat import parse_file

    sources = load_solver(parse_file(plan.copy.path)).net_sources()
    for src in [sources["train_source"], *sources["test_sources"]]:
        if src is not None and src.path is not None and not src.path.is_file():
            missing.append(f"{src.field}: {src.path}")
    try:
        specs = specs_for_config(str(plan.copy.path), root=str(plan.run.cwd.resolve()))
    except InputError as exc:
        return [*missing, f"cannot read the replay's nets: {exc}"]
    for s in specs:
        if not Path(s.path).exists():
            missing.append(f"{s.layer}: {s.declared} ({s.path})")
    if plan.snapshot is not None:
        for p in (plan.snapshot.solverstate, plan.snapshot.caffemodel):
            if p is None or not p.is_file():
                missing.append(str(p))
    return missing
