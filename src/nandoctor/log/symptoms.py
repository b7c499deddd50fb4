"""Symptoms: what a Caffe trace shows about how (and where) it went non-finite.

``symptoms(trace) -> list[Symptom]`` runs every detector over every segment (run)
of the trace. A ``Symptom`` is a plain observation with numbers: ``kind`` (a stable
name such as ``loss_nonfinite``), the cause class it hints at (``cause``; UNKNOWN
with ``data["candidates"]`` when the log alone cannot decide), the run
(``segment``), the ``iteration``, ``culprit`` (layer, output or solver field),
``evidence`` (log lines as ``(line, text)``) and ``data`` for the diagnosis engine
(``first_nonfinite_iteration``, ``growth_factor``, ``output``, ``layer``, ``phase``...).
The rules in ``nandoctor.rules.log`` turn each kind into a Finding.

Detectors (one function each, ``detect_<kind>(trace, seg) -> list[Symptom]``):
loss_nonfinite, nan_at_start, loss_trend (rising / flat_then_jump / flat_or_falling),
softmax_plateau, output_first, smoothed_only, dominant_output, lr_nonfinite,
lr_negative, lr_increasing, clip_rising, test_nonfinite, check_failed, crash, and for
debug_info logs debug_forward_origin, debug_backward_origin, debug_param_update,
debug_growth.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from nandoctor.core.types import Cause
from nandoctor.log.debug_analysis import growth_symptoms, origin_symptoms
from nandoctor.log.symptom import Symptom, fmt_value, is_bad, new_symptom
from nandoctor.log.trace import Segment, Trace, TrainPoint

# -log(FLT_MIN): SoftmaxWithLoss clamps the probability at FLT_MIN, so a saturated sample costs this.
SOFTMAX_PLATEAU = 87.3365
# -log(1e-20): MultinomialLogisticLoss / InfogainLoss clamp.
MULTINOMIAL_PLATEAU = 46.0517
WINDOW = 10
ORDERS_OF_MAGNITUDE = 1e3  # growth between two displays that counts as "explodes"


def _loss_line(p: TrainPoint) -> tuple[int, str]:
    return (p.line, f"Iteration {p.iteration}, loss = {p.loss_text}")


def _output_line(o) -> tuple[int, str]:
    text = f"Train net output #{o.index}: {o.name} = {o.text}"
    if o.weight is not None:
        text += f" (* {fmt_value(o.weight)} = {fmt_value(o.contribution)} loss)"
    return (o.line, text)


# ---------------------------------------------------------------- training loss
def _bad_values(column) -> np.ndarray:
    """Per value of a ``columns.Floats`` slice pair (values, none): nan/inf and not None."""
    values, none = column
    return ~np.isfinite(values) & ~none


def _output_columns(seg: Segment):
    """The run's train output rows: (first row, name ids, values, None flags, owning display per row)."""
    tr = seg.train
    lo, hi = tr.output_span()
    outs = tr.store.outputs
    if hi <= lo:
        empty = np.zeros(0)
        return lo, np.zeros(0, dtype=np.int32), empty, np.zeros(0, dtype=bool), np.zeros(0, dtype=np.int64)
    names = np.frombuffer(outs.name, dtype=np.int32)[lo:hi]
    return lo, names, outs.value.numpy()[lo:hi], outs.value.none_mask()[lo:hi], tr.output_owner()


def _bad_displays(seg: Segment) -> np.ndarray:
    """Per display of the run: its loss or any of its train outputs is nan/inf."""
    tr = seg.train
    bad = _bad_values((tr.losses(), tr.loss_none()))
    _, _, values, none, owner = _output_columns(seg)
    out_bad = _bad_values((values, none))
    if out_bad.any():
        bad[owner[out_bad]] = True
    return bad


def first_nonfinite_point(seg: Segment) -> tuple[int, TrainPoint] | None:
    """Index and point of the first displayed iteration whose loss or any train output is nan/inf.

    Most detectors start from it: kept on the segment (a long run has millions of displays).
    """
    known = seg.derived.get("first_nonfinite_point")
    if known is not None and known[0] == len(seg.train):
        return known[1]
    found = None
    bad = _bad_displays(seg)
    if bad.any():
        i = int(np.argmax(bad))
        found = i, seg.train[i]
    seg.derived["first_nonfinite_point"] = (len(seg.train), found)
    return found


