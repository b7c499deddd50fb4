"""NAN703-NAN710: growth, sudden NaN, recovery, eval NaN first, the NaN filter, loss-scale collapse, a negative loss."""

from __future__ import annotations

import itertools

from nandoctor.core.registry import Rule, register
from nandoctor.core.types import Bearing, Cause, Evidence, Fix, Severity
from nandoctor.rules.run.common import (
    GRAD_GROWTH,
    HINT,
    LOSS_GROWTH,
    STRONG,
    fmt,
    growth_weight,
    lr_driven,
    point_evidence,
)

LOWER_LR = Fix(
    "lower the learning rate (10x as a first try) or clip gradients (max_grad_norm=1.0 in the Trainer, "
    "gradient_clip_val=1.0 in Lightning)",
    safe=False,
)


def _lr_name(run) -> str:
    return "learning_rate" if run.kind in ("transformers", "console") else ("lr" if "lr" in run.args else "the lr")


def _growth_finding(rule, tl, measured, floor: float, what: str, value: str, kind: str, weight_floor: float):
    """One finding for a loss or gradient norm that grew ``floor``-fold before the failure; when the
    lr grew (or turned negative) first, the growth is the schedule's symptom and weighs little."""
    if measured is None or measured[0] < floor:
        return None
    growth, peak = measured
    driven = lr_driven(tl)
    return rule.finding(
        f"{what} grew {growth:.3g}x, to {fmt(getattr(peak, value))} at step {peak.step}"
        + (f" ({driven})" if driven else ""),
        peak.where,
        evidence=[point_evidence(p, "first") for p in tl.finite_points()[:1]] + [point_evidence(peak, "peak")],
        fix=LOWER_LR,
        culprit=_lr_name(tl.run),
        data={
            "weight": HINT if driven else growth_weight(growth, weight_floor),
            "kind": kind,
            "growth_factor": growth,
        },
    )


@register
class RunLossGrowing(Rule):
    """
    ## What it detects
    The finite logged training loss grew tenfold or more over its first values before
    the run went non-finite (or by the end of a run that did not).

    ## Why it leads to NaN
    An lr too high for the model makes each update overshoot; the loss and the weights
    grow geometrically until they overflow to inf and then NaN.

    ## How to fix
    Lower the learning rate or clip the gradients.

    ## Example
    Plain SGD at lr 0.9 on an unnormalised regression head: the loss goes 0.9, 1.6,
    514, 88144, ... and is NaN at step 13.
    """

    code = "NAN703"
    title = "Training loss grew before the failure"
    cause = Cause.GRADIENT_EXPLOSION
    bears = Bearing.SYMPTOM
    severity = Severity.WARNING
    needs = ("run",)

    def check(self, facts):
        tl = facts.run
        found = _growth_finding(self, tl, tl.loss_growth(), LOSS_GROWTH, "the loss", "loss", "loss_rising", 1.0)
        if found is not None:
            yield found


@register
class RunGradNormGrowing(Rule):
    """
    ## What it detects
    The logged total gradient norm (HF ``grad_norm``, Lightning ``grad_2.0_norm_total``)
    grew a hundredfold or more over its first values before the failure.

    ## Why it leads to NaN
    Growing gradients are the explosion itself: each update is larger than the last
    until the weights overflow. ``grad_norm`` is logged before clipping, so it shows the
    growth even when clipping is on.

    ## How to fix
    Lower the learning rate or clip the gradients.

    ## Example
    ``grad_norm`` 0.56, 3.1, 234, 27875, 2.2e11, nan.
    """

    code = "NAN704"
    title = "Gradient norm grew before the failure"
    cause = Cause.GRADIENT_EXPLOSION
    bears = Bearing.SYMPTOM
    severity = Severity.WARNING
    needs = ("run",)

    def check(self, facts):
        tl = facts.run
        found = _growth_finding(
            self, tl, tl.grad_growth(), GRAD_GROWTH, "the gradient norm", "grad_norm", "grad_rising", 10.0
        )
        if found is not None:
            yield found


