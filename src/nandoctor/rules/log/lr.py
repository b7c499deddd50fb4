"""Log rules about the learning rate and gradient clipping (NAN310-NAN320)."""

from __future__ import annotations

import math

from nandoctor.core.registry import register
from nandoctor.core.types import Bearing, Cause, Severity
from nandoctor.core.votes import HINT, STRONG, Signal
from nandoctor.log import symptoms as S
from nandoctor.rules.log.common import SymptomRule


@register
class LrNonFinite(SymptomRule):
    """
    ## What it detects
    An ``Iteration N, lr = X`` line whose X is nan or inf.

    ## Why it leads to NaN
    Every weight update multiplies the gradient by the lr, so a nan lr makes every
    weight nan at once. Typical sources: ``poly`` beyond ``max_iter`` (pycaffe
    ``solver.step`` past the end: negative base to a fractional power), ``inv`` with a
    negative gamma, ``exp`` with gamma > 1 overflowing.

    ## How to fix
    Fix the lr policy parameters (``nandoctor lr solver.prototxt`` shows the schedule)
    or stop stepping beyond ``max_iter``.

    ## Example
    ``Iteration 100, lr = 0`` then ``Iteration 101, lr = -nan``.
    """

    code = "NAN310"
    title = "Learning rate becomes non-finite"
    cause = Cause.LR_POLICY
    bears = Bearing.SYMPTOM
    severity = Severity.ERROR
    detector = S.detect_lr
    kinds = ("lr_nonfinite",)

    def votes(self, finding, ctx):
        return [Signal(Cause.LR_POLICY, STRONG, finding.message, finding, finding.culprit, 2)]


@register
class LrNegative(SymptomRule):
    """
    ## What it detects
    A negative learning rate on an ``lr =`` line.

    ## Why it leads to NaN
    A negative rate turns descent into ascent: the loss is maximised and grows
    without bound. It comes from a negative ``base_lr`` or gamma (accepted by Caffe
    before 2018) or from ``poly`` past ``max_iter`` with an integer power.

    ## How to fix
    Make ``base_lr`` and ``gamma`` positive; keep iterations within ``max_iter``.

    ## Example
    ``Iteration 10, lr = -0.01``.
    """

    code = "NAN311"
    title = "Learning rate is negative"
    cause = Cause.LR_POLICY
    bears = Bearing.SYMPTOM
    severity = Severity.ERROR
    detector = S.detect_lr
    kinds = ("lr_negative",)

    def votes(self, finding, ctx):
        return [Signal(Cause.LR_POLICY, STRONG, finding.message, finding, finding.culprit, 2)]


@register
class LrIncreasing(SymptomRule):
    """
    ## What it detects
    The logged learning rate grows >= 10x during the run (before the loss turned
    non-finite, when it did).

    ## Why it leads to NaN
    A schedule is meant to decay; one that grows (``exp``/``step``/``multistep`` with
    gamma > 1, ``inv`` or ``poly`` with a negative power) eventually takes steps no
    net survives. Warm-up schedules also grow, but only up to ``base_lr``.

    ## How to fix
    Use gamma < 1 (e.g. 0.1) and positive powers; check the schedule with
    ``nandoctor lr``.

    ## Example
    ``lr = 0.01`` at 0, ``lr = 1`` at 160, ``lr = 100`` at 320.
    """

    code = "NAN312"
    title = "Learning rate increases during training"
    cause = Cause.LR_POLICY
    bears = Bearing.SYMPTOM
    detector = S.detect_lr
    kinds = ("lr_increasing",)

    def votes(self, finding, ctx):
        growth = finding.data.get("growth_factor") or 1
        weight = 2.0 + min(3.0, math.log10(max(growth, 1)))
        return [Signal(Cause.LR_POLICY, weight, finding.message, finding, finding.culprit, 2)]


@register
class ClipRising(SymptomRule):
    """
    ## What it detects
    ``Gradient clipping: scaling down gradients (L2 norm A > B)`` lines whose norm A
    rises >= 10x, or is inf/nan, or a scale factor of 0.

    ## Why it leads to NaN
    Clipping caps the step but not the growth of the gradient itself: a norm that
    keeps rising means the net is diverging underneath; an inf norm gives a scale
    factor 0 and inf * 0 = nan, and a nan norm silently disables clipping.

    ## How to fix
    Lower ``base_lr``; look for the layer whose gradients grow (``debug_info``).

    ## Example
    ``L2 norm 52.3 > 35`` ... ``L2 norm 8.1e+05 > 35`` ... ``L2 norm inf > 35) by scale factor 0``.
    """

    code = "NAN320"
    title = "Clipped gradient norms rise"
    cause = Cause.GRADIENT_EXPLOSION
    bears = Bearing.SYMPTOM
    detector = S.detect_clip_rising
    kinds = ("clip_rising",)

    def votes(self, finding, ctx):
        return [Signal(Cause.GRADIENT_EXPLOSION, HINT, finding.message, finding)]
