"""debug_info rules: the first layer whose values turn non-finite or explode (NAN500-NAN503)."""

from __future__ import annotations

from nandoctor.core.registry import register
from nandoctor.core.types import Bearing, Cause, Severity
from nandoctor.log import symptoms as S
from nandoctor.rules.log.common import SymptomRule


@register
class DebugForwardOrigin(SymptomRule):
    """
    ## What it detects
    In a log written with ``debug_info: true``: the first layer, in forward order of
    the first iteration that has any non-finite value, whose top blob mean |x| is
    nan or inf (``[Forward] Layer L, top blob B data: nan``). The cause follows the
    layer type: a data layer means bad input, a pooling layer pooling geometry, a
    loss or math layer (Log, Power, Exp...) the loss function. When values had already
    grown by orders of magnitude before (NAN503), the nan only ends that explosion:
    ``data["after_growth"]`` is set and the cause is gradient explosion.

    ## Why it leads to NaN
    Every layer after it only propagates the nan; this layer creates it from finite
    bottoms and finite weights.

    ## How to fix
    Fix that layer: scan the data for a data layer, check the pooling geometry, guard
    the domain of log/sqrt/pow for math and loss layers.

    ## Example
    ``[Forward] Layer pool1, top blob pool1 data: nan`` after ``conv1 ... data: 0.1``.
    """

    code = "NAN500"
    bears = Bearing.ORIGIN
    title = "debug_info: first layer with a non-finite forward output"
    severity = Severity.ERROR
    detector = S.detect_debug_origin
    kinds = ("debug_forward_origin",)


@register
class DebugBackwardOrigin(SymptomRule):
    """
    ## What it detects
    The forward pass of the first bad iteration is finite, but a ``[Backward] Layer L,
    bottom blob B diff`` (or a param diff) is nan/inf: the gradient is born in L.

    ## Why it leads to NaN
    The next update adds that gradient to the weights, so the following forward pass
    is nan everywhere. Backward-only nans come from derivatives that are infinite
    where the function is finite (sqrt at 0, log near 0, division by a tiny norm) or
    from gradients overflowing.

    ## How to fix
    Guard the derivative of that layer (add an epsilon, clip its input) or reduce
    the lr / add ``clip_gradients`` when the diffs were growing (NAN503).

    ## Example
    ``[Backward] Layer sqrt_err, bottom blob err diff: inf`` with a finite forward.
    """

    code = "NAN501"
    bears = Bearing.ORIGIN
    title = "debug_info: first non-finite gradient (backward)"
    severity = Severity.ERROR
    detector = S.detect_debug_origin
    kinds = ("debug_backward_origin",)


@register
class DebugParamUpdate(SymptomRule):
    """
    ## What it detects
    The first non-finite value of the run is a layer's parameter data (``[Forward]
    Layer L, param blob k data: nan``) while the previous iteration's forward and
    backward passes were finite: the weight update itself produced it.

    ## Why it leads to NaN
    Finite gradients times a finite lr cannot give nan weights unless the step
    overflows (enormous lr or momentum >= 1) or the lr itself is non-finite.

    ## How to fix
    Check the lr schedule and ``momentum`` (< 1), lower ``base_lr``.

    ## Example
    ``[Forward] Layer ip1, param blob 0 data: nan`` right after a finite iteration.
    """

    code = "NAN502"
    title = "debug_info: weights become non-finite in the update"
    cause = Cause.UNKNOWN
    bears = Bearing.ORIGIN
    severity = Severity.ERROR
    detector = S.detect_debug_origin
    kinds = ("debug_param_update",)


@register
class DebugGrowth(SymptomRule):
    """
    ## What it detects
    The first debug_info series (a layer's top data, parameter data or diff) that
    grows by >= 1000x over its own recent history before the first non-finite value.
    ``culprit`` is where the explosion starts: the loss head whose weighted
    contribution grew first (``data["loss_head"]``), else the layer whose weights
    jumped first (phase "update"), else the first layer whose gradient jumped;
    ``data["path"]`` is the gradient's way from there towards the input.

    ## Why it leads to NaN
    Growth by orders of magnitude per update is explosion in progress: a few more
    steps overflow float to inf, and inf - inf gives nan.

    ## How to fix
    Lower ``base_lr`` or that layer's ``lr_mult``/loss weight, add
    ``clip_gradients``, check its initialisation.

    ## Example
    ``[Forward] Layer fc6, top blob fc6 data: 0.249`` at 0, ``249.45`` at 1.
    """

    code = "NAN503"
    title = "debug_info: a layer's values grow by orders of magnitude"
    cause = Cause.GRADIENT_EXPLOSION
    bears = Bearing.ORIGIN
    detector = S.detect_debug_growth
    kinds = ("debug_growth",)
