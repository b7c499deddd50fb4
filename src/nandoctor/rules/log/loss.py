"""Log rules about the training loss: when it turned non-finite and how it got there (NAN300-NAN308)."""

from __future__ import annotations

import math

from nandoctor.core.registry import register
from nandoctor.core.types import Bearing, Cause, Severity
from nandoctor.core.votes import HINT, PREDICTED, Signal
from nandoctor.log import symptoms as S
from nandoctor.rules.log.common import SymptomRule


@register
class LossNonFinite(SymptomRule):
    """
    ## What it detects
    The first displayed iteration whose loss (the smoothed ``loss =`` value) or any
    ``Train net output`` is nan or inf, in any spelling (``nan``, ``-nan``, ``inf``,
    ``1.#QNAN``, ``nan(ind)``). ``data`` carries ``first_nonfinite_iteration``, the
    outputs that are non-finite, the lr at that display and the loss trend before it.

    ## Why it leads to NaN
    It is the NaN: Caffe never stops on a non-finite loss, it keeps printing nan
    while the weights stay broken. Only displayed iterations are visible, so the
    real first bad iteration lies between the previous display and this one.

    ## How to fix
    Read the other findings: they tell explosion (NAN302), lr schedule (NAN310-312),
    bad input or loss layer (NAN303/304/307) and the first bad layer with
    ``debug_info: true`` (NAN500-503) apart.

    ## Example
    ``Iteration 24 (..), loss = -nan`` after ``Iteration 23 (..), loss = 1.287``.
    """

    code = "NAN300"
    title = "Loss or train output becomes non-finite"
    severity = Severity.ERROR
    detector = S.detect_loss_nonfinite
    kinds = ("loss_nonfinite",)

    def votes(self, finding, ctx):
        return ()  # the NaN itself; what made it is told by the other findings


@register
class NanAtStart(SymptomRule):
    """
    ## What it detects
    The loss is already non-finite at the first displayed iteration (usually 0)
    while the learning rate is finite.

    ## Why it leads to NaN
    No update has happened yet (or only a few), so training dynamics cannot be the
    cause: the forward pass itself produces the NaN. The usual suspects are a pooling
    window that lies entirely in the padding (division by zero in AVE pooling, empty
    MAX windows), nan/inf in the input data, or a loss layer computing log(0)/sqrt(<0).

    ## How to fix
    Run ``nandoctor lint`` on the net (pooling geometry), ``nandoctor scan-data`` on
    the data source, and rerun one iteration with ``debug_info: true`` to see the
    first layer whose top is nan.

    ## Example
    ``Iteration 0 (..), loss = -nan`` with ``Iteration 0, lr = 0.01``.
    """

    code = "NAN301"
    title = "Non-finite loss at the first display with a finite lr"
    severity = Severity.ERROR
    detector = S.detect_nan_at_start
    kinds = ("nan_at_start",)


@register
class LossRising(SymptomRule):
    """
    ## What it detects
    The finite displayed loss grew (``growth_factor`` >= 2 against the lowest value
    before the latest peak, over several displays) before it turned non-finite, or it
    was already enormous (>= 1000) at the last finite display.

    ## Why it leads to NaN
    A loss that climbs display after display is the signature of divergence: each
    update overshoots, activations and gradients grow geometrically until a float
    overflows to inf and inf - inf or 0 * inf gives nan.

    ## How to fix
    Lower ``base_lr`` (typically 10x), add ``clip_gradients``, check loss weights
    and lr schedules that increase the rate.

    ## Example
    ``loss = 9.9``, ``38.2``, ``73.7``, ``84.6`` then ``loss = -nan``.
    """

    code = "NAN302"
    title = "Loss grows before it becomes non-finite"
    cause = Cause.GRADIENT_EXPLOSION
    bears = Bearing.SYMPTOM
    detector = S.detect_loss_trend
    kinds = ("loss_rising",)

    def votes(self, finding, ctx):
        # by orders of magnitude: a loss 1000x its start is an explosion under way; it is the
        # symptom of a step too large, discounted when the chain shows what made it so
        growth = finding.data.get("growth_factor")
        if finding.data.get("trend") == "large_loss":
            weight = PREDICTED
        elif isinstance(growth, (int, float)) and math.isfinite(growth) and growth > 1:
            weight = 2.0 + min(3.0, math.log10(growth))
        else:
            weight = 2.0
        return [Signal(Cause.GRADIENT_EXPLOSION, weight, finding.message, finding, "base_lr", 3, symptom=True)]


@register
class LossJump(SymptomRule):
    """
    ## What it detects
    The loss was flat for several displays, jumped (>= 2x) in one display and then
    became non-finite.

    ## Why it leads to NaN
    A single jump out of a flat curve points at one bad batch (huge or nan input
    values, wrong labels) or a loss layer hitting its singular point, not at a slow
    divergence. ``data["candidates"]`` lists the causes the log alone cannot separate.

    ## How to fix
    Scan the data source (``nandoctor scan-data``) around the batch of the jump and
    check the loss layer; ``debug_info: true`` with ``display: 1`` shows the layer.

    ## Example
    ``loss = 2.30``, ``2.35``, ``2.30``, ``7.07`` then ``loss = -nan``.
    """

    code = "NAN303"
    title = "Loss jumps out of a flat curve, then becomes non-finite"
    detector = S.detect_loss_trend
    kinds = ("loss_jump",)


