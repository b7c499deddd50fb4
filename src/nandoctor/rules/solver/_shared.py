"""What the solver rules share: one lr analysis per solver, field evidence and exact fixes.

The horizon is ``[0, max_iter)`` (``caffe train``) unless ``facts.options["iters"]``
says the run is driven by ``solver.step(iters)``. When neither gives a single
iteration, the schedule is probed at iteration 0 only (where e.g. ``poly`` without
``max_iter`` is already NaN). Schedules longer than ``MAX_ANALYSED`` iterations are
analysed over their first ``MAX_ANALYSED`` iterations.
"""

from __future__ import annotations

import math
import re
import weakref
from dataclasses import dataclass

import numpy as np

from nandoctor.config import lr
from nandoctor.config.edits import insert_edit, replace_edit
from nandoctor.config.solver import Solver
from nandoctor.config.textformat import Field
from nandoctor.core.types import Edit, Evidence, Fix, InputError, Location

MAX_ANALYSED = 10_000_000
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass
class LrAnalysis:
    solver: Solver
    params: lr.LrParams
    horizon: lr.Horizon
    stop: int  # iterations analysed: [0, stop)
    abort: lr.CaffeAbort | None
    rates: np.ndarray | None  # None when Caffe aborts

    @property
    def runner_text(self) -> str:
        if self.horizon.stop == 0:
            return "iteration 0 (caffe train runs no iteration with max_iter <= 0; solver.step() would)"
        return self.horizon.describe()


def analysis(facts) -> LrAnalysis | None:
    """The solver's lr schedule over its horizon; None when its fields cannot be read
    (the schema rules report those)."""
    solver = facts.solver
    iters = (facts.options or {}).get("iters")
    per_solver = _CACHE.setdefault(solver, {})
    if iters in per_solver:
        return per_solver[iters]
    try:
        params = lr.LrParams.from_solver(solver)
    except InputError:
        per_solver[iters] = None
        return None
    h = lr.horizon(params, iters)
    stop = min(h.stop, MAX_ANALYSED) if h.stop > 0 else 1
    abort = lr.caffe_abort(params)
    rates = None if abort else lr.schedule(params, stop)
    result = LrAnalysis(solver, params, h, stop, abort, rates)
    per_solver[iters] = result
    return result


# --- locations and evidence ------------------------------------------------------------------


def location(solver: Solver, *names: str) -> Location:
    """Where the first set field of ``names`` is; the file itself when none is set."""
    for name in names:
        loc = solver.location(name)
        if loc is not None:
            return loc
    return Location(solver.path)


def field_text(solver: Solver, name: str) -> str:
    f = solver.field(name)
    if f is None or f.is_message:
        return ""
    start, end = f.value.span
    return solver.doc.text[start:end]


def field_evidence(solver: Solver, *names: str) -> list[Evidence]:
    out = []
    for name in names:
        f = solver.field(name)
        if f is not None and not f.is_message:
            out.append(Evidence(f"{name}: {field_text(solver, name)}", solver.doc.field_location(f), "prototxt"))
        elif f is None:
            out.append(Evidence(f"{name} is not set (Caffe reads {_default_text(solver, name)})", None, "prototxt"))
    return out


def _default_text(solver: Solver, name: str) -> str:
    v = solver.value(name)
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, list):
        return "no values"
    return g(v)


def g(x) -> str:
    """A number as C's %g prints it (what people write in prototxt files)."""
    if isinstance(x, (bool, np.bool_)):
        return "true" if x else "false"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return lr.format_lr(x) if isinstance(x, np.float32) else _g64(float(x))


def _g64(v: float) -> str:
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return format(v, "g")


def rate_evidence(a: LrAnalysis, iteration: int, what: str = "") -> Evidence:
    value = lr.format_lr(a.rates[iteration]) if a.rates is not None and iteration < a.rates.size else "?"
    text = f"Iteration {iteration}, lr = {value}" + (f" ({what})" if what else "")
    return Evidence(text, None, "computed")


# --- fixes -----------------------------------------------------------------------------------


def set_field(solver: Solver, name: str, value_text: str) -> Edit:
    """An edit that makes ``name`` read ``value_text``: replace its value, or add the field."""
    f = solver.field(name)
    if f is not None and not f.is_message:
        return replace_edit(solver.path, f.value, value_text)
    return insert_edit(solver, name, value_text)


def set_fix(solver: Solver, changes: dict[str, str], description: str, *, safe: bool = True) -> Fix:
    edits = []
    for name, value in changes.items():
        edit = set_field(solver, name, value)
        # Several insertions at the same place: chain them in order.
        same = [e for e in edits if e.start == edit.start == edit.end and e.start == e.end]
        if same:
            prev = same[-1]
            edits[edits.index(prev)] = Edit(
                prev.path, prev.start, prev.end, "", prev.new + edit.new, prev.line, prev.col
            )
            continue
        edits.append(edit)
    return Fix(description, tuple(edits), safe)


def change_text(solver: Solver, name: str, new: str) -> str:
    old = field_text(solver, name)
    return f"`{name}: {old}` -> `{name}: {new}`" if old else f"add `{name}: {new}`"


def delete_field_edit(solver: Solver, f: Field) -> Edit:
    """Remove one field; its whole line when nothing else (but a comment) is on it."""
    text = solver.doc.text
    start = f.name_pos.offset
    end = f.value.end if f.value.end is not None else start
    line_start = text.rfind("\n", 0, start) + 1
    nl = text.find("\n", end)
    line_end = len(text) if nl < 0 else nl + 1
    rest = text[end : line_end if nl >= 0 else len(text)]
    if text[line_start:start].strip() == "" and re.fullmatch(r"[ \t]*(#[^\n]*)?\r?\n?", rest):
        return Edit(solver.path, line_start, line_end, text[line_start:line_end], "", f.name_pos.line, 1)
    return Edit(solver.path, start, end, text[start:end], "", f.name_pos.line, f.name_pos.col)


def pretty(x: float) -> str:
    """A suggested value, short: 6 significant digits."""
    return format(float(x), ".6g")
