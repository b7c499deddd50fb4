"""NAN601/NAN602: the learning rate the scheduler produced."""

from __future__ import annotations

import math

from nandoctor.core.registry import Rule, register
from nandoctor.core.types import Bearing, Cause, Evidence, Fix, Severity
from nandoctor.rules.torch.common import LR_GROWTH, exploding


@register
class TorchNonFiniteLr(Rule):
    """
    ## What it detects
    A PyTorch param group whose current ``lr`` is NaN, infinite or negative, read by the
    guard from ``optimizer.param_groups`` before ``optimizer.step()``.

    ## Why it leads to NaN
    The update is ``w -= lr * g``: a NaN or infinite lr makes every weight of the group
    NaN/inf in one step, and a negative lr climbs the loss until it overflows. Such
    values come from schedulers (a ``LambdaLR`` lambda that divides by zero or goes
    below zero, a cosine/polynomial formula evaluated past its last step).

    ## How to fix
    Fix the schedule so it stays positive and finite for every step the run takes
    (clamp it, or stop before ``total_steps``); check the scheduler's inputs.

    ## Example
    ``LambdaLR(opt, lambda s: 1 - s / 100)`` goes negative at step 101; a warm-up written
    as ``s / warmup`` with ``warmup = 0`` gives NaN at step 0.
    """

    code = "NAN601"
    title = "Learning rate is NaN, infinite or negative"
    cause = Cause.LR_POLICY
    bears = Bearing.GUARD
    severity = Severity.ERROR
    needs = ("torch",)

    def check(self, facts):
        f = facts.torch
        bad = [(i, lr) for i, lr in enumerate(f.lr_values) if not math.isfinite(lr) or lr < 0]
        if not bad:
            return
        group, lr = bad[0]
        source = f" from {f.scheduler}" if f.scheduler else ""
        history = [row[group] for row in f.lr_history[-6:] if group < len(row)]
        yield self.finding(
            f"param group {group} has lr = {lr}{source} at step {f.step}",
            evidence=[
                Evidence(f"lr of group {group} over the last steps: {history}"),
                *[Evidence(f"param group {i}: lr = {v}") for i, v in bad[1:4]],
            ],
            fix=Fix(
                f"make the schedule{source} finite and positive for every step (clamp it, e.g. "
                "max(lr, 0.0), and stop it at its last step); the guard skipped the step",
                safe=False,
            ),
            culprit=f"optimizer.param_groups[{group}]['lr']",
            data={"confidence": 0.97, "group": group},
        )


@register
class TorchGrowingLr(Rule):
    """
    ## What it detects
    The lr of a param group grew by an order of magnitude or more over the steps kept in
    the guard's ring buffer, and the step then went non-finite.

    ## Why it leads to NaN
    A schedule that keeps raising the lr (a warm-up that never ends, an exponential
    factor above 1, a cyclic schedule with a huge upper bound) makes each update larger
    until the weights overflow; the gradient explosion that follows is a symptom.

    ## How to fix
    Cap the schedule (end the warm-up, use a factor < 1, lower ``max_lr``).

    ## Example
    ``ExponentialLR(opt, gamma=1.5)`` multiplies the lr by 57 in ten steps.
    """

    code = "NAN602"
    title = "Learning rate kept growing before the NaN"
    cause = Cause.LR_POLICY
    bears = Bearing.GUARD
    severity = Severity.WARNING
    needs = ("torch",)

    def check(self, facts):
        f = facts.torch
        growth = f.lr_growth()
        if growth is None or growth < LR_GROWTH or not f.lr_is_sane():
            return
        first = [row for row in f.lr_history if row][:1]
        source = f" ({f.scheduler})" if f.scheduler else ""
        yield self.finding(
            f"lr grew {growth:.3g}x over the last {len(f.lr_history)} steps{source} before step {f.step}",
            evidence=[Evidence(f"lr then: {first[0] if first else '?'}; lr now: {f.lrs}")],
            fix=Fix(f"cap the schedule{source}: stop the warm-up or growth at a tested maximum lr", safe=False),
            culprit="optimizer.param_groups[*]['lr']",
            data={"confidence": 0.85 if exploding(f) else 0.6, "lr_growth": growth},
        )