def _first_bad_output_rows(seg: Segment) -> dict[int, int]:
    """Output name id -> the first output row (in file order) where that output is nan/inf."""
    lo, names, values, none, _ = _output_columns(seg)
    rows = np.flatnonzero(_bad_values((values, none)))
    if not len(rows):
        return {}
    ids, first = np.unique(names[rows], return_index=True)
    return {int(n): lo + int(rows[k]) for n, k in zip(ids, first, strict=True)}


def first_nonfinite_by_output(seg: Segment) -> dict[str, int | None]:
    """Train output name -> first displayed iteration where it is nan/inf (None: always finite)."""
    first: dict[str, int | None] = dict.fromkeys(seg.output_names())
    store = seg.train.store
    starts = np.frombuffer(store.out_start, dtype=np.int64)
    for name_id, row in _first_bad_output_rows(seg).items():
        display = int(np.searchsorted(starts, row, side="right")) - 1
        first[store.outputs.names[name_id]] = store.iteration[display]
    return first


def detect_loss_nonfinite(trace: Trace, seg: Segment) -> list[Symptom]:
    found = first_nonfinite_point(seg)
    if found is None:
        return []
    i, p = found
    ev = [_loss_line(p)] + [_output_line(o) for o in p.outputs if is_bad(o.value)]
    outs = [o.name for o in p.outputs if is_bad(o.value)]
    what = "the displayed loss" if is_bad(p.loss) else f"train output {', '.join(outs)}"
    loss_bad = np.flatnonzero(_bad_values((seg.train.losses(), seg.train.loss_none())))
    lr_bad = np.flatnonzero(_bad_values((seg.lr.values(), seg.lr.value_none())))
    data = {
        "first_nonfinite_iteration": p.iteration,
        "first_nonfinite_loss_iteration": seg.train[int(loss_bad[0])].iteration if len(loss_bad) else None,
        "first_nonfinite_by_output": first_nonfinite_by_output(seg),
        "first_nonfinite_lr_iteration": seg.lr[int(lr_bad[0])].iteration if len(lr_bad) else None,
        "value": p.loss_text if is_bad(p.loss) else next(o.text for o in p.outputs if is_bad(o.value)),
        "loss_nonfinite": is_bad(p.loss),
        "outputs_nonfinite": outs,
        "lr": p.lr,
        "previous_iteration": seg.train[i - 1].iteration if i > 0 else None,
        "trend": trend_before(seg, i)["trend"],
    }
    return [
        new_symptom(seg, "loss_nonfinite", f"{what} is {data['value']} from iteration {p.iteration}", Cause.UNKNOWN,
              iteration=p.iteration, evidence=ev, data=data)
    ]  # fmt: skip


def classify_trend(history: list[TrainPoint]) -> dict[str, Any]:
    """How the finite displayed loss behaved before the first non-finite display."""
    vals = [abs(p.loss) for p in history if p.loss is not None and math.isfinite(p.loss)]
    return _classify(vals[-WINDOW:], len(vals))


def trend_before(seg: Segment, i: int) -> dict[str, Any]:
    """``classify_trend`` of the run's first ``i`` displays, read from the loss column."""
    loss = seg.train.losses()[:i]
    vals = np.abs(loss[np.isfinite(loss)])  # None is stored as nan: left out like nan
    return _classify(vals[-WINDOW:].tolist(), len(vals))


