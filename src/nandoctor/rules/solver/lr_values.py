"""NAN201-NAN203: the schedule produces a NaN/inf, a negative or a zero learning rate."""

from __future__ import annotations

import math

import numpy as np

from nandoctor.core.registry import Rule, register
from nandoctor.core.types import Bearing, Cause, Severity
from nandoctor.rules.solver._shared import (
    analysis,
    change_text,
    field_evidence,
    location,
    pretty,
    rate_evidence,
    set_fix,
)


def _first(mask: np.ndarray) -> int | None:
    idx = np.flatnonzero(mask)
    return int(idx[0]) if idx.size else None


def _max_iter_fix(a, why: str):
    """max_iter covering the run: the solver.step horizon, else a placeholder."""
    s = a.solver
    if a.horizon.runner == "step" and a.horizon.stop > 0:
        value, safe = a.horizon.stop, True
        note = f"the {value} iterations solver.step() runs"
    else:
        value, safe = 10000, False
        note = "a placeholder: set it to the number of iterations your run performs"
    return set_fix(s, {"max_iter": str(value)}, f"{change_text(s, 'max_iter', str(value))} ({note}); {why}", safe=safe)


def _positive(x, default: str) -> str:
    """|x| as text when that is a usable positive number, else ``default``."""
    v = abs(float(x))
    return pretty(v) if math.isfinite(v) and v > 0 else default


def _culprit_nonfinite(a):
    """Which parameter makes the rate NaN/inf, and the fix."""
    s, p = a.solver, a.params
    gm = float(p.gamma)
    if not math.isfinite(float(p.base_lr)):
        return "base_lr", set_fix(s, {"base_lr": "0.01"}, change_text(s, "base_lr", "0.01"), safe=False)
    if p.policy == "poly":
        if p.max_iter <= 0 or a.horizon.stop > p.max_iter:
            return "max_iter", _max_iter_fix(a, "poly divides by max_iter and needs iter < max_iter")
        new = _positive(p.power, "1")
        return "power", set_fix(s, {"power": new}, change_text(s, "power", new))
    if p.policy in ("inv", "sigmoid") and not math.isfinite(gm):
        return "gamma", set_fix(s, {"gamma": "0.0001"}, change_text(s, "gamma", "0.0001"))
    if p.policy == "inv":
        new = _positive(p.power, "0.75")
        return "power", set_fix(s, {"power": new}, change_text(s, "power", new))
    new = pretty(1 / gm) if 1 < gm < math.inf else "0.1"
    return "gamma", set_fix(s, {"gamma": new}, f"{change_text(s, 'gamma', new)} (gamma < 1 makes the rate decay)")


@register
class LrNotFinite(Rule):
    """
    ## What it detects
    A learning rate that is NaN or infinite at some iteration of the run, computed
    exactly as Caffe computes it in float. Typical causes: `poly` without `max_iter`
    (0/0 at iteration 0 prints `lr = -nan`), `poly` stepped past `max_iter` from Python
    (negative base of a fractional power), `exp`/`step`/`multistep` with gamma > 1
    overflowing float, base_lr beyond float range (1e39 reads as inf).

    ## Why it leads to NaN
    Every weight update is lr x gradient: an inf or NaN rate turns every weight into
    NaN at that iteration, and the loss is NaN from the next one on.

    ## How to fix
    Set the parameter the message names: max_iter to the number of iterations the run
    performs, gamma below 1, a positive power, a finite base_lr.

    ## Example
    `lr_policy: "poly"`, `power: 0.9`, no max_iter: `Iteration 0, lr = -nan`, then
    `lr = inf`. Add `max_iter: 20000`.
    """

    code = "NAN201"
    title = "Learning rate becomes NaN or inf"
    cause = Cause.LR_POLICY
    bears = Bearing.PREDICTION
    severity = Severity.ERROR
    needs = ("solver",)

    def check(self, facts):
        a = analysis(facts)
        if a is None or a.rates is None:
            return
        k = _first(~np.isfinite(a.rates))
        if k is None:
            return
        culprit, fix = _culprit_nonfinite(a)
        from nandoctor.config.lr import format_lr

        value = format_lr(a.rates[k])
        yield self.finding(
            f"lr = {value} from iteration {k} on ({a.runner_text}): caused by {culprit}",
            location(a.solver, culprit, "lr_policy"),
            evidence=[*field_evidence(a.solver, "lr_policy", culprit), rate_evidence(a, k)],
            fix=fix,
            culprit=culprit,
            data={"iteration": k, "lr": value},
        )