@register
class LossSudden(SymptomRule):
    """
    ## What it detects
    The loss was flat or falling right up to the display where it became non-finite.

    ## Why it leads to NaN
    Without growth there is no explosion: something produced a nan in a single
    iteration: a nan in the input data, or a loss layer evaluated outside its domain
    (log of 0, sqrt of a negative, division by a zero count).

    ## How to fix
    Check the data source for nan/inf and the loss layers for unguarded log/sqrt/pow;
    rerun with ``debug_info: true`` to find the first layer with a nan top.

    ## Example
    ``loss = 1.42``, ``1.29`` then ``loss = -nan``.
    """

    code = "NAN304"
    title = "Loss flat or falling, then suddenly non-finite"
    detector = S.detect_loss_trend
    kinds = ("loss_sudden",)


@register
class SoftmaxPlateau(SymptomRule):
    """
    ## What it detects
    A train output equal to 87.3365 (= -log(FLT_MIN), SoftmaxWithLoss's clamp) or
    46.0517 (= -log(1e-20), MultinomialLogistic/Infogain clamp), or a multiple of it.

    ## Why it leads to NaN
    The loss layer clamps the probability of the true class at its floor: the
    predictions are saturated (logits of enormous magnitude), the classic sign of a
    diverged net whose next step produces inf/nan.

    ## How to fix
    Treat it as divergence: lower ``base_lr``, add ``clip_gradients``, check the input
    scaling (e.g. a missing ``scale: 0.00390625``).

    ## Example
    ``Train net output #0: loss = 87.3365 (* 1 = 87.3365 loss)``.
    """

    code = "NAN305"
    title = "Loss stuck at the softmax saturation plateau"
    cause = Cause.GRADIENT_EXPLOSION
    bears = Bearing.SYMPTOM
    detector = S.detect_softmax_plateau
    kinds = ("softmax_plateau",)

    def votes(self, finding, ctx):
        if not ctx.timeline.went_nonfinite:
            return ()  # a plateau alone is a warning on a healthy run, not a cause
        return [Signal(Cause.GRADIENT_EXPLOSION, HINT, finding.message, finding)]


@register
class OutputFirst(SymptomRule):
    """
    ## What it detects
    With several train outputs, the one(s) that became non-finite before (or
    without) the others; ``culprit`` is the output name.

    ## Why it leads to NaN
    The loss layer producing that output (or the branch feeding it) is where the
    nan starts; the others follow through shared weights.

    ## How to fix
    Inspect that loss layer and its inputs first (domain of log/sqrt, loss weight,
    normalisation by a count that can be zero).

    ## Example
    ``Train net output #1: loss_offset = -nan`` while ``loss_cls = 1.22``.
    """

    code = "NAN306"
    title = "One train output diverges first"
    detector = S.detect_output_first
    kinds = ("output_first",)

    def votes(self, finding, ctx):
        if not (ctx.several_heads and finding.data.get("output") in ctx.heads):
            return ()
        # the head that went first: the exploding one when the loss grew (not a vote by itself)
        return [Signal(Cause.GRADIENT_EXPLOSION, 0.0, finding.message, finding, ctx.loss_weight_culprit(finding), 7)]


@register
class SmoothedOnly(SymptomRule):
    """
    ## What it detects
    The displayed loss is non-finite but every ``Train net output`` on the same line
    is finite.

    ## Why it leads to NaN
    The displayed loss is Caffe's running average (``average_loss``), updated
    incrementally: one nan loss on an iteration between displays poisons it for the
    rest of the run, even if the weights survived. A single bad batch or a loss layer
    that is nan for rare inputs does this; an explosion would show in the outputs.

    ## How to fix
    Find the batch: rerun with ``display: 1`` (and ``debug_info: true``); check the
    data and the loss layer's domain.

    ## Example
    ``Iteration 50, loss = -nan`` with ``Train net output #0: loss_cls = 1.22``.
    """

    code = "NAN307"
    title = "Smoothed loss non-finite while the raw outputs are finite"
    detector = S.detect_smoothed_only
    kinds = ("smoothed_only",)


@register
class DominantOutput(SymptomRule):
    """
    ## What it detects
    At the first displays, one weighted train output contributes >= 100 and >= 100x
    more loss (``* w = c loss``) than every other output.

    ## Why it leads to NaN
    Its gradient, scaled by the loss weight, dominates every update: with a large
    ``loss_weight`` (or an unnormalised loss) the step is orders of magnitude too big
    and the weights explode within a few iterations.

    ## How to fix
    Lower that layer's ``loss_weight`` or normalise the loss, or lower ``base_lr``.

    ## Example
    ``loss_bbox = 195.18 (* 200 = 39035.7 loss)`` next to ``loss_cls = 2.31``.
    """

    code = "NAN308"
    title = "One weighted output dominates the loss"
    cause = Cause.GRADIENT_EXPLOSION
    bears = Bearing.SYMPTOM
    detector = S.detect_dominant_output
    kinds = ("dominant_output",)

    def votes(self, finding, ctx):
        return [Signal(Cause.GRADIENT_EXPLOSION, 2.0, finding.message, finding, ctx.loss_weight_culprit(finding), 8)]
