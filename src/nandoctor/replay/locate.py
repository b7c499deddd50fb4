"""What a replay starts from: the run's solver and log, where the failure happened, and its snapshots.

Caffe resolves every relative path (the solver's ``net``, data ``source``s, HDF5 list
entries, snapshot files, the ``learned_net`` stored in a ``.solverstate``) against the
*process's* working directory. Runs are normally started from the solver's folder, so
that is the default working directory of a replay (``cwd``); the copies keep the
user's relative paths and the replay is started from there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from nandoctor.config.load import root_type
from nandoctor.config.solver import Solver, load_solver
from nandoctor.config.textformat import parse_file
from nandoctor.core.types import InputError
from nandoctor.data.datum import CorruptRecord, read_varint
from nandoctor.diagnose.inputs import main_log, solver_candidates
from nandoctor.diagnose.timeline import timeline
from nandoctor.log.trace import Trace

LOG_SUFFIXES = (".log", ".log.gz", ".txt.gz", ".out", ".err")


@dataclass
class RunFiles:
    run_dir: Path
    solver_path: Path
    solver: Solver
    log_path: Path | None
    cwd: Path  # where Caffe was (and will be) started; relative paths resolve from here
    notes: list[str] = field(default_factory=list)


def find_run(target: str | Path, solver: str | Path | None = None, log: str | Path | None = None,
             cwd: str | Path | None = None) -> RunFiles:  # fmt: skip
    """The solver and log of a run folder (or of a solver file given as ``target``)."""
    target = Path(target)
    if not target.exists():
        raise InputError("no such file or folder", str(target))
    notes: list[str] = []
    run_dir = target if target.is_dir() else target.parent
    if target.is_file() and target.name.lower().endswith(LOG_SUFFIXES) and log is None:
        log = target  # `nandoctor replay train.log`: the run is the log's folder
    elif solver is None and target.is_file():
        solver = target
    if solver is None:
        found = solver_candidates(run_dir)
        if not found:
            raise InputError("no solver prototxt in this folder (give one with --solver)", str(run_dir))
        solver = found[0]
        if len(found) > 1:
            notes.append(f"using solver {found[0].name} (also found: {', '.join(p.name for p in found[1:])})")
    solver_path = Path(solver)
    doc = parse_file(solver_path)
    if root_type(doc) != "SolverParameter":
        raise InputError("this is a net, not a solver (give the solver with --solver)", str(solver_path))
    log_path = Path(log) if log is not None else main_log(run_dir)
    if log is not None and not log_path.is_file():
        raise InputError("no such log file", str(log_path))
    loaded = load_solver(doc)
    if cwd is None:
        cwd = guess_cwd(loaded, solver_path)
        if cwd != solver_path.resolve().parent:
            notes.append(f"the solver's net paths resolve from {cwd}, not from the solver's folder: "
                         "running from there (set --cwd otherwise)")  # fmt: skip
    return RunFiles(run_dir, solver_path, loaded, log_path, Path(cwd), notes)


def guess_cwd(solver: Solver, solver_path: Path) -> Path:
    """Where Caffe was started: the solver's folder when its net paths resolve from there, else the
    current folder or an ancestor they do resolve from (BVLC's examples run from the Caffe root)."""
    home = solver_path.resolve().parent
    nets = [str(f.value.value) for n in ("net", "train_net", "test_net") for f in solver.fields(n)
            if not f.is_message]  # fmt: skip
    relative = [n for n in nets if not Path(n).is_absolute()]
    if not relative:
        return home
    for cand in (home, Path.cwd().resolve(), *home.parents):
        if all((cand / n).is_file() for n in relative):
            return cand
    return home


# ------------------------------------------------------------------ the failure in the log
@dataclass(frozen=True, slots=True)
class Failure:
    first_nonfinite: int | None  # first displayed train iteration with a non-finite loss/output (or test pass)
    last_finite: int | None  # the last display before it whose values were all finite
    last_iteration: int | None  # the last iteration the log shows at all
    crashed: bool = False


def failure_in(trace: Trace) -> Failure:
    """Where the log went non-finite (train displays, test passes and the lr all count), as the
    diagnosis reads it: the run (segment) that went bad, the last finite display or test pass."""
    tl = timeline(trace)
    its = [p.iteration for p in trace.train] + [t.iteration for t in trace.tests]
    return Failure(tl.onset, tl.last_finite_before, max(its) if its else None, bool(trace.crashes))


# ------------------------------------------------------------------ snapshots
@dataclass(frozen=True, slots=True)
class SnapshotPair:
    iteration: int
    solverstate: Path
    caffemodel: Path | None  # the weights the state names (learned_net), when found


_ITER_RE = re.compile(r"_iter_(\d+)\.solverstate(?:\.h5)?$")


def find_snapshots(run: RunFiles, trace: Trace | None = None) -> list[SnapshotPair]:
    """Every existing ``.solverstate`` (with its ``.caffemodel``) of the run, by iteration.

    Candidates come from the log's ``Snapshotting ... solver state`` lines and from a glob of
    ``snapshot_prefix``; both are relative to the run's working directory.
    """
    cands: dict[Path, None] = {}
    if trace is not None:
        for seg in trace.segments:
            for s in seg.snapshots:
                if s.kind == "solverstate":
                    cands.setdefault(_resolve(run.cwd, s.path), None)
    prefix = run.solver.value("snapshot_prefix") if run.solver.is_set("snapshot_prefix") else None
    if isinstance(prefix, str) and prefix:
        base = _resolve(run.cwd, prefix)
        folder = base.parent if not base.is_dir() else base
        stem = base.name if not base.is_dir() else ""
        if folder.is_dir():
            for p in sorted(folder.glob(f"{stem}*_iter_*.solverstate*")):
                cands.setdefault(p, None)
    out = []
    for path in cands:
        m = _ITER_RE.search(path.name)
        if not m or not path.is_file():
            continue
        it, learned = read_solverstate_header(path)
        model = _resolve(run.cwd, learned) if learned else None
        if model is None or not model.is_file():
            guess = path.with_name(path.name.replace(".solverstate", ".caffemodel"))
            model = guess if guess.is_file() else None
        out.append(SnapshotPair(it if it is not None else int(m.group(1)), path, model))
    return sorted(out, key=lambda s: s.iteration)


def pick_snapshot(pairs: list[SnapshotPair], failure: Failure, aligned=None) -> SnapshotPair | None:
    """The latest complete snapshot taken no later than the last finite display before the failure,
    preferring one after which the replay reads the original's batches (``aligned(iteration)`` is True).

    A snapshot at iteration S holds the weights after S updates; the display at the last
    finite iteration F proves the weights up to F were finite, later ones may not be.
    """
    if failure.first_nonfinite is None or failure.last_finite is None:
        return None
    ok = [p for p in pairs if p.caffemodel is not None and p.iteration <= failure.last_finite]
    if aligned is not None:
        same_batches = [p for p in ok if aligned(p.iteration)]
        if same_batches:
            return same_batches[-1]
    return ok[-1] if ok else None


def _resolve(cwd: Path, path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else cwd / p


def read_solverstate_header(path: Path) -> tuple[int | None, str | None]:
    """``iter`` (field 1) and ``learned_net`` (field 2) of a binary SolverState; (None, None) when
    unreadable. Only the head of the file is read: the momentum history after it can be huge."""
    if path.name.endswith(".h5"):
        return None, None
    from nandoctor.core.safeio import open_input

    try:
        with open_input(path, "a solverstate") as fh:  # a FIFO named like a snapshot must not block
            buf = fh.read(65536)
    except (OSError, InputError):
        return None, None
    it: int | None = None
    learned: str | None = None
    pos = 0
    try:
        while pos < len(buf) and (it is None or learned is None):
            key, pos = read_varint(buf, pos, len(buf))
            field_number, wire = key >> 3, key & 7
            if wire == 0:
                value, pos = read_varint(buf, pos, len(buf))
                if field_number == 1:
                    it = value
            elif wire == 2:
                length, pos = read_varint(buf, pos, len(buf))
                if field_number == 2:
                    learned = buf[pos : pos + length].decode("utf-8", errors="replace")
                elif field_number == 3:
                    break  # history blobs: nothing else we need follows reliably
                pos += length
            else:
                break
    except CorruptRecord:
        pass
    return it, learned
