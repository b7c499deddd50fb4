"""Read a ``debug_info: true`` log: which layer went wrong first, in which pass, and how an explosion spread.

Caffe prints, on every displayed iteration, the mean |x| of every layer's top data and
parameters (forward order), of every bottom/param diff (backward order). This module
turns those values into one answer per run (segment):

``localize(trace, seg=None) -> Localization | None``
    ``layer``, ``phase`` ("forward" | "backward" | "update"), ``cause``, ``iteration``,
    the first non-finite record, the first *jump* (a series that grows >= 1000x over
    the median of its own recent history before anything is non-finite), and for an
    explosion the gradient ``path`` (loss head first, towards the input) and the
    ``loss_head`` whose weighted contribution grew first.

Why the phase is decided this way: a value that turns nan in forward while nothing grew
before it was *made* there (data, pooling, unsafe math: the classic forward origins).
When series grew by orders of magnitude first, the nan is only the end of an
explosion; explosions are driven by gradients (backward) and carried into the weights
by the update, so the culprit is the loss head whose gradient grew first (fix: its
loss_weight), else the layer whose weights jumped first (its lr_mult), else the first
layer whose gradient jumped.

``origin_symptoms``/``growth_symptoms`` wrap this for ``log.symptoms`` (kinds
debug_forward_origin / debug_backward_origin / debug_param_update / debug_growth, rules
NAN500-NAN503); ``layer_matrix`` feeds the heat map (``report.debug_heatmap``).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nandoctor.config.layers import INPUT_TYPES, INPUT_TYPES_V1
from nandoctor.core.types import Cause
from nandoctor.log.symptom import (
    cause_for_layer,
    debug_text,
    fmt_value,
    layer_types,
    new_symptom,
)
from nandoctor.log.trace import DEBUG_CODES, DebugRecord, Segment, Trace

JUMP = 1e3  # growth over the series' own recent history that counts as "explodes"
PATH_JUMP = 10.0  # growth that puts a layer on the path of an explosion already found
FLOOR = 1.0  # a jump must reach at least this mean |x| (1e-7 -> 1e-4 is harmless)
HISTORY = 5  # previous displayed iterations the reference (median) is taken over

FORWARD_TOP, FORWARD_PARAM, BACKWARD_BOTTOM, BACKWARD_PARAM, FORWARD_INPUT = 0, 1, 2, 3, 4


@dataclass(slots=True)
class Jump:
    """A value that grew ``factor`` times over the median of its series' recent history."""

    record: DebugRecord
    reference: float
    factor: float
    from_iteration: int | None


@dataclass
class Localization:
    segment: int
    layer: str | None
    phase: str  # forward | backward | update
    cause: Cause
    iteration: int | None
    layer_type: str | None = None
    first_nonfinite: DebugRecord | None = None
    jump: Jump | None = None  # the first jump before the first non-finite value
    explosion: bool = False  # the failure is the end of a growth, not a value made non-finite at once
    loss_head: str | None = None
    loss_heads: list[dict[str, Any]] = field(default_factory=list)
    path: list[str] = field(default_factory=list)
    path_detail: list[dict[str, Any]] = field(default_factory=list)
    candidates: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        first = self.first_nonfinite
        out: dict[str, Any] = {
            "segment": self.segment,
            "layer": self.layer,
            "layer_type": self.layer_type,
            "phase": self.phase,
            "cause": self.cause.value,
            "iteration": self.iteration,
            "explosion": self.explosion,
            "first_nonfinite": _record_dict(first) if first else None,
            "jump": _jump_dict(self.jump) if self.jump else None,
            "loss_head": self.loss_head,
            "loss_heads": [{k: _num(v) if isinstance(v, float) else v for k, v in h.items()} for h in self.loss_heads],
            "path": self.path,
            "path_detail": self.path_detail,
        }
        if self.candidates:
            out["candidates"] = self.candidates
        return out