@register
class LrNegative(Rule):
    """
    ## What it detects
    A negative learning rate at some iteration: a negative base_lr (Caffe never checks
    it), or `poly` with an integer power stepped past `max_iter` from Python.

    ## Why it leads to NaN
    A negative rate climbs the loss instead of descending it (gradient ascent): the loss
    grows without bound until it overflows to inf and NaN.

    ## How to fix
    Make base_lr positive; for `poly` set max_iter to at least the iterations run.

    ## Example
    `base_lr: -0.01` prints `Iteration 0, lr = -0.01`; use `base_lr: 0.01`.
    """

    code = "NAN202"
    title = "Learning rate is negative"
    cause = Cause.LR_POLICY
    bears = Bearing.PREDICTION
    severity = Severity.ERROR
    needs = ("solver",)

    def check(self, facts):
        a = analysis(facts)
        if a is None or a.rates is None:
            return
        k = _first(a.rates < 0)
        if k is None:
            return
        s, p = a.solver, a.params
        if float(p.base_lr) < 0:
            culprit = "base_lr"
            new = pretty(-float(p.base_lr))
            fix = set_fix(s, {"base_lr": new}, change_text(s, "base_lr", new))
        else:
            culprit = "max_iter"
            fix = _max_iter_fix(a, "poly's base 1 - iter/max_iter must stay positive")
        from nandoctor.config.lr import format_lr

        yield self.finding(
            f"lr = {format_lr(a.rates[k])} at iteration {k} ({a.runner_text}): caused by {culprit}",
            location(s, culprit, "lr_policy"),
            evidence=[*field_evidence(s, culprit), rate_evidence(a, k)],
            fix=fix,
            culprit=culprit,
            data={"iteration": k},
        )


@register
class LrZero(Rule):
    """
    ## What it detects
    A learning rate that is exactly 0 for the whole run (base_lr unset or 0), or that
    drops to exactly 0 and stays there because gamma is unset (0): `exp` after iteration
    0, `step` after the first stepsize, `multistep` after the first stepvalue.

    ## Why it leads to NaN
    It does not: the weights simply stop moving, silently. It hides the real learning
    rate you meant and often comes with other missing fields.

    ## How to fix
    Set base_lr, and gamma (e.g. 0.1 for step/multistep, just below 1 for exp).

    ## Example
    `lr_policy: "exp"` without gamma prints `lr = 0.01` at iteration 0 and `lr = 0` after.
    """

    code = "NAN203"
    title = "Learning rate is (or drops to) exactly zero"
    cause = Cause.LR_POLICY
    bears = Bearing.PREDICTION
    severity = Severity.WARNING
    needs = ("solver",)

    def check(self, facts):
        a = analysis(facts)
        if a is None or a.rates is None or a.rates.size == 0 or not np.isfinite(a.rates).all():
            return
        s, p = a.solver, a.params
        zero = a.rates == 0
        if zero.all() and float(p.base_lr) == 0:
            yield self.finding(
                f"lr is 0 at every iteration ({a.runner_text}): base_lr is {'0' if s.is_set('base_lr') else 'not set'}",
                location(s, "base_lr", "lr_policy"),
                evidence=field_evidence(s, "base_lr"),
                fix=set_fix(
                    s, {"base_lr": "0.01"}, f"{change_text(s, 'base_lr', '0.01')} (a common starting point)", safe=False
                ),
                culprit="base_lr",
            )
            return
        if float(p.gamma) != 0 or p.policy not in ("step", "exp", "multistep"):
            return
        k = _first(zero)
        if k is None or not zero[k:].all():
            return
        if p.policy == "exp":
            stop = max(a.horizon.stop, 2)
            new = format(0.01 ** (1 / stop), ".8g") if a.horizon.stop > 0 else "0.9999"
            why = "the rate decays to 1% of base_lr by the end of the run"
        else:
            new, why = "0.1", "the rate drops tenfold at each step"
        yield self.finding(
            f"lr drops to exactly 0 at iteration {k} and stays 0 ({a.runner_text}): gamma is "
            f"{'0' if s.is_set('gamma') else 'not set (0)'}",
            location(s, "gamma", "lr_policy"),
            evidence=[*field_evidence(s, "lr_policy", "gamma"), rate_evidence(a, k)],
            fix=set_fix(s, {"gamma": new}, f"{change_text(s, 'gamma', new)} ({why})"),
            culprit="gamma",
            data={"iteration": k},
        )