def _classify(window: list[float], points: int) -> dict[str, Any]:
    """The trend of the last ``WINDOW`` finite |loss| values, of ``points`` finite values in all."""
    if not window:
        return {"trend": "no_history", "growth_factor": None, "points": 0}
    # growth = the latest peak against the lowest value before it (a falling loss has growth 1)
    peak = max(range(max(0, len(window) - 3), len(window)), key=window.__getitem__)
    growth = window[peak] / max(min(window[: peak + 1]), 1e-12)
    steps = list(itertools.pairwise(window))
    rises = sum(1 for a, b in steps if b > a)
    rise_fraction = rises / len(steps) if steps else 0.0
    last_step = window[-1] / max(window[-2], 1e-12) if len(window) >= 2 else None
    prior = window[:-1]
    prior_spread = max(prior) / max(min(prior), 1e-12) if len(prior) >= 2 else None
    if points == 1 and window[0] >= 1e3:
        trend = "large_loss"
    elif growth < 2:
        trend = "flat_or_falling"
    elif last_step is not None and last_step >= 2 and prior_spread is not None and prior_spread < 1.5:
        trend = "flat_then_jump"
    else:
        trend = "rising"
    return {
        "trend": trend,
        "growth_factor": round(growth, 4),
        "rise_fraction": round(rise_fraction, 3),
        "monotonic": bool(steps) and rises == len(steps),
        "last_step_factor": None if last_step is None else round(last_step, 4),
        "points": points,
        "last_finite_loss": window[-1],
    }


def detect_loss_trend(trace: Trace, seg: Segment) -> list[Symptom]:
    found = first_nonfinite_point(seg)
    if found is None:
        return []
    i, p = found
    if i == 0:
        return []  # nan_at_start covers it
    info = trend_before(seg, i)
    trend = info["trend"]
    if trend == "no_history":
        return []  # no finite loss before it (unreadable values): there is no trend to tell
    window = seg.train[max(0, i - 4) : i + 1]
    ev = [_loss_line(q) for q in window]
    data = {"first_nonfinite_iteration": p.iteration, **info}
    if trend in ("rising", "large_loss"):
        msg = (f"the loss grew {info['growth_factor']:g}x before turning non-finite at iteration {p.iteration}"
               if trend == "rising" else
               f"the loss was already {info['last_finite_loss']:g} before turning non-finite at iteration {p.iteration}")  # fmt: skip
        return [
            new_symptom(
                seg, "loss_rising", msg, Cause.GRADIENT_EXPLOSION, iteration=p.iteration, evidence=ev, data=data
            )
        ]
    if trend == "flat_then_jump":
        data["candidates"] = [Cause.BAD_INPUT.value, Cause.LOSS_FUNCTION.value]
        msg = (f"the loss was flat, jumped {info['last_step_factor']:g}x in one display and was non-finite "
               f"at iteration {p.iteration}")  # fmt: skip
        return [new_symptom(seg, "loss_jump", msg, Cause.UNKNOWN, iteration=p.iteration, evidence=ev, data=data)]
    data["candidates"] = [Cause.LOSS_FUNCTION.value, Cause.BAD_INPUT.value]
    msg = (
        f"the loss was flat or falling ({info['growth_factor']:g}x) and suddenly non-finite at iteration {p.iteration}"
    )
    return [new_symptom(seg, "loss_sudden", msg, Cause.UNKNOWN, iteration=p.iteration, evidence=ev, data=data)]


def detect_nan_at_start(trace: Trace, seg: Segment) -> list[Symptom]:
    found = first_nonfinite_point(seg)
    if found is None or found[0] != 0:
        return []
    p = found[1]
    lr = p.lr
    if is_bad(lr):
        return []  # lr_nonfinite explains it
    ev = [_loss_line(p)] + [_output_line(o) for o in p.outputs]
    if p.lr_line is not None:
        ev.append((p.lr_line, f"Iteration {p.iteration}, lr = {fmt_value(lr)}"))
    data = {
        "first_nonfinite_iteration": p.iteration,
        "lr": lr,
        "candidates": [Cause.POOLING.value, Cause.BAD_INPUT.value, Cause.LOSS_FUNCTION.value],
    }
    msg = (f"non-finite at the first displayed iteration ({p.iteration}) with a finite lr: "
           "the forward pass itself produces it (pooling, input data or the loss), not training")  # fmt: skip
    return [new_symptom(seg, "nan_at_start", msg, Cause.UNKNOWN, iteration=p.iteration, evidence=ev, data=data)]


