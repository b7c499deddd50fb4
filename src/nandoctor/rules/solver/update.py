"""NAN216-NAN221: weight decay, iter_size, gradient clipping, max_iter and average_loss, as solver.cpp and sgd_solver.cpp read them."""

from __future__ import annotations

import math

from nandoctor.core.registry import Rule, register
from nandoctor.core.types import Bearing, Cause, Severity
from nandoctor.rules.solver._shared import analysis, change_text, field_evidence, g, location, pretty, set_fix


def _num(solver, name: str):
    v = solver.value(name)
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


@register
class NegativeWeightDecay(Rule):
    """
    ## What it detects
    A negative `weight_decay`.

    ## Why it leads to NaN
    Weight decay adds decay x w to every gradient; a negative decay pushes every weight
    away from zero at a rate proportional to its size, so weights grow exponentially
    until activations and losses overflow to inf and NaN.

    ## How to fix
    Use a small positive value (e.g. 0.0005) or 0.

    ## Example
    `weight_decay: -0.0005` -> `weight_decay: 0.0005`.
    """

    code = "NAN216"
    title = "Negative weight_decay"
    cause = Cause.GRADIENT_EXPLOSION
    bears = Bearing.PREDICTION
    severity = Severity.ERROR
    needs = ("solver",)

    def check(self, facts):
        s = facts.solver
        v = _num(s, "weight_decay")
        if v is None or not v < 0:
            return
        new = pretty(-v) if math.isfinite(v) else "0.0005"
        yield self.finding(
            f"weight_decay {g(float(v))} makes every weight grow exponentially",
            location(s, "weight_decay"),
            evidence=field_evidence(s, "weight_decay"),
            fix=set_fix(s, {"weight_decay": new}, change_text(s, "weight_decay", new)),
            culprit="weight_decay",
        )


@register
class UnknownRegularizationType(Rule):
    """
    ## What it detects
    `regularization_type` other than "L1" or "L2" while weight_decay is non-zero.

    ## Why it leads to NaN
    Caffe aborts at the first update: `Unknown regularization type: l2`.

    ## How to fix
    `regularization_type: "L2"` (or "L1"); the names are case sensitive.

    ## Example
    `regularization_type: "l2"` -> `regularization_type: "L2"`.
    """

    code = "NAN217"
    title = "Unknown regularization_type (Caffe aborts)"
    cause = Cause.GRADIENT_EXPLOSION
    bears = Bearing.PREDICTION
    severity = Severity.ERROR
    needs = ("solver",)

    def check(self, facts):
        s = facts.solver
        kind = s.value("regularization_type")
        decay = _num(s, "weight_decay")
        if not isinstance(kind, str) or kind in ("L1", "L2") or not decay:
            return
        new = '"L1"' if kind.upper() == "L1" else '"L2"'
        yield self.finding(
            f"Caffe will abort at the first update with: Unknown regularization type: {kind}",
            location(s, "regularization_type"),
            evidence=field_evidence(s, "regularization_type", "weight_decay"),
            fix=set_fix(s, {"regularization_type": new}, change_text(s, "regularization_type", new)),
            culprit="regularization_type",
        )


@register
class IterSizeProblem(Rule):
    """
    ## What it detects
    `iter_size` below 1 (error), or above 1 (info: the effective batch and what it changes).

    ## Why it leads to NaN
    With iter_size 0 Caffe runs no forward/backward pass, divides the loss by 0 (the log
    shows `loss = -nan`) and scales the gradients by 1/0 = inf: 0 x inf = NaN in every
    weight. iter_size > 1 is fine; it multiplies the effective batch (batch x iter_size),
    not the learning rate.

    ## How to fix
    `iter_size: 1` or more.

    ## Example
    `iter_size: 0` -> `iter_size: 1`.
    """

    code = "NAN218"
    title = "iter_size below 1 (or its effect when above 1)"
    cause = Cause.GRADIENT_EXPLOSION
    bears = Bearing.PREDICTION
    severity = Severity.ERROR
    needs = ("solver",)

    def check(self, facts):
        s = facts.solver
        v = _num(s, "iter_size")
        if v is None or v == 1:
            return
        if v < 1:
            yield self.finding(
                f"iter_size {v}: no forward/backward pass runs, the loss is divided by {v} and the gradients "
                f"scaled by 1/{v}: NaN weights at the first update",
                location(s, "iter_size"),
                evidence=field_evidence(s, "iter_size"),
                fix=set_fix(s, {"iter_size": "1"}, change_text(s, "iter_size", "1")),
                culprit="iter_size",
            )
            return
        yield self.finding(
            f"iter_size {v}: gradients of {v} batches are summed and divided by {v} per update "
            f"(effective batch = batch_size x {v}); the learning rate is not scaled",
            location(s, "iter_size"),
            severity=Severity.INFO,
            evidence=field_evidence(s, "iter_size"),
            fix=set_fix(
                s,
                {"iter_size": "1"},
                f"{change_text(s, 'iter_size', '1')} only if accumulation is not intended",
                safe=False,
            ),
            culprit="iter_size",
        )


