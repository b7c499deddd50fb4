"""NAN701/NAN702: the learning rate the run logged."""

from __future__ import annotations

import itertools
import math

from nandoctor.core.registry import Rule, register
from nandoctor.core.types import Bearing, Cause, Fix, Severity
from nandoctor.rules.run.common import LR_GROWTH, STRONG, fmt, point_evidence
from nandoctor.runs.timeline import ok


def scheduler_name(run) -> str:
    for key in ("lr_scheduler_type", "sched", "scheduler", "lr_scheduler"):
        value = run.args.get(key)
        if isinstance(value, str) and value and value != "none":
            return f"{key}={value}"
    return "the lr scheduler"


@register
class RunLrNonFinite(Rule):
    """
    ## What it detects
    A logged learning rate (HF ``learning_rate``, Lightning ``lr-*`` from
    ``LearningRateMonitor``, a TensorBoard lr tag) that is NaN, infinite or negative at
    or before the first non-finite loss.

    ## Why it leads to NaN
    The update is ``w -= lr * g``: a NaN lr makes every weight NaN in one step; a
    negative lr climbs the loss until it overflows. Such values come from the schedule
    (a ``LambdaLR`` formula that divides by zero, takes the square root of a negative
    number, or runs past its last step).

    ## How to fix
    Make the schedule finite and positive for every step the run takes: clamp it, end
    it at ``max_steps``, fix the warm-up formula.

    ## Example
    ``LambdaLR(opt, lambda s: 1 - s / 30)`` in a 90-step run: the lr is negative from
    step 31 and the loss grows until it is NaN.
    """

    code = "NAN701"
    title = "Logged learning rate is NaN, infinite or negative"
    cause = Cause.LR_POLICY
    bears = Bearing.SYMPTOM
    severity = Severity.ERROR
    needs = ("run",)

    def check(self, facts):
        tl = facts.run
        onset = tl.onset_step
        for p, what in ((tl.first_bad_lr, "non-finite"), (tl.first_negative_lr, "negative")):
            if p is None or (onset is not None and p.step > onset):
                continue
            name = scheduler_name(tl.run)
            yield self.finding(
                f"the learning rate is {what} ({fmt(p.lr)}) at step {p.step}, from {name}",
                p.where,
                evidence=[point_evidence(p, "lr")],
                fix=Fix(f"make {name} finite and positive for every step (clamp it, end it at max_steps)", safe=False),
                culprit=name,
                data={"weight": STRONG, "kind": f"lr_{what}", "step": p.step},
            )
            return


def _accelerating(values: list[float]) -> bool:
    """The lr rises faster and faster (a geometric factor), unlike a linear warm-up whose
    increments stay equal."""
    rises = [b - a for a, b in itertools.pairwise(values) if b > a]
    if len(rises) < 3:
        return len(rises) >= 1 and values[-1] / max(values[0], 1e-300) >= 100
    tail = rises[-4:]
    return tail[-1] > 1.3 * tail[0]


@register
class RunLrGrowing(Rule):
    """
    ## What it detects
    The logged lr grew tenfold or more before the run failed, faster and faster (a
    geometric schedule, not a linear warm-up), or beyond the lr the run was configured
    with (``learning_rate`` in the Trainer's arguments, ``lr`` in ``hparams.yaml``).

    ## Why it leads to NaN
    Each update grows with the lr; a schedule that keeps raising it (an exponential
    factor above 1, a polynomial with a negative power, a cyclic schedule with a huge
    upper bound) makes the weights overflow. The loss and gradient growth that follow
    are its symptoms.

    ## How to fix
    Cap the schedule at a tested maximum lr: a factor below 1, a positive power, a lower
    ``max_lr``, an end to the warm-up.

    ## Example
    ``LambdaLR(opt, lambda s: 1.15 ** s)``: the lr is 100x its start after 33 steps and
    the loss is NaN soon after.
    """

    code = "NAN702"
    title = "Logged learning rate kept growing before the failure"
    cause = Cause.LR_POLICY
    bears = Bearing.SYMPTOM
    severity = Severity.WARNING
    needs = ("run",)

    def check(self, facts):
        tl = facts.run
        pts = [p for p in tl.lrs() if ok(p.lr) and p.lr > 0]
        if tl.onset is not None:
            pts = [p for p in pts if p.step <= tl.onset.step]
        if len(pts) < 2:
            return
        low = min(pts, key=lambda p: p.lr)
        high = max((p for p in pts if p.step >= low.step), key=lambda p: p.lr)
        growth = high.lr / low.lr
        configured = tl.run.configured_lr()
        beyond = configured is not None and high.lr >= 2 * configured
        rising = [p.lr for p in pts if low.step <= p.step <= high.step]
        if not beyond and (growth < LR_GROWTH or not _accelerating(rising)):
            return
        name = scheduler_name(tl.run)
        if beyond:
            message = f"the lr reached {fmt(high.lr)} at step {high.step}, {high.lr / configured:.3g}x the configured {configured:g} ({name})"
            weight = STRONG
        else:
            message = f"the lr grew {growth:.3g}x, faster and faster, from step {low.step} to step {high.step} ({name})"
            weight = 2.0 + min(3.0, math.log10(growth))
        yield self.finding(
            message,
            high.where,
            evidence=[point_evidence(low, "lr then"), point_evidence(high, "lr now")],
            fix=Fix(f"cap {name} at a tested maximum lr (a growth factor below 1, an end to the warm-up)", safe=False),
            culprit=name,
            data={"weight": weight, "kind": "lr_increasing", "growth_factor": growth},
        )