def _plateau_match(v: np.ndarray, plateau: float) -> np.ndarray:
    ratio = v / plateau
    return (np.abs(v - plateau) < 5e-4) | (
        (v > plateau * 0.999) & (np.abs(ratio - np.round(ratio)) < 1e-4) & (v < plateau * 64)
    )


def detect_softmax_plateau(trace: Trace, seg: Segment) -> list[Symptom]:
    lo, _, values, _, owner = _output_columns(seg)
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(values)
        hits = {name: _plateau_match(values, plateau) & finite
                for plateau, name in ((SOFTMAX_PLATEAU, "softmax"), (MULTINOMIAL_PLATEAU, "multinomial"))}  # fmt: skip
    either = hits["softmax"] | hits["multinomial"]
    if not either.any():
        return []
    r = int(np.argmax(either))
    plateau, name = (SOFTMAX_PLATEAU, "softmax") if hits["softmax"][r] else (MULTINOMIAL_PLATEAU, "multinomial")
    o = seg.train.store.outputs.row(lo + r)
    it = seg.train[int(owner[r])].iteration
    v = o.value
    data = {"iteration": it, "output": o.name, "value": v, "plateau": plateau, "kind": name}
    msg = (f"train output {o.name} = {o.text} at iteration {it} is the {name} clamp "
           f"(-log of the smallest probability): the predictions have saturated")  # fmt: skip
    return [new_symptom(seg, "softmax_plateau", msg, Cause.GRADIENT_EXPLOSION, iteration=it,
                  culprit=o.name, evidence=[_output_line(o)], data=data)]  # fmt: skip


def detect_output_first(trace: Trace, seg: Segment) -> list[Symptom]:
    """With several train outputs: which one went non-finite first (or alone)."""
    names = seg.output_names()
    if len(names) < 2:
        return []
    first: dict[str, tuple[int, Any]] = {}
    store = seg.train.store
    starts = np.frombuffer(store.out_start, dtype=np.int64)
    for row in sorted(_first_bad_output_rows(seg).values()):
        o = store.outputs.row(row)
        first[o.name] = (store.iteration[int(np.searchsorted(starts, row, side="right")) - 1], o)
    if not first:
        return []
    earliest = min(it for it, _ in first.values())
    leaders = [n for n in names if n in first and first[n][0] == earliest]
    if len(leaders) == len(names):
        return []  # all together: no output stands out
    name = leaders[0]
    data = {
        "output": name,
        "outputs": leaders,
        "first_nonfinite_iteration": earliest,
        "per_output": {n: first[n][0] if n in first else None for n in names},
    }
    msg = (
        f"train output {', '.join(leaders)} went non-finite first (iteration {earliest}) while the others stayed finite"
    )
    ev = [_output_line(first[n][1]) for n in leaders]
    return [
        new_symptom(seg, "output_first", msg, Cause.UNKNOWN, iteration=earliest, culprit=name, evidence=ev, data=data)
    ]


def detect_smoothed_only(trace: Trace, seg: Segment) -> list[Symptom]:
    """Smoothed loss non-finite while every raw output is finite: one bad iteration poisoned the average."""
    found = first_nonfinite_point(seg)
    if found is None:
        return []
    p = found[1]
    if not is_bad(p.loss) or not p.outputs or any(is_bad(o.value) for o in p.outputs):
        return []
    _, _, values, none, owner = _output_columns(seg)
    recovered = not _bad_values((values, none))[owner >= found[0]].any()
    data = {
        "first_nonfinite_iteration": p.iteration,
        "outputs_recovered": recovered,
        "candidates": [Cause.LOSS_FUNCTION.value, Cause.BAD_INPUT.value],
    }
    msg = (f"the displayed (smoothed) loss is {p.loss_text} from iteration {p.iteration} but every train output is "
           "finite: a single iteration between displays produced the non-finite loss, and Caffe's running "
           "average never forgets it")  # fmt: skip
    ev = [_loss_line(p)] + [_output_line(o) for o in p.outputs]
    return [new_symptom(seg, "smoothed_only", msg, Cause.UNKNOWN, iteration=p.iteration, evidence=ev, data=data)]


