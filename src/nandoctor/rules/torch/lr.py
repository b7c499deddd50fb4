"""NAN601/NAN602: the learning rate the scheduler produced."""

from __future__ import annotations

import math

from nandoctor.core.registry import Rule, register
from nandoctor.core.types import Bearing, Cause, Evidence, Fix, Severity
from nandoctor.rules.torch.common import LR_GROWTH, exploding
from nandoctor.torch.facts import value
from nandoctor.torch.facts import where as source_where


def schedule_source(f, group: int) -> str:
    """``LambdaLR lr_lambdas[1] = <lambda> (train.py:40)`` or just the scheduler's type."""
    info = f.scheduler_info or {}
    lambdas = info.get("lambdas") or []
    if group < len(lambdas) and lambdas[group]:
        return f"{info.get('type')} lr_lambdas[{group}] = {source_where(lambdas[group])}"
    return info.get("type") or f.scheduler or ""


def scheduler_step(f) -> str:
    """The scheduler's own step count, when it differs from the guard's step (several steps per
    optimizer step, or a scheduler created mid-run)."""
    info = f.scheduler_info or {}
    last = info.get("last_epoch")
    return f" (scheduler step {last})" if isinstance(last, int) and last != f.step else ""


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
        schedule = schedule_source(f, group)
        source = f" from {schedule}" if schedule else ""
        history = [row[group] for row in f.lr_history[-6:] if group < len(row)]
        last_good = next((row[group] for row in reversed(f.lr_history[:-1]) if group < len(row)), None)
        what = "NaN" if math.isnan(lr) else "infinite" if math.isinf(lr) else "negative"
        evidence = [Evidence(f"lr of group {group} over the last steps: {history}")]
        evidence += [Evidence(f"param group {i}: lr = {v}") for i, v in bad[1:4]]
        if last_good is not None:
            evidence.append(Evidence(f"the last checked step before had lr = {last_good}"))
        culprit = (
            f"{schedule} at step {f.step}{scheduler_step(f)}" if schedule else f"optimizer.param_groups[{group}]['lr']"
        )
        yield self.finding(
            f"param group {group} has lr = {lr}{source} at step {f.step}{scheduler_step(f)}",
            evidence=evidence,
            fix=Fix(
                f"change the schedule{source} so that it is finite and >= 0 at step {f.step}: it returns a {what} "
                f"lr there (clamp it, e.g. max(factor, 0.0), or stop the schedule at its last step)"
                + (f"; the lr before was {last_good}" if last_good is not None else "")
                + "; the guard skipped the step",
                safe=False,
            ),
            culprit=culprit,
            data={"confidence": 0.97, "group": group, "lr_param": f"optimizer.param_groups[{group}]['lr']"},
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
        group, start = growth_start(f)
        schedule = schedule_source(f, group)
        source = f" ({schedule})" if schedule else ""
        since = f.lr_steps[start] if start < len(f.lr_steps) else None
        first = f.lr_history[start][group] if start < len(f.lr_history) else None
        settings = (f.scheduler_info or {}).get("settings", {})
        if isinstance(settings.get("gamma"), int | float) and settings["gamma"] > 1:
            change = f"change gamma of {schedule} from {settings['gamma']:g} to at most 1 (e.g. 0.95)"
        elif isinstance(settings.get("max_lr"), int | float):
            change = f"lower max_lr of {schedule} from {settings['max_lr']:g} to {first:g}"
        else:
            change = f"cap the schedule{source} at lr = {first:g} (its value at step {since})"
        yield self.finding(
            f"lr grew {growth:.3g}x from step {since} to step {f.step}{source}",
            evidence=[Evidence(f"lr of group {group} at step {since}: {first}; lr now: {f.lrs}")],
            fix=Fix(change, safe=False),
            culprit=f"{schedule} from step {since}" if schedule else f"optimizer.param_groups[{group}]['lr']",
            data={"confidence": 0.85 if exploding(f) else 0.6, "lr_growth": growth, "since_step": since},
        )


def growth_start(f) -> tuple[int, int]:
    """The group whose lr grew most and the history row from which it rose step after step."""
    best = (0, 0, 0.0)
    for group in range(len(f.lr_values)):
        column = [value(row[group]) if group < len(row) else math.nan for row in f.lr_history]
        start = len(column) - 1
        while start > 0 and column[start - 1] < column[start]:
            start -= 1
        ratio = column[-1] / column[start] if column[start] > 0 else 0.0
        if ratio > best[2]:
            best = (group, start, ratio)
    return best[0], best[1]
