"""Find what a run folder holds: the log(s), the solver, the net and where data lives.

Nothing is guessed beyond file contents: a prototxt is a solver when it sets solver
fields (config.load.root_type), a log is a file named ``*.log``/``*.log.gz`` or
given explicitly. Debug logs (``debug`` in the name) are kept apart from the main
log because they come from a separate, shorter run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nandoctor.config.load import root_type
from nandoctor.config.textformat import ParseError, parse_file
from nandoctor.core.types import InputError

LOG_SUFFIXES = (".log", ".log.gz", ".txt.gz", ".out", ".err")


@dataclass
class RunInputs:
    run_dir: Path | None = None
    log: Path | None = None
    debug_logs: list[Path] = field(default_factory=list)
    solver: Path | None = None
    nets: list[Path] = field(default_factory=list)
    data_root: Path | None = None
    bundle: Path | None = None  # a PyTorch reproducer bundle
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "run_dir": str(self.run_dir) if self.run_dir else None,
            "log": str(self.log) if self.log else None,
            "debug_logs": [str(p) for p in self.debug_logs],
            "solver": str(self.solver) if self.solver else None,
            "nets": [str(p) for p in self.nets],
            "data_root": str(self.data_root) if self.data_root else None,
        }


def _is_log(p: Path) -> bool:
    name = p.name.lower()
    return p.is_file() and (name.endswith(LOG_SUFFIXES) or name in ("log", "train_log", "stderr"))


def main_log(folder: Path) -> Path | None:
    """The run's own log in a folder (train.log or caffe.log first), not a debug rerun's."""
    logs = [p for p in sorted(folder.iterdir()) if _is_log(p) and "debug" not in p.name.lower()]
    logs.sort(key=lambda p: (p.name not in ("train.log", "caffe.log"), p.name))
    return logs[0] if logs else None


def _root(p: Path) -> str | None:
    try:
        return root_type(parse_file(p))
    except (ParseError, InputError):
        # a malformed file named as a solver is the run's solver: its error is reported, not passed over
        return "SolverParameter" if "solver" in p.name.lower() else None


def solver_candidates(folder: Path) -> list[Path]:
    """The solver prototxts of a folder, the run's own first (not debug or auxiliary copies)."""
    found = [p for p in sorted(folder.glob("*.prototxt")) if _root(p) == "SolverParameter"]
    # the run's own solver before debug or auxiliary ones
    return sorted(found, key=lambda p: ("debug" in p.name.lower(), p.name != "solver.prototxt", p.name))


def discover(
    target: str | Path | None,
    *,
    log: str | Path | None = None,
    solver: str | Path | None = None,
    nets: list[str | Path] | None = None,
    data_root: str | Path | None = None,
) -> RunInputs:
    """Resolve a RUN_DIR (or a single file) plus explicit overrides into RunInputs."""
    inputs = RunInputs()
    if target is not None:
        t = Path(target)
        if not t.exists():
            raise InputError("no such file or folder", str(t))
        if t.is_dir():
            if (t / "manifest.json").is_file() and (t / "state").exists():
                inputs.bundle = t
                return inputs
            inputs.run_dir = t
            inputs.debug_logs = [p for p in sorted(t.iterdir()) if _is_log(p) and "debug" in p.name.lower()]
            inputs.log = main_log(t)
            others = [p for p in t.iterdir() if _is_log(p) and "debug" not in p.name.lower() and p != inputs.log]
            if others:
                inputs.notes.append(f"several logs in {t}; using {inputs.log.name}")
            solvers = solver_candidates(t)
            if solvers:
                inputs.solver = solvers[0]
            elif not nets:
                # no solver: the folder's nets still get their pre-flight checks
                inputs.nets = [p for p in sorted(t.glob("*.prototxt")) if _root(p) == "NetParameter"]
        elif t.suffix == ".prototxt":
            try:
                kind = root_type(parse_file(t))
            except ParseError:
                kind = "SolverParameter"  # the linter will report the syntax error with its position
            if kind == "SolverParameter":
                inputs.solver = t
            else:
                inputs.nets.append(t)
            inputs.run_dir = t.parent
        else:
            inputs.log = t
            inputs.run_dir = t.parent
    if log is not None:
        inputs.log = Path(log)
        inputs.run_dir = inputs.run_dir or inputs.log.parent
    if solver is not None:
        inputs.solver = Path(solver)
        inputs.run_dir = inputs.run_dir or inputs.solver.parent
    if nets:
        inputs.nets = [Path(n) for n in nets]
    if data_root is not None:
        inputs.data_root = Path(data_root)
    elif inputs.run_dir is not None:
        # Caffe resolves data sources from the process CWD, which for a run folder is the folder itself
        inputs.data_root = inputs.run_dir
    for p in [inputs.log, inputs.solver, *inputs.nets]:
        if p is not None and not p.exists():
            raise InputError("no such file", str(p))
    if inputs.log is None and inputs.solver is None and not inputs.nets:
        raise InputError("found no log (*.log) and no solver/net prototxt here", str(target) if target else None)
    return inputs