# ------------------------------------------------------------------ series scan
# A series is one (code, layer, blob); its history is the max |x| per displayed iteration.
# Everything below is numpy over the run's records: a debug_info run holds millions of them.


class _Columns:
    """The run's debug columns as numpy views (no copies), and its train rows in log order."""

    def __init__(self, seg: Segment):
        t = seg.debug
        self.code = np.frombuffer(t.code, dtype=np.uint8)
        self.layer = np.frombuffer(t.layer, dtype=np.intc)
        self.blob = np.frombuffer(t.blob, dtype=np.intc)
        self.value = np.frombuffer(t.value, dtype=np.float64)
        self.iteration = np.frombuffer(t.iteration, dtype=np.int64)
        self.line = np.frombuffer(t.line, dtype=np.int64)
        self.rows = np.flatnonzero(np.frombuffer(t.phase, dtype=np.uint8) == 0)

    def series(self, rows: np.ndarray) -> np.ndarray:
        """One int64 per row naming its series (code, layer, blob)."""
        layers = int(self.layer.max(initial=0)) + 1
        blobs = int(self.blob.max(initial=0)) + 1
        return (self.code[rows].astype(np.int64) * layers + self.layer[rows]) * blobs + self.blob[rows]

    def ids(self, names: list[str], wanted) -> np.ndarray:
        """The name ids spelled as one of ``wanted`` (two byte spellings can decode to one name)."""
        return np.array([k for k, n in enumerate(names) if n in wanted], dtype=np.intc)

    def in_iteration(self, it: int) -> list[int]:
        rows = self.rows
        return rows[self.iteration[rows] == it].tolist()