def detect_dominant_output(trace: Trace, seg: Segment) -> list[Symptom]:
    """One weighted output contributes orders of magnitude more loss than the rest."""
    for p in seg.train[:3]:
        contribs = [
            (o, o.contribution) for o in p.outputs if o.contribution is not None and math.isfinite(o.contribution)
        ]
        if len(contribs) < 2:
            continue
        contribs.sort(key=lambda t: abs(t[1]), reverse=True)
        top, rest = contribs[0], contribs[1:]
        other = max(abs(c) for _, c in rest)
        if abs(top[1]) >= 100 and abs(top[1]) >= 100 * max(other, 1e-12):
            o = top[0]
            data = {"output": o.name, "contribution": top[1], "weight": o.weight, "value": o.value,
                    "ratio": abs(top[1]) / max(other, 1e-12), "iteration": p.iteration}  # fmt: skip
            msg = (f"train output {o.name} contributes {top[1]:g} (weight {fmt_value(o.weight)}) to the loss, "
                   f"{data['ratio']:.0f}x the other outputs: its gradient dominates and can blow up the weights")  # fmt: skip
            return [new_symptom(seg, "dominant_output", msg, Cause.GRADIENT_EXPLOSION, iteration=p.iteration,
                          culprit=o.name, evidence=[_output_line(x) for x, _ in contribs], data=data)]  # fmt: skip
    return []


# ---------------------------------------------------------------- learning rate
def detect_lr(trace: Trace, seg: Segment) -> list[Symptom]:
    out: list[Symptom] = []
    pts = seg.lr
    if not pts:
        return out
    values, none = pts.values(), pts.value_none()
    bad_at = np.flatnonzero(_bad_values((values, none)))
    if len(bad_at):
        b = int(bad_at[0])
        bad = pts[b]
        ev = [(p.line, f"Iteration {p.iteration}, lr = {p.text}") for p in [*pts[max(0, b - 3) : b], bad]]
        data = {"first_nonfinite_lr_iteration": bad.iteration, "value": bad.text,
                "policy": seg.info.get("lr_policy") or _solver_field(seg, "lr_policy")}  # fmt: skip
        out.append(new_symptom(seg, "lr_nonfinite", f"the learning rate is {bad.text} from iteration {bad.iteration}",
                         Cause.LR_POLICY, iteration=bad.iteration, culprit="lr_policy", evidence=ev, data=data))  # fmt: skip
    with np.errstate(invalid="ignore"):
        neg_at = np.flatnonzero(values < 0)
    if len(neg_at):
        neg = pts[int(neg_at[0])]
        data = {"iteration": neg.iteration, "value": neg.value}
        out.append(new_symptom(seg, "lr_negative", f"the learning rate is negative ({neg.text}) at iteration {neg.iteration}: "
                         "gradient ascent", Cause.LR_POLICY, iteration=neg.iteration, culprit="lr_policy",
                         evidence=[(neg.line, f"Iteration {neg.iteration}, lr = {neg.text}")], data=data))  # fmt: skip
    found = first_nonfinite_point(seg)
    limit = found[1].iteration if found else None
    # the lr that matters is the one before the loss broke
    with np.errstate(invalid="ignore"):
        keep = np.isfinite(values) & (values > 0)
    if limit is not None:
        keep &= pts.iterations() <= limit
    rows = np.flatnonzero(keep)
    if len(rows) >= 2:
        kept = values[rows]
        first = pts[int(rows[0])]
        peak = pts[int(rows[int(np.argmax(kept))])]
        factor = peak.value / first.value
        ups = int(np.count_nonzero(kept[1:] > kept[:-1] * (1 + 1e-6)))
        if factor >= 10 and peak.iteration > first.iteration:
            data = {"first_lr": first.value, "max_lr": peak.value, "growth_factor": factor,
                    "increases": ups, "peak_iteration": peak.iteration,
                    "policy": seg.info.get("lr_policy") or _solver_field(seg, "lr_policy")}  # fmt: skip
            ev = [(first.line, f"Iteration {first.iteration}, lr = {first.text}"),
                  (peak.line, f"Iteration {peak.iteration}, lr = {peak.text}")]  # fmt: skip
            msg = (
                f"the learning rate grows {factor:g}x (from {first.text} to {peak.text} at iteration {peak.iteration})"
            )
            out.append(new_symptom(seg, "lr_increasing", msg, Cause.LR_POLICY, iteration=peak.iteration,
                             culprit="lr_policy", evidence=ev, data=data))  # fmt: skip
    return out