@register
class RunSuddenNaN(Rule):
    """
    ## What it detects
    The run went non-finite and stayed so, with a finite, positive lr and without any
    growth of the loss or the gradient norm before: a NaN from nowhere.

    ## Why it leads to NaN
    With healthy values on both sides of the update, the NaN was computed from finite
    numbers: a loss with log/sqrt/division of something that reached zero or below (a
    hand-written ``-log(softmax)``, a raw variance, a mean over zero items). A record
    that is itself NaN looks the same in a loss log, so bad input is the alternative.

    ## How to fix
    Compute the loss in a safe form: ``cross_entropy``/``log_softmax`` instead of
    ``log(softmax)``, clamp before ``log``/``sqrt``, guard divisions by counts.

    ## Example
    A Gaussian NLL whose variance head is used raw: ``log(var)`` is NaN at the first
    step where a prediction makes it negative.
    """

    code = "NAN705"
    title = "NaN from nowhere: no growth before it"
    cause = Cause.LOSS_FUNCTION
    bears = Bearing.SYMPTOM
    severity = Severity.WARNING
    needs = ("run",)

    def check(self, facts):
        tl = facts.run
        if tl.onset is None or tl.recovered is not None or tl.first_bad_lr is not None:
            return
        if tl.first_negative_lr is not None and tl.first_negative_lr.step <= tl.onset.step:
            return
        lg, gg = tl.loss_growth(), tl.grad_growth()
        if (lg and lg[0] >= 3) or (gg and gg[0] >= LOSS_GROWTH):
            return
        last = tl.before[-1] if tl.before else None
        yield self.finding(
            f"{tl.onset_reason} at step {tl.onset.step}, with no growth of the loss or the gradient norm before it",
            tl.onset.where,
            evidence=[
                e
                for e in (
                    point_evidence(last, "last finite") if last else None,
                    point_evidence(tl.onset, "first non-finite"),
                )
                if e
            ],
            fix=Fix(
                "compute the loss in a numerically safe form (cross_entropy/log_softmax instead of log(softmax), "
                "clamp before log/sqrt, guard divisions by counts); check the batch of that step for NaN records",
                safe=False,
            ),
            culprit="the loss computation",
            data={"weight": 2.5, "kind": "loss_sudden", "also": {"bad_input": 2.0}},
        )


@register
class RunRecoveredSpike(Rule):
    """
    ## What it detects
    The training loss was non-finite (or a thousand times its baseline) at one logged
    step and back near its baseline afterwards.

    ## Why it leads to NaN
    Weights made NaN by an update stay NaN; a run that recovers kept finite weights, so
    the bad value came from that step's batch: a record with an inf or huge target or
    feature (a robust loss such as Huber keeps its gradient finite).

    ## How to fix
    Find and drop the record: scan the data set for non-finite and extreme values in the
    batches of that step.

    ## Example
    A Huber regression with one target of ``inf``: ``train_loss`` is inf at step 100
    and 0.4 at step 101.
    """

    code = "NAN706"
    title = "A non-finite or extreme loss at one step, then recovery"
    cause = Cause.BAD_INPUT
    bears = Bearing.SYMPTOM
    severity = Severity.WARNING
    needs = ("run",)

    def check(self, facts):
        tl = facts.run
        spike, after = None, None
        if tl.onset is not None and tl.recovered is not None and tl.first_bad_lr is None:
            spike, after = tl.onset, tl.recovered
        else:
            pts = tl.finite_points()
            found = tl.spikes(pts)
            if found:
                spike = found[0]
                after = pts[pts.index(spike) + 1]
        if spike is None:
            return
        yield self.finding(
            f"the loss is {fmt(spike.loss)} at step {spike.step} and back to {fmt(after.loss)} at step {after.step}: "
            "the weights stayed finite, so that step's batch held the bad value",
            spike.where,
            evidence=[point_evidence(spike, "spike"), point_evidence(after, "after")],
            fix=Fix(
                f"scan the training data for non-finite or extreme values in the batch of step {spike.step}", safe=True
            ),
            culprit=f"a record in the batch of step {spike.step}",
            data={"weight": 4.0, "kind": "transient", "step": spike.step},
        )