def _references(cols: _Columns, seen: np.ndarray, want: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each wanted row's reference and the iteration it dates from, once the rows ``seen`` are seen.

    ``seen``: rows in log order, all finite; ``want``: positions in ``seen``. The reference
    of a row is the median of the positive per-iteration maxima of its series over the
    ``HISTORY`` earlier iterations in which the series was seen (nan when there are
    none); the iteration is the last of them (-2 when there is none). The current
    iteration's own values never count.
    """
    key = cols.series(seen)
    # only the wanted rows' series matter: a jump is looked for among the few values >= FLOOR
    mine = np.flatnonzero(np.isin(key, key[want], kind="table"))
    if len(mine) < len(seen):
        seen, key, want = seen[mine], key[mine], np.searchsorted(mine, want)
    its = cols.iteration[seen]
    order = np.argsort(key, kind="stable")  # a series' rows stay in log order: its iterations in turn
    ks, its_s = key[order], its[order]
    new = np.ones(len(seen), dtype=bool)
    new[1:] = (ks[1:] != ks[:-1]) | (its_s[1:] != its_s[:-1])
    starts = np.flatnonzero(new)
    gmax = np.maximum.reduceat(np.abs(cols.value[seen])[order], starts) if len(starts) else np.zeros(0)
    gkey, git = ks[starts], its_s[starts]
    gid = np.empty(len(seen), dtype=np.int64)
    gid[order] = np.cumsum(new) - 1
    g = gid[want]
    window = np.full((len(g), HISTORY), np.nan)
    since = np.full(len(g), -2, dtype=np.int64)
    for back in range(1, HISTORY + 1):
        p = g - back
        ok = p >= 0
        p = np.where(ok, p, 0)
        ok &= gkey[p] == gkey[g]
        x = gmax[p]
        window[:, back - 1] = np.where(ok & (x > 0), x, np.nan)
        if back == 1:
            since = np.where(ok, git[p], -2)
    window.sort(axis=1)  # nan last
    n = np.count_nonzero(~np.isnan(window), axis=1)
    at = np.arange(len(g))
    hi = window[at, n // 2]
    lo = window[at, np.maximum(n // 2 - 1, 0)]
    with np.errstate(all="ignore"):  # two huge maxima: their mean is inf, as in Python
        ref = np.where(n % 2 == 1, hi, (lo + hi) / 2)
    return np.where(n == 0, np.nan, ref), since


def _scan(cols: _Columns):
    """First non-finite row, first jump before it, and the factor of every row of the jump's iteration from it on.

    The jump: the first row (before anything is non-finite) whose |x| >= ``FLOOR`` is
    ``JUMP`` times its reference. Returns (row | None, (row, factor, reference, from
    iteration) | None, {row: (factor, reference)}).
    """
    rows = cols.rows
    vals = cols.value[rows]
    bad = np.flatnonzero(~np.isfinite(vals))
    stop = int(bad[0]) if len(bad) else len(rows)
    first_bad = int(rows[stop]) if len(bad) else None
    cand = np.flatnonzero(np.abs(vals[:stop]) >= FLOOR)
    if not len(cand):
        return first_bad, None, {}
    ref, since = _references(cols, rows[:stop], cand)
    with np.errstate(all="ignore"):
        factor = np.abs(vals[cand]) / ref
    hit = np.flatnonzero((ref > 0) & (factor >= JUMP))
    if not len(hit):
        return first_bad, None, {}
    k = int(hit[0])
    j = int(cand[k])
    prev = int(since[k])
    jump = (int(rows[j]), float(factor[k]), float(ref[k]), None if prev == -2 else prev)
    # the jump's iteration from the jump on: every row's factor (non-finite rows: inf)
    it_rows = cols.iteration[rows]
    end = j + 1
    while end < len(rows) and it_rows[end] == it_rows[j]:
        end += 1  # bounded by one iteration's records
    span = np.arange(j, end)
    finite_before = np.flatnonzero(np.isfinite(vals[:end]))
    pos = np.searchsorted(finite_before, span[np.isfinite(vals[span])])
    ref2, _ = _references(cols, rows[finite_before], pos)
    factors: dict[int, tuple[float, float]] = {}
    refs = dict(zip(span[np.isfinite(vals[span])].tolist(), ref2.tolist(), strict=True))
    for i in span.tolist():
        r = refs.get(i)
        if r is None:
            factors[int(rows[i])] = (math.inf, math.nan)
        elif r > 0:  # nan (no history) fails too
            factors[int(rows[i])] = (abs(float(vals[i])) / r, r)
    return first_bad, jump, factors


# ------------------------------------------------------------------ net structure from the records
def _forward_order(seg: Segment, rows: list[int], it: int | None) -> list[tuple[str, list[str]]]:
    """Layers (with their tops) in forward order, from the forward records of one iteration."""
    t = seg.debug
    order: dict[str, list[str]] = {}
    for i in rows:
        if it is not None and t.iteration[i] != it:
            continue
        if t.code[i] in (FORWARD_TOP, FORWARD_INPUT):
            tops = order.setdefault(t.names[t.layer[i]], [])
            blob = t.names[t.blob[i]]
            if blob not in tops:
                tops.append(blob)
        elif t.code[i] == FORWARD_PARAM:
            order.setdefault(t.names[t.layer[i]], [])
    return list(order.items())


def _producer(forward: list[tuple[str, list[str]]], consumer: str, blob: str) -> str | None:
    """The last layer before ``consumer`` in forward order that writes ``blob`` (in-place layers included)."""
    names = [name for name, _ in forward]
    end = names.index(consumer) if consumer in names else len(names)
    for name, tops in reversed(forward[:end]):
        if blob in tops:
            return name
    return None


def _is_input(typ: str | None, layer: str, role: str) -> bool:
    return role == "input" or typ in INPUT_TYPES or typ in INPUT_TYPES_V1 or (typ is None and layer.startswith("data"))


# ------------------------------------------------------------------ loss heads
def _loss_weights(seg: Segment, forward: list[tuple[str, list[str]]]) -> dict[str, dict[str, float]]:
    """Loss layer -> {top blob: loss weight}, from the net setup lines (else the layer types)."""
    tops = dict(forward)
    heads: dict[str, dict[str, float]] = {}
    for ls in seg.layers:
        if ls.net_index != 0 or not any(w != 0 for w in ls.loss_weights):
            continue
        names = tops.get(ls.name, [])
        if len(names) == len(ls.loss_weights):
            heads[ls.name] = {b: w for b, w in zip(names, ls.loss_weights, strict=True) if w != 0}
        elif names:
            heads[ls.name] = {names[0]: max(ls.loss_weights, key=abs)}
    if heads:
        return heads
    for name, typ in layer_types(seg).items():
        if (typ.endswith("Loss") or typ.endswith("LOSS")) and tops.get(name):
            heads[name] = {tops[name][0]: 1.0}
    return heads


def _head_growth(seg: Segment, rows: list[int], heads: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """Each loss head's weighted contribution per iteration and the first iteration it jumps (or turns non-finite)."""
    t = seg.debug
    want = {(name, blob): w for name, tops in heads.items() for blob, w in tops.items()}
    series: dict[str, dict[int, float]] = {name: {} for name in heads}
    for i in rows:
        if t.code[i] != FORWARD_TOP:
            continue
        pair = (t.names[t.layer[i]], t.names[t.blob[i]])
        w = want.get(pair)
        if w is None:
            continue
        it = t.iteration[i]
        contrib = abs(w * t.value[i])
        per = series[pair[0]]
        per[it] = contrib if it not in per or not math.isfinite(contrib) else max(per[it], contrib)
    out = []
    for name, per in series.items():
        its = sorted(per)
        grew_at, factor, first = None, None, (per[its[0]] if its else None)
        for k, it in enumerate(its):
            v = per[it]
            if not math.isfinite(v):
                grew_at, factor = it, math.inf
                break
            recent = [per[j] for j in its[max(0, k - HISTORY) : k] if per[j] > 0]
            if recent and v / statistics.median(recent) >= JUMP:
                grew_at, factor = it, v / statistics.median(recent)
                break
        out.append({"layer": name, "loss_weight": max(heads[name].values(), key=abs), "first_contribution": first,
                    "grew_at": grew_at, "growth_factor": factor})  # fmt: skip
    total = sum(h["first_contribution"] or 0.0 for h in out if _finite(h["first_contribution"]))
    for h in out:
        fc = h["first_contribution"]
        h["share"] = fc / total if total > 0 and _finite(fc) else None
    return out


def _pick_head(heads: list[dict[str, Any]]) -> str | None:
    """The head whose contribution grew first (larger factor on a tie) when it stands out from the others."""
    grown = [h for h in heads if h["grew_at"] is not None]
    if not grown:
        return None
    grown.sort(key=lambda h: (h["grew_at"], -(h["growth_factor"] or 0)))
    best = grown[0]
    if len(heads) == 1:
        # one head: it is "the" head only when its weight is unusual; otherwise the lr is the knob
        return best["layer"] if abs(best["loss_weight"]) > 1 else None
    rivals = [h for h in grown[1:] if h["grew_at"] == best["grew_at"]]
    if rivals and (best["growth_factor"] or 0) < 10 * (rivals[0]["growth_factor"] or 0):
        return None  # several heads grow together: the trunk or the lr, not one head
    return best["layer"]


# ------------------------------------------------------------------ explosion path
def _gradient_path(seg, rows, jump_it, factors, forward, start) -> tuple[list[str], list[dict[str, Any]]]:
    """From ``start`` towards the input: at each layer follow the bottom diff that grew most (>= PATH_JUMP)."""
    t = seg.debug
    bottoms: dict[str, list[tuple[str, float, float]]] = {}
    for i in rows:
        if t.iteration[i] != jump_it or t.code[i] != BACKWARD_BOTTOM:
            continue
        f = factors.get(i, (0.0, math.nan))[0]
        bottoms.setdefault(t.names[t.layer[i]], []).append((t.names[t.blob[i]], f, t.value[i]))
    path, detail, cur = [start], [], start
    seen = {start}
    while True:
        grown = [b for b in bottoms.get(cur, []) if b[1] >= PATH_JUMP]
        if not grown:
            break
        blob, f, v = max(grown, key=lambda b: b[1])
        detail.append({"layer": cur, "bottom": blob, "diff": _num(v), "growth_factor": _num(f)})
        nxt = _producer(forward, cur, blob)
        if nxt is None or nxt in seen:
            break
        path.append(nxt)
        seen.add(nxt)
        cur = nxt
    return path, detail


def _forward_path(seg, rows, jump_it, factors, start) -> tuple[list[str], list[dict[str, Any]]]:
    """Layers whose top grew >= PATH_JUMP in the jump's iteration, in forward order from ``start``."""
    t = seg.debug
    path, detail, on = [], [], False
    for i in rows:
        if t.iteration[i] != jump_it or t.code[i] != FORWARD_TOP:
            continue
        layer = t.names[t.layer[i]]
        on = on or layer == start
        f = factors.get(i, (0.0, math.nan))[0]
        if on and f >= PATH_JUMP and layer not in path:
            path.append(layer)
            detail.append({"layer": layer, "top": t.names[t.blob[i]], "value": _num(t.value[i]),
                           "growth_factor": _num(f)})  # fmt: skip
    return path, detail


# ------------------------------------------------------------------ the answer
def localize(trace: Trace, seg: Segment | None = None) -> Localization | None:
    """Where a debug_info run went wrong (the first segment with debug values when ``seg`` is None).

    Kept on the segment (``seg.derived``): the NAN50x rules, the heat map and the engine all ask.
    """
    if seg is None:
        seg = next((s for s in trace.segments if len(s.debug)), None)
        if seg is None:
            return None
    if not len(seg.debug):
        return None
    known = seg.derived.get("localization")
    if known is not None and known[0] == len(seg.debug):
        return known[1]
    answer = _localize(trace, seg)
    seg.derived["localization"] = (len(seg.debug), answer)
    return answer


def _localize(trace: Trace, seg: Segment) -> Localization | None:
    t = seg.debug
    cols = _Columns(seg)
    first_bad, jump_row, factors = _scan(cols)
    if first_bad is None and jump_row is None:
        return None
    types = layer_types(seg)
    bad = t.record(first_bad) if first_bad is not None else None
    jump = None
    if jump_row is not None:
        i, factor, ref, prev_it = jump_row
        jump = Jump(t.record(i), ref, factor, prev_it)
    if jump is None:
        return _origin_only(seg, bad, types)
    return _explosion(seg, cols, bad, jump, factors, types)


def _origin_only(seg: Segment, bad: DebugRecord, types: dict[str, str]) -> Localization:
    typ = types.get(bad.layer)
    phase = {"forward": "forward", "backward": "backward", "update": "update"}[bad.direction]
    if bad.direction == "forward" and bad.role == "param":
        phase = "update"  # weights already bad in forward: the previous update made them
    if phase == "update":
        cause, cands = Cause.UNKNOWN, [Cause.GRADIENT_EXPLOSION.value, Cause.LR_POLICY.value]
    else:
        cause, cands = cause_for_layer(typ, bad.layer, bad.role)
    return Localization(seg.index, bad.layer, phase, cause, bad.iteration, typ, bad, candidates=cands)


def _explosion(seg, cols: _Columns, bad, jump: Jump, factors, types) -> Localization:
    t = seg.debug
    jr = jump.record
    it = jr.iteration
    rows = cols.in_iteration(it)  # what the order and the paths read: the jump's iteration
    forward = _forward_order(seg, rows, it)
    weights = _loss_weights(seg, forward)
    r = cols.rows
    head_rows = r[(cols.code[r] == FORWARD_TOP) & np.isin(cols.layer[r], cols.ids(t.names, weights))]
    heads = _head_growth(seg, head_rows.tolist(), weights)
    loss_head = _pick_head(heads)
    in_it = [i for i in factors if t.iteration[i] == it]
    grown = sorted(i for i in in_it if factors[i][0] >= JUMP and math.isfinite(factors[i][0]))
    param_jump = next((i for i in grown if t.code[i] == FORWARD_PARAM), None)
    back_jump = next((i for i in grown if t.code[i] in (BACKWARD_BOTTOM, BACKWARD_PARAM)), None)
    typ = types.get(jr.layer)
    loc = Localization(seg.index, jr.layer, "forward", Cause.GRADIENT_EXPLOSION, it, typ, bad, jump, True,
                       loss_head, heads)  # fmt: skip
    if jr.direction == "forward" and _is_input(typ, jr.layer, jr.role):
        # the input itself jumped (records of 1e30): bad data, not an explosion
        loc.cause, loc.explosion = Cause.BAD_INPUT, False
        return loc
    if loss_head is not None:
        loc.layer, loc.phase = loss_head, "backward"
        loc.path, loc.path_detail = _gradient_path(seg, rows, it, factors, forward, loss_head)
    elif param_jump is not None:
        loc.layer, loc.phase = t.names[t.layer[param_jump]], "update"
        loc.path, loc.path_detail = _forward_path(seg, rows, it, factors, loc.layer)
    elif back_jump is not None:
        loc.layer, loc.phase = t.names[t.layer[back_jump]], "backward"
        loc.path, loc.path_detail = _gradient_path(seg, rows, it, factors, forward, loc.layer)
    else:
        loc.path, loc.path_detail = _forward_path(seg, rows, it, factors, jr.layer)
    loc.layer_type = types.get(loc.layer)
    return loc


# ------------------------------------------------------------------ symptoms (NAN500-NAN503)
def origin_symptoms(trace: Trace, seg: Segment) -> list:
    """The first non-finite debug value as a symptom; flagged ``after_growth`` when an explosion preceded it."""
    loc = localize(trace, seg)
    if loc is None or loc.first_nonfinite is None:
        return []
    first = loc.first_nonfinite
    it = first.iteration
    kind_phase = _origin_only(seg, first, layer_types(seg))
    phase = kind_phase.phase
    kind = {"forward": "debug_forward_origin", "backward": "debug_backward_origin"}.get(phase, "debug_param_update")
    typ = kind_phase.layer_type
    cause, candidates = kind_phase.cause, kind_phase.candidates
    if kind == "debug_param_update":
        msg = (f"debug_info: the weights of layer {first.layer} (param blob {first.blob}) are already "
               f"{fmt_value(first.value)} at iteration {it} while the previous pass was finite: the update made them")  # fmt: skip
    else:
        where = "forward data" if phase == "forward" else "backward diff"
        msg = (f"debug_info: layer {first.layer}{f' ({typ})' if typ else ''} is the first to produce a non-finite "
               f"value ({fmt_value(first.value)} in {first.role} blob {first.blob} {where}) at iteration {it}")  # fmt: skip
    data: dict[str, Any] = {
        "layer": first.layer, "layer_type": typ, "blob": first.blob, "role": first.role, "phase": phase,
        "iteration": it, "value": str(first.value), "first_nonfinite_debug_iteration": it,
    }  # fmt: skip
    if loc.explosion and loc.jump is not None:
        # the nan ends a growth that started earlier: it is a consequence, the culprit is the explosion's
        cause, candidates = Cause.GRADIENT_EXPLOSION, []
        data.update(after_growth=True, growth_iteration=loc.jump.record.iteration, explosion_layer=loc.layer,
                    explosion_phase=loc.phase)  # fmt: skip
        if loc.loss_head:
            data["loss_head"] = loc.loss_head
        msg += (
            f", after values had grown by orders of magnitude since iteration {loc.jump.record.iteration} (explosion)"
        )
    if candidates:
        data["candidates"] = candidates
    t = seg.debug
    cols = _Columns(seg)
    r = cols.rows
    before = r[(cols.iteration[r] == (-1 if it is None else it)) & (cols.line[r] < first.line)]
    prev = [t.record(i) for i in before[-3:].tolist()]
    if data.get("after_growth"):
        prev = [loc.jump.record]  # what matters before this nan is where the growth began
    ev = [(r.line, debug_text(r)) for r in [*prev, first]]
    return [new_symptom(seg, kind, msg, cause, iteration=it, culprit=first.layer, evidence=ev, data=data)]


def growth_symptoms(trace: Trace, seg: Segment) -> list:
    """The explosion (first jump by orders of magnitude before anything is non-finite) as a symptom."""
    loc = localize(trace, seg)
    if loc is None or loc.jump is None:
        return []
    jump = loc.jump
    own = _own_jump(seg, loc)
    shown = own or jump
    r = shown.record
    data: dict[str, Any] = {
        "layer": loc.layer, "layer_type": loc.layer_type, "blob": r.blob, "role": r.role, "phase": loc.phase,
        "iteration": jump.record.iteration, "from_iteration": shown.from_iteration, "growth_factor": shown.factor,
        "value": r.value, "first_nonfinite_debug_iteration": loc.first_nonfinite.iteration if loc.first_nonfinite else None,
        "first_jump": _jump_dict(jump), "path": loc.path, "path_detail": loc.path_detail, "loss_heads": loc.loss_heads,
    }  # fmt: skip
    if loc.loss_head:
        data["loss_head"] = loc.loss_head
    msg = (f"debug_info: layer {r.layer} {r.role} blob {r.blob} grows {shown.factor:.3g}x between iterations "
           f"{shown.from_iteration} and {r.iteration} ({fmt_value(shown.reference)} -> {fmt_value(r.value)})")  # fmt: skip
    if loc.loss_head:
        head = next(h for h in loc.loss_heads if h["layer"] == loc.loss_head)
        msg += (f"; loss head {loc.loss_head} (loss_weight {head['loss_weight']:g}) grows first, its gradient "
                f"drives the explosion")  # fmt: skip
    elif loc.phase == "update":
        msg += f"; the weights of {loc.layer} jump first: the update blows them up"
    if len(loc.path) > 1:
        msg += f"; path: {' -> '.join(loc.path)}"
    ev = []
    prev = _previous_record(seg, shown)
    if prev is not None:
        ev.append((prev.line, debug_text(prev)))
    ev.append((r.line, debug_text(r)))
    if shown is not jump:
        ev.append((jump.record.line, debug_text(jump.record)))
    return [new_symptom(seg, "debug_growth", msg, loc.cause, iteration=jump.record.iteration, culprit=loc.layer,
                  evidence=sorted(ev), data=data)]  # fmt: skip


def _own_jump(seg: Segment, loc: Localization) -> Jump | None:
    """The culprit layer's own first jump in the jump's iteration (its loss top, weights or diff)."""
    if loc.layer is None or loc.jump is None or loc.layer == loc.jump.record.layer:
        return None
    t = seg.debug
    it = loc.jump.record.iteration
    cols = _Columns(seg)
    rows = cols.rows
    later = np.flatnonzero(cols.iteration[rows] > it)
    rows = rows[: later[0] if len(later) else len(rows)]
    seen = rows[np.isfinite(cols.value[rows])]
    want = np.flatnonzero((cols.iteration[seen] == it) & np.isin(cols.layer[seen], cols.ids(t.names, {loc.layer})))
    if not len(want):
        return None
    ref, since = _references(cols, seen, want)
    with np.errstate(all="ignore"):
        factor = np.abs(cols.value[seen[want]]) / ref
    hit = np.flatnonzero((ref > 0) & (factor >= PATH_JUMP))
    if not len(hit):
        return None
    k = int(hit[0])
    prev = int(since[k])
    return Jump(t.record(int(seen[want[k]])), float(ref[k]), float(factor[k]), None if prev == -2 else prev)


def _previous_record(seg: Segment, jump: Jump) -> DebugRecord | None:
    """The record of the jump's series at the iteration its reference dates from."""
    t = seg.debug
    r = jump.record
    if jump.from_iteration is None:
        return None
    cols = _Columns(seg)
    rows = cols.rows
    rows = rows[(cols.line[rows] < r.line) & (cols.iteration[rows] == jump.from_iteration)]
    found = None
    for i in rows.tolist():
        if t.names[t.layer[i]] == r.layer and t.names[t.blob[i]] == r.blob:
            rec = t.record(i)
            if (rec.direction, rec.role) == (r.direction, r.role):
                found = rec
    return found


# ------------------------------------------------------------------ heat map data
def layer_matrix(seg: Segment, direction: str = "forward") -> tuple[list[str], list[int], list[list[float | None]]]:
    """Layers x iterations of the largest mean |x| per layer: forward top data, or backward diffs.

    ``direction`` is "forward" (top data), "backward" (bottom and param diffs) or "param"
    (weights). Rows follow the net's forward order; cells without a value are None; nan
    and inf are kept so the plot can mark them.
    """
    codes = {"forward": (FORWARD_TOP, FORWARD_INPUT), "backward": (BACKWARD_BOTTOM, BACKWARD_PARAM),
             "param": (FORWARD_PARAM,)}[direction]  # fmt: skip
    t = seg.debug
    cols = _Columns(seg)
    rows = cols.rows
    its = np.unique(cols.iteration[rows])  # every displayed iteration, so the panels share their columns
    sel = rows[np.isin(cols.code[rows], codes)]
    forward = rows[np.isin(cols.code[rows], (FORWARD_TOP, FORWARD_INPUT, FORWARD_PARAM))]
    position: dict[str, int] = {}  # layer name -> row of the matrix: forward order first, then the rest
    for part in (forward, sel):
        ids, first = np.unique(cols.layer[part], return_index=True)
        for k in ids[np.argsort(first)].tolist():
            position.setdefault(t.names[k], len(position))
    if not len(sel):
        return [], its.tolist(), []
    by_id = np.array([position.get(n, -1) for n in t.names], dtype=np.int64)
    cell = by_id[cols.layer[sel]] * len(its) + np.searchsorted(its, cols.iteration[sel])
    v = np.abs(cols.value[sel])
    # per cell: the last non-finite value if there is one (it marks the cell), else the largest
    order = np.argsort(cell, kind="stable")
    cs, vs = cell[order], v[order]
    fin = np.isfinite(vs)
    starts = np.flatnonzero(np.r_[True, cs[1:] != cs[:-1]])
    largest = np.maximum.reduceat(np.where(fin, vs, -np.inf), starts)
    last_bad = np.maximum.reduceat(np.where(fin, -1, np.arange(len(vs))), starts)
    values = np.where(last_bad >= 0, vs[np.maximum(last_bad, 0)], largest)
    matrix: list[list[float | None]] = [[None] * len(its) for _ in position]
    for c, x in zip(cs[starts].tolist(), values.tolist(), strict=True):
        matrix[c // len(its)][c % len(its)] = x
    names = list(position)
    keep = [k for k in range(len(names)) if any(x is not None for x in matrix[k])]
    return [names[k] for k in keep], its.tolist(), [matrix[k] for k in keep]


# ------------------------------------------------------------------ helpers
def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _num(v: float):
    return v if _finite(v) else str(v)


def _record_dict(r: DebugRecord) -> dict[str, Any]:
    return {"line": r.line, "iteration": r.iteration, "direction": r.direction, "layer": r.layer, "role": r.role,
            "blob": r.blob, "value": _num(r.value)}  # fmt: skip


def _jump_dict(j: Jump) -> dict[str, Any]:
    return {**_record_dict(j.record), "from_iteration": j.from_iteration, "reference": _num(j.reference),
            "growth_factor": _num(j.factor)}  # fmt: skip


__all__ = ["DEBUG_CODES", "Jump", "Localization", "growth_symptoms", "layer_matrix", "localize", "origin_symptoms"]