def _solver_field(seg: Segment, name: str):
    root = seg.solver.root if seg.solver is not None else None
    return root.get(name) if root is not None else None


def detect_clip_rising(trace: Trace, seg: Segment) -> list[Symptom]:
    clips = seg.clips
    if not clips:
        return []
    bad = next((c for c in clips if is_bad(c.norm) or (c.factor is not None and c.factor == 0)), None)
    finite = [c for c in clips if c.norm is not None and math.isfinite(c.norm) and c.norm > 0]
    factor = finite[-1].norm / finite[0].norm if len(finite) >= 2 else 1.0
    peak = max((c.norm for c in finite), default=None)
    if bad is None and factor < 10 and (peak is None or finite[0].norm <= 0 or peak / finite[0].norm < 10):
        return []
    ev = [(c.line, f"Gradient clipping: L2 norm {fmt_value(c.norm)} > {fmt_value(c.threshold)}, scale factor {fmt_value(c.factor)}")
          for c in ([finite[0]] if finite else []) + ([bad] if bad else ([finite[-1]] if finite else []))]  # fmt: skip
    data = {"first_norm": finite[0].norm if finite else None, "last_norm": finite[-1].norm if finite else None,
            "growth_factor": factor, "max_norm": peak, "nonfinite_norm_iteration": bad.iteration if bad else None,
            "clips": len(clips)}  # fmt: skip
    msg = (f"clipped gradient norms rise {factor:g}x" if bad is None else
           f"the clipped gradient norm is {fmt_value(bad.norm)} (scale factor {fmt_value(bad.factor)})")  # fmt: skip
    return [new_symptom(seg, "clip_rising", msg, Cause.GRADIENT_EXPLOSION, iteration=(bad or finite[-1]).iteration,
                  evidence=ev, data=data)]  # fmt: skip


# ---------------------------------------------------------------- test, crash
def detect_test_nonfinite(trace: Trace, seg: Segment) -> list[Symptom]:
    for t in seg.tests:
        bad = [o for o in t.outputs if is_bad(o.value)]
        if bad or is_bad(t.loss):
            ev = [(t.line, f"Iteration {t.iteration}, Testing net (#{t.net_index})")]
            ev += [(o.line, f"Test net output #{o.index}: {o.name} = {o.text}") for o in t.outputs]
            found = first_nonfinite_point(seg)
            per_output: dict[str, int | None] = {}
            for u in seg.tests:
                for o in u.outputs:
                    if per_output.get(o.name) is None:
                        per_output[o.name] = u.iteration if is_bad(o.value) else None
            data = {"first_nonfinite_test_iteration": t.iteration, "net_index": t.net_index,
                    "first_nonfinite_by_output": per_output,
                    "outputs": [o.name for o in bad],
                    "before_train": found is None or t.iteration < found[1].iteration,
                    "first_nonfinite_train_iteration": found[1].iteration if found else None}  # fmt: skip
            msg = f"test net #{t.net_index} output {', '.join(o.name for o in bad) or 'loss'} is non-finite at iteration {t.iteration}"
            return [
                new_symptom(seg, "test_nonfinite", msg, Cause.UNKNOWN, iteration=t.iteration, evidence=ev, data=data)
            ]
    return []


_LR_WORDS = ("stepsize", "gamma", "lr_policy", "learning rate policy", "stepvalue", "power", "max_iter")


def detect_check_failed(trace: Trace, seg: Segment) -> list[Symptom]:
    out = []
    for c in seg.crashes:
        if c.kind not in ("check_failed", "fatal"):
            continue
        low = c.message.lower()
        word = next((w for w in _LR_WORDS if w in low), None)
        cause = Cause.LR_POLICY if word else Cause.UNKNOWN
        culprit = None
        if word:
            culprit = "lr_policy" if word in ("learning rate policy", "lr_policy") else word
        data = {"message": c.message, "kind": c.kind, "field": culprit,
                "last_iteration": seg.train[-1].iteration if seg.train else None}  # fmt: skip
        out.append(new_symptom(seg, "check_failed", f"Caffe stopped: {c.message}", cause, iteration=data["last_iteration"],
                         culprit=culprit, evidence=[(c.line, c.message)], data=data))  # fmt: skip
        break
    return out