@register
class RunEvalNonFiniteFirst(Rule):
    """
    ## What it detects
    An evaluation metric (``eval_loss``, ``val_loss``, ``eval_rmse``) is non-finite while
    the training loss stays finite after that evaluation.

    ## Why it leads to NaN
    Training went on with finite losses, so the weights were finite when the evaluation
    ran: the non-finite value came from the evaluation data (a NaN or inf record or
    label), not from the model.

    ## How to fix
    Scan the evaluation set for non-finite features and labels and drop or repair them.

    ## Example
    One validation target is NaN: ``val_loss`` is NaN at every validation pass while
    ``train_loss`` keeps falling.
    """

    code = "NAN707"
    title = "Evaluation went non-finite while training stayed finite"
    cause = Cause.BAD_INPUT
    bears = Bearing.SYMPTOM
    severity = Severity.WARNING
    needs = ("run",)

    def check(self, facts):
        tl = facts.run
        ev = tl.first_bad_eval
        if ev is None or (tl.onset is not None and tl.onset.step <= ev.step):
            return
        later = [p for p in tl.finite_points(tl.points) if p.step >= ev.step]
        if not later:
            return
        names = ", ".join(f"{k} = {ev.metrics[k]}" for k in ev.nonfinite())
        yield self.finding(
            f"{names} at step {ev.step} while the training loss stays finite after it "
            f"({fmt(later[0].loss)} at step {later[0].step})",
            ev.where,
            evidence=[
                Evidence(f"step {ev.step}: {names}", ev.where, "log"),
                point_evidence(later[0], "training after"),
            ],
            fix=Fix("scan the evaluation set for non-finite features and labels and drop or repair those records"),
            culprit="the evaluation data",
            data={"weight": 4.0, "kind": "eval_first", "step": ev.step},
        )


@register
class RunNaNFilterHid(Rule):
    """
    ## What it detects
    The HF Trainer's ``logging_nan_inf_filter`` (on by default) hid non-finite losses:
    ``grad_norm`` is NaN/inf beside a finite logged loss, or the logged loss turned to
    exactly 0.0 after finite values.

    ## Why it leads to NaN
    The filter replaces a NaN step loss by the window's running mean, so the log looks
    clean while the weights are already NaN; once every step of a window is NaN the mean
    of nothing is logged as 0.0. The first such step is the real onset.

    ## How to fix
    Set ``logging_nan_inf_filter=False`` to see the real losses; the cause is named by
    the other findings.

    ## Example
    ``{'loss': 514.1, 'grad_norm': 234.1}`` then ``{'loss': 0.0, 'grad_norm': nan}``.
    """

    code = "NAN708"
    title = "The Trainer's NaN filter hid non-finite losses"
    cause = Cause.UNKNOWN
    bears = Bearing.SYMPTOM
    severity = Severity.WARNING
    needs = ("run",)

    def check(self, facts):
        tl = facts.run
        if not tl.masked:
            return
        first = tl.masked[0]
        yield self.finding(
            f"logging_nan_inf_filter hid the NaN losses from step {first.step} "
            f"(logged loss {fmt(first.loss)}, grad_norm {fmt(first.grad_norm)}); {len(tl.masked)} logged steps are masked",
            first.where,
            evidence=[point_evidence(p, "masked") for p in tl.masked[:2]],
            fix=Fix("set logging_nan_inf_filter=False in TrainingArguments to log the real losses"),
            culprit="logging_nan_inf_filter",
            data={"weight": 0.0, "kind": "nan_filter", "step": first.step},
        )


def _scale_collapse(scales) -> tuple | None:
    """(peak, low, drops) when the loss scale kept falling: a GradScaler halves it at every
    overflowing step and doubles it only after ``growth_interval`` clean ones, so a healthy run
    drops a few times while it calibrates and then holds or grows. Collapse is a fall of 2^10
    to 1 or below, or five drops or more (over twice the rises) to 2^5 under the peak."""
    if len(scales) < 3:
        return None
    peak = max(scales, key=lambda p: p.loss_scale)
    after = [p for p in scales if p.step > peak.step]
    if not after:
        return None
    low = min(after, key=lambda p: p.loss_scale)
    fall = peak.loss_scale / max(low.loss_scale, 1e-300)
    drops = sum(b.loss_scale < a.loss_scale for a, b in itertools.pairwise(scales))
    rises = sum(b.loss_scale > a.loss_scale for a, b in itertools.pairwise(scales))
    if (fall >= 2**10 and low.loss_scale <= 1.0) or (drops >= 5 and drops > 2 * rises and fall >= 2**5):
        return peak, low, drops
    return None