@register
class ClipGradientsZero(Rule):
    """
    ## What it detects
    `clip_gradients: 0`.

    ## Why it leads to NaN
    Caffe clips when the global gradient norm exceeds the threshold, scaling every gradient
    by threshold / norm = 0: no weight ever changes, and an infinite gradient becomes
    0 x inf = NaN. Negative values (the default -1) turn clipping off.

    ## How to fix
    A positive threshold (e.g. 10) to clip, or -1 (or no line) for no clipping.

    ## Example
    `clip_gradients: 0` -> `clip_gradients: -1`.
    """

    code = "NAN219"
    title = "clip_gradients 0 zeroes every gradient"
    cause = Cause.GRADIENT_EXPLOSION
    bears = Bearing.PREDICTION
    severity = Severity.WARNING
    needs = ("solver",)

    def check(self, facts):
        s = facts.solver
        v = _num(s, "clip_gradients")
        if v is None or v != 0:
            return
        yield self.finding(
            "clip_gradients 0 scales every gradient by 0: the weights never change (inf gradients become NaN)",
            location(s, "clip_gradients"),
            evidence=field_evidence(s, "clip_gradients"),
            fix=set_fix(
                s, {"clip_gradients": "-1"}, f"{change_text(s, 'clip_gradients', '-1')} (off), or a positive threshold"
            ),
            culprit="clip_gradients",
        )


@register
class AverageLossBelowOne(Rule):
    """
    ## What it detects
    `average_loss` below 1.

    ## Why it leads to NaN
    It is not a NaN but a stop: Caffe checks it when it builds the solver and aborts with
    `solver.cpp:48] Check failed: param_.average_loss() >= 1 (0 vs. 1) average_loss should
    be non-negative.` before the first iteration.

    ## How to fix
    `average_loss: 1` (no smoothing, the default) or the number of iterations to average.

    ## Example
    `average_loss: 0` -> `average_loss: 1`.
    """

    code = "NAN221"
    title = "average_loss below 1 (Caffe aborts)"
    cause = Cause.LOSS_FUNCTION
    bears = Bearing.PREDICTION
    severity = Severity.ERROR
    needs = ("solver",)

    def check(self, facts):
        s = facts.solver
        v = _num(s, "average_loss")
        if v is None or v >= 1:
            return
        fatal = (
            f"solver.cpp:48] Check failed: param_.average_loss() >= 1 ({v} vs. 1) average_loss should be non-negative."
        )
        yield self.finding(
            f"Caffe will abort when it creates the solver with: {fatal}",
            location(s, "average_loss"),
            evidence=field_evidence(s, "average_loss"),
            fix=set_fix(s, {"average_loss": "1"}, change_text(s, "average_loss", "1")),
            culprit="average_loss",
            data={"fatal": fatal},
        )


@register
class MaxIterUnset(Rule):
    """
    ## What it detects
    `max_iter` unset or <= 0 when no `--iters` horizon is given.

    ## Why it leads to NaN
    `caffe train` then runs no iteration at all. Runs driven from Python with
    `solver.step(n)` ignore max_iter, but `poly` still divides by it (NAN201).

    ## How to fix
    Set max_iter to the number of iterations the run performs.

    ## Example
    py-faster-rcnn solvers leave max_iter to the Python driver: fine with `solver.step()`.
    """

    code = "NAN220"
    title = "max_iter unset: caffe train runs nothing"
    cause = Cause.LR_POLICY
    bears = Bearing.PREDICTION
    severity = Severity.INFO
    needs = ("solver",)

    def check(self, facts):
        a = analysis(facts)
        if a is None or a.horizon.runner != "train" or a.params.max_iter > 0 or a.params.policy == "poly":
            return
        s = a.solver
        yield self.finding(
            f"max_iter is {a.params.max_iter if s.is_set('max_iter') else 'not set'}: `caffe train` runs no "
            "iteration (fine when the run is driven by solver.step() from Python; pass --iters N to check it)",
            location(s, "max_iter"),
            evidence=field_evidence(s, "max_iter"),
            fix=set_fix(s, {"max_iter": "10000"}, f"{change_text(s, 'max_iter', '10000')} (placeholder)", safe=False),
            culprit="max_iter",
        )