def detect_crash(trace: Trace, seg: Segment) -> list[Symptom]:
    crashes = [c for c in seg.crashes if c.kind in ("signal", "aborted", "double_free")]
    if not crashes:
        return []
    found = first_nonfinite_point(seg)
    kinds = [c.kind for c in crashes]
    sig = next((c for c in crashes if c.kind == "signal"), None)
    text = sig.message if sig else crashes[0].message
    data = {"kinds": kinds, "message": text, "after_nonfinite": found is not None,
            "double_free": "double_free" in kinds,
            "sigfpe": any("SIGFPE" in c.message or "Floating point" in c.message for c in crashes)}  # fmt: skip
    cause = Cause.UNKNOWN
    culprit = None
    policy = seg.info.get("lr_policy") or _solver_field(seg, "lr_policy")
    if data["sigfpe"] and policy in ("step", "sigmoid") and not found:
        # integer division by an unset stepsize (Caffe <= 1.0 has no CHECK)
        cause, culprit = Cause.LR_POLICY, "stepsize"
    msg = f"the process crashed ({', '.join(dict.fromkeys(kinds))})"
    if data["double_free"] and found:
        msg += ": heap corruption after the NaN (MAX pooling over nan inputs writes outside its buffer)"
    return [new_symptom(seg, "crash", msg, cause, culprit=culprit, evidence=[(c.line, c.message) for c in crashes[:3]],
                  data=data)]  # fmt: skip


# ---------------------------------------------------------------- debug_info
def detect_debug_origin(trace: Trace, seg: Segment) -> list[Symptom]:
    """debug_info: the first layer whose value is non-finite, and in which pass it shows first
    (``log.debug_analysis.origin_symptoms``; flagged ``after_growth`` when an explosion preceded it)."""
    return origin_symptoms(trace, seg)


def detect_debug_growth(trace: Trace, seg: Segment) -> list[Symptom]:
    """debug_info: the first series that grows by orders of magnitude, the explosion's culprit layer,
    its gradient path and loss head (``log.debug_analysis.growth_symptoms``)."""
    return growth_symptoms(trace, seg)


DETECTORS = (
    detect_loss_nonfinite,
    detect_nan_at_start,
    detect_loss_trend,
    detect_softmax_plateau,
    detect_output_first,
    detect_smoothed_only,
    detect_dominant_output,
    detect_lr,
    detect_clip_rising,
    detect_test_nonfinite,
    detect_check_failed,
    detect_crash,
    detect_debug_origin,
    detect_debug_growth,
)


def symptoms(trace: Trace) -> list[Symptom]:
    """Every symptom of every run in the trace, in detector order."""
    out: list[Symptom] = []
    for seg in trace.segments:
        for detect in DETECTORS:
            out.extend(detected(detect, trace, seg))
    return out


def detected(detect: Callable[[Trace, Segment], list[Symptom]], trace: Trace, seg: Segment) -> list[Symptom]:
    """``detect(trace, seg)``, computed once per run and kept on it (callers read, never change, the result).

    Several rules share a detector (NAN500-NAN502 report the kinds of one) and the engine
    asks again: on a log of thousands of runs, or one long debug_info run, that repeated
    work cost more than parsing the log.
    """
    key = f"symptoms:{detect.__module__}.{detect.__qualname__}"
    found = seg.derived.get(key)
    if found is None:
        found = seg.derived[key] = detect(trace, seg)
    return found


def first_nonfinite_iteration(trace: Trace) -> int | None:
    """The first displayed training iteration with a non-finite loss or output, over all runs."""
    for seg in trace.segments:
        found = first_nonfinite_point(seg)
        if found is not None:
            return found[1].iteration
    return None
