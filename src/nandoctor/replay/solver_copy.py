"""Edited copies of the user's solver: the debug replay and the input probe's solver.

Every change is an exact text edit of the original (``config.edits.replace_edit`` /
``insert_edit``), so comments, order and spelling stay as the user wrote them and the
diff shows only the intended fields. Net and weight paths become absolute (the copy
lives in another folder); everything else stays relative to the run's working
directory, from which the replay is started.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from nandoctor.config.edits import apply_edits, insert_edit, replace_edit
from nandoctor.config.solver import Solver
from nandoctor.config.textformat import Field, Message
from nandoctor.core.safeio import OutputDir
from nandoctor.core.types import Edit, InputError

NET_FIELDS = ("net", "train_net", "test_net")
NO_TEST = 1_000_000_000  # a test_interval no replay reaches (Caffe tests at iter % interval == 0)
# lr policies whose rate depends on max_iter: changing it would change the run being replayed
MAX_ITER_POLICIES = ("poly",)


@dataclass
class SolverCopy:
    source: Path
    path: Path
    text: str
    changes: dict[str, tuple[str | None, str]] = field(default_factory=dict)  # field -> (old, new)
    notes: list[str] = field(default_factory=list)

    def diff(self) -> str:
        original = self.source.read_text(encoding="utf-8", errors="replace")
        return "".join(difflib.unified_diff(original.splitlines(keepends=True), self.text.splitlines(keepends=True),
                                            fromfile=str(self.source), tofile=str(self.path)))  # fmt: skip


def quote(text: str) -> str:
    """A protobuf text-format string literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    # a string literal holds no raw line break or control byte (protobuf's tokenizer stops there)
    escaped = "".join(f"\\{ord(c):03o}" if ord(c) < 0x20 or ord(c) == 0x7F else c for c in escaped)
    return '"' + escaped + '"'


class SolverEditor:
    """Collects edits of one solver and remembers what each changed."""

    def __init__(self, solver: Solver):
        self.solver = solver
        self.edits: list[Edit] = []
        self.changes: dict[str, tuple[str | None, str]] = {}

    def set(self, name: str, value_text: str) -> None:
        """Set a scalar field: replace the deciding occurrence, or add a line when unset."""
        f = self.solver.field(name)
        if f is not None and not f.is_message:
            old = f.value.text
            if old != value_text:
                self.edits.append(replace_edit(self.solver.path, f.value, value_text))
                self.changes[name] = (old, value_text)
            return
        self.edits.append(insert_edit(self.solver, name, value_text))
        self.changes[name] = (None, value_text)

    def replace_value(self, f: Field, value_text: str) -> None:
        """Replace one occurrence (repeated fields such as test_net)."""
        if isinstance(f.value, Message) or f.value.text == value_text:
            return
        start, end = f.value.span
        text = self.solver.doc.text
        self.edits.append(Edit(self.solver.path, start, end, text[start:end], value_text, f.value.start.line,
                               f.value.start.col))  # fmt: skip
        key = f.name if f.name not in self.changes else f"{f.name}#{len(self.changes)}"
        self.changes[key] = (f.value.text, value_text)

    def absolute_paths(self, cwd: Path, names=(*NET_FIELDS, "weights"), target: Path | None = None) -> None:
        """Make path fields absolute (resolved from the run's working directory), or point them at ``target``."""
        for name in names:
            for f in self.solver.fields(name):
                if isinstance(f.value, Message):
                    continue
                p = Path(str(f.value.value))
                new = target if target is not None else (p if p.is_absolute() else (cwd / p).resolve())
                self.replace_value(f, quote(str(new)))

    def text(self) -> str:
        return apply_edits(self.solver.doc.text, self.edits)


def has_test_nets(solver: Solver) -> bool:
    return any(solver.is_set(n) for n in ("test_iter", "test_net", "test_net_param", "test_interval"))


def snapshot_prefix(solver: Solver, out_dir: Path) -> str:
    """The snapshot prefix moved into ``out_dir`` (same base name, or the solver's name)."""
    old = solver.value("snapshot_prefix") if solver.is_set("snapshot_prefix") else ""
    base = Path(str(old)).name if old and not str(old).endswith(("/", "\\")) else Path(solver.path).stem
    return str(out_dir.resolve() / base)


def debug_solver(solver: Solver, out_dir: Path, cwd: Path, max_iter: int | None) -> SolverCopy:
    """The debug replay's solver: debug_info on every iteration, a short horizon, no tests,
    snapshots into ``out_dir``, net paths absolute."""
    ed = SolverEditor(solver)
    notes: list[str] = []
    ed.absolute_paths(cwd)
    ed.set("debug_info", "true")
    ed.set("display", "1")
    policy = solver.value("lr_policy")
    if max_iter is not None:
        if policy in MAX_ITER_POLICIES and solver.is_set("max_iter"):
            notes.append(f"max_iter kept at {solver.value('max_iter')}: the {policy} lr policy depends on it "
                         f"(stop the run after iteration {max_iter}; `nandoctor replay --run` does)")  # fmt: skip
        else:
            ed.set("max_iter", str(max_iter))
    if has_test_nets(solver):
        ed.set("test_interval", str(NO_TEST))
        ed.set("test_initialization", "false")
    ed.set("snapshot_prefix", quote(snapshot_prefix(solver, out_dir)))
    path = out_dir / f"{Path(solver.path).stem}_debug.prototxt"
    return SolverCopy(Path(solver.path), path, ed.text(), ed.changes, notes)


def write_copy(copy: SolverCopy, folder: OutputDir | None = None) -> Path:
    """Write the copy into ``folder`` (by default its own folder), never over the original solver."""
    if folder is None:
        folder = OutputDir(copy.path.parent, [copy.source], what="--out folder")
    if copy.path.resolve() == copy.source.resolve() or folder.holds_input(copy.path.name):
        raise InputError("the replay copy would replace the original solver: choose another --out folder",
                         str(copy.path))  # fmt: skip
    return folder.write_text(copy.path.name, copy.text)