@register
class RunLossScaleCollapse(Rule):
    """
    ## What it detects
    The logged fp16 loss scale (a GradScaler's scale) kept falling: by 2^10 or more to 1
    or below, or in five or more halvings (over twice its rises) to 32x under its
    peak. Almost every few steps overflowed and were skipped.

    ## Why it leads to NaN
    The scaler halves the scale at every step whose gradients overflow float16; a scale
    that keeps collapsing means the gradients overflow even unscaled, so nothing is
    learned and the next larger step is inf. The values are too large for float16. When
    the lr grew before, the overflow is the schedule's symptom.

    ## How to fix
    Run the overflowing part in float32 (``autocast(enabled=False)``), normalise the
    inputs, lower the lr or clip the gradients; bf16 has float32's range.

    ## Example
    Unnormalised features of 1e4 under float16 autocast: the scale goes 65536, 32768,
    ..., 256 in 60 steps while the loss stays flat.
    """

    code = "NAN709"
    title = "fp16 loss scale collapsed"
    cause = Cause.GRADIENT_EXPLOSION
    bears = Bearing.SYMPTOM
    severity = Severity.WARNING
    needs = ("run",)

    def check(self, facts):
        tl = facts.run
        found = _scale_collapse(tl.scales())
        if found is None:
            return
        peak, low, drops = found
        driven = lr_driven(tl)
        yield self.finding(
            f"the loss scale fell from {fmt(peak.loss_scale)} at step {peak.step} to {fmt(low.loss_scale)} at step "
            f"{low.step} ({drops} overflow halvings)" + (f"; {driven}" if driven else ""),
            low.where,
            evidence=[point_evidence(peak, "peak scale"), point_evidence(low, "lowest scale")],
            fix=Fix(
                "run the overflowing op in float32 (autocast(enabled=False)), normalise the inputs, lower the lr or "
                "clip gradients; bf16 has the range float16 lacks",
                safe=False,
            ),
            culprit="float16 autocast",
            data={"weight": HINT if driven else STRONG, "kind": "scale_collapse"},
        )


@register
class RunLossWentNegative(Rule):
    """
    ## What it detects
    A run that went non-finite whose finite training loss had gone below zero before
    (or between) its non-finite values.

    ## Why it leads to NaN
    The standard losses (MSE, cross-entropy, Huber, BCE) are never negative. A loss
    that is, is a hand-written formula with a log of a learned quantity (a Gaussian
    negative log-likelihood with a raw variance, a log of a prediction): it is unbounded
    below, and the same log turns NaN or -inf once its argument reaches zero or below.
    The NaN comes from the formula, not from a record or the lr.

    ## How to fix
    Keep the log's argument positive by construction (``softplus(raw) + eps`` for a
    variance, ``clamp_min(eps)`` before ``log``), or use the library's loss
    (``GaussianNLLLoss``, ``cross_entropy``).

    ## Example
    ``log(var + 1) + (y - mean)**2 / (var + 1)`` with ``var`` from a linear head: the
    loss falls to -0.49, then is NaN at step 84 and negative again at step 87.
    """

    code = "NAN710"
    title = "The loss went below zero before it went non-finite"
    cause = Cause.LOSS_FUNCTION
    bears = Bearing.SYMPTOM
    severity = Severity.WARNING
    needs = ("run",)

    def check(self, facts):
        tl = facts.run
        if tl.onset is None:
            return
        negative = next((p for p in tl.finite_points(tl.points) if p.loss < 0), None)
        if negative is None:
            return
        yield self.finding(
            f"the training loss is {fmt(negative.loss)} at step {negative.step}: a loss below zero is a "
            f"hand-written log of a learned quantity, which also made the non-finite value at step {tl.onset.step}",
            negative.where,
            evidence=[point_evidence(negative, "negative loss"), point_evidence(tl.onset, "first non-finite")],
            fix=Fix(
                "keep the log's argument positive by construction (softplus(raw) + eps, clamp_min(eps) before log) "
                "or use the library's loss (GaussianNLLLoss, cross_entropy)",
                safe=False,
            ),
            culprit="the loss computation",
            data={"weight": STRONG, "kind": "loss_negative", "step": negative.step},
        )
