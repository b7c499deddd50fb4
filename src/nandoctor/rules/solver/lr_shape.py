"""NAN204/NAN205: a schedule that grows, or one that decays to ~0 long before the end."""

from __future__ import annotations

import math

import numpy as np

from nandoctor.config import lr
from nandoctor.core.registry import Rule, register
from nandoctor.core.types import Bearing, Cause, Evidence, Severity
from nandoctor.rules.solver._shared import (
    analysis,
    change_text,
    field_evidence,
    location,
    pretty,
    rate_evidence,
    set_fix,
)

GROWTH_ALARM = 10.0  # "exceeds base_lr x 10"
VANISH_RATIO = 1e-4  # "~0": four orders of magnitude below base_lr
VANISH_BEFORE = 0.5  # ... reached within the first half of the run


def _growth(p: lr.LrParams):
    """(culprit, factor text, new value text) when the policy's parameters make it grow."""
    gm, pw = float(p.gamma), float(p.power)
    if p.policy == "step" and gm > 1:
        return "gamma", f"x{pretty(gm)} every {p.stepsize} iterations", pretty(1 / gm)
    if p.policy == "multistep" and gm > 1 and p.stepvalues:
        return "gamma", f"x{pretty(gm)} at each stepvalue", pretty(1 / gm)
    if p.policy == "exp" and gm > 1:
        return "gamma", f"x{pretty(gm)} every iteration", pretty(1 / gm)
    if p.policy == "inv" and pw < 0 and gm > 0:
        return "power", f"(1 + {pretty(gm)}*iter)^{pretty(-pw)}", pretty(-pw)
    if p.policy == "poly" and p.max_iter < 0 and pw > 0:
        return "max_iter", f"(1 + iter/{-p.max_iter})^{pretty(pw)}", str(-p.max_iter)
    if p.policy == "poly" and pw < 0 and p.max_iter > 0:
        return "power", f"(1 - iter/{p.max_iter})^{pretty(pw)}", pretty(-pw)
    return None


def _when_exceeds(p: lr.LrParams, limit: int) -> int | None:
    """First iteration (searched up to ``limit``) where the rate reaches base_lr x 10."""
    base = float(p.base_lr)
    if base <= 0 or not math.isfinite(base):
        return None
    gm = float(p.gamma)
    if p.policy in ("exp", "step") and gm > 1:
        n = max(1, math.ceil(math.log(GROWTH_ALARM) / math.log(gm) - 1e-9))
        return n if p.policy == "exp" else n * p.stepsize
    if p.policy == "multistep" and gm > 1:
        n = max(1, math.ceil(math.log(GROWTH_ALARM) / math.log(gm) - 1e-9))
        adv = lr.multistep_advances(p.stepvalues)
        return adv[n - 1] if n <= len(adv) else None
    # inv / poly: search the schedule in chunks
    step = 1_000_000
    for start in range(0, limit, step):
        r = lr.schedule(p, range(start, min(limit, start + step)))
        idx = np.flatnonzero(~(r < np.float32(base * GROWTH_ALARM)))
        if idx.size:
            return start + int(idx[0])
    return None


@register
class LrGrows(Rule):
    """
    ## What it detects
    A schedule that increases the learning rate: gamma > 1 with `step`, `exp` or
    `multistep`, a negative power with `inv` or `poly`, or a negative max_iter with
    `poly`. The message gives the growth factor and the iteration where the rate first
    exceeds 10 x base_lr (a `sigmoid` warm-up is by design and not reported).

    ## Why it leads to NaN
    Updates grow with the rate until they overshoot: the loss rises, the weights
    explode, and float overflow produces inf and then NaN. With `exp` the rate itself
    reaches inf (e.g. gamma 1.05 at iteration 1920 from base_lr 0.01).

    ## How to fix
    Use the reciprocal gamma (10 -> 0.1) or a positive power; add `clip_gradients` if a
    growing rate is really intended.

    ## Example
    `lr_policy: "multistep"`, `gamma: 10`, stepvalues 80 and 160: the rate is 1.0 from
    iteration 160 on. Use `gamma: 0.1`.
    """

    code = "NAN204"
    title = "Learning rate grows"
    cause = Cause.LR_POLICY
    bears = Bearing.PREDICTION
    severity = Severity.ERROR
    needs = ("solver",)

    def check(self, facts):
        a = analysis(facts)
        if a is None or a.abort is not None:
            return
        p, s = a.params, a.solver
        found = _growth(p)
        if found is None:
            return
        culprit, factor, new = found
        when = _when_exceeds(p, a.horizon.stop if a.horizon.stop > 0 else 10_000_000)
        within = when is not None and a.horizon.stop > 0 and when < a.horizon.stop
        if when is None:
            when_text = "it stays below 10 x base_lr" + (" in the run" if a.horizon.stop > 0 else "")
        else:
            when_text = f"it reaches 10 x base_lr at iteration {when}" + (
                "" if within else " (after the run ends)" if a.horizon.stop > 0 else ""
            )
        evidence = field_evidence(s, "lr_policy", culprit)
        if within:
            evidence.append(rate_evidence(a, when) if when < a.stop else Evidence(f"iteration {when}", None))
        clip = s.value("clip_gradients")
        if within and isinstance(clip, (int, float)) and clip < 0:
            when_text += "; clip_gradients is off, nothing bounds the updates"
        yield self.finding(
            f"the learning rate grows ({factor}): {when_text} ({a.runner_text})",
            location(s, culprit, "lr_policy"),
            severity=Severity.ERROR if within else Severity.WARNING,
            evidence=evidence,
            fix=set_fix(s, {culprit: new}, f"{change_text(s, culprit, new)} (the rate then decays)"),
            culprit=culprit,
            data={"reaches_10x_at": when},
        )


@register
class LrVanishesEarly(Rule):
    """
    ## What it detects
    A decaying schedule whose rate falls below 1e-4 x base_lr (or underflows to 0) in the
    first half of the run: a tiny exp gamma, many multistep drops, a short stepsize or a
    steep inv.

    ## Why it leads to NaN
    Not directly: training stalls for most of the run. It is usually a parameter typo
    (gamma 0.99 where 0.9999 was meant) worth knowing before spending the compute.

    ## How to fix
    Pick the decay so that the rate reaches its final value near the end of the run; the
    fix proposes such a value for the policy.

    ## Example
    `lr_policy: "exp"`, `gamma: 0.99`, `max_iter: 100000`: below 1e-4 x base_lr from
    iteration 917 on. `gamma: 0.99995395` reaches 1% at the end.
    """

    code = "NAN205"
    title = "Learning rate decays to ~0 far too early"
    cause = Cause.LR_POLICY
    bears = Bearing.PREDICTION
    severity = Severity.WARNING
    needs = ("solver",)

    def check(self, facts):
        a = analysis(facts)
        if a is None or a.rates is None or a.horizon.stop <= 1:
            return
        p, s = a.params, a.solver
        base = float(p.base_lr)
        if p.policy in ("fixed", "sigmoid") or not base > 0 or not math.isfinite(base):
            return
        if p.policy in ("step", "exp", "multistep") and not 0 < float(p.gamma) < 1:
            return  # gamma 0 is NAN203, gamma >= 1 does not decay
        if p.policy == "poly" and not 0 < a.horizon.stop <= p.max_iter:
            return  # poly stepped past max_iter is NAN201/NAN202
        rates = a.rates
        if not np.isfinite(rates).all():
            return
        low = np.flatnonzero(rates < np.float32(base * VANISH_RATIO))
        if not low.size or low[0] == 0 or low[0] >= VANISH_BEFORE * a.horizon.stop:
            return
        k = int(low[0])
        fix = _vanish_fix(a, k)
        if fix is None:
            return
        yield self.finding(
            f"the learning rate is below 1e-4 x base_lr from iteration {k} on, "
            f"{100 * k / a.horizon.stop:.2g}% into the run ({a.runner_text})",
            location(s, "gamma" if p.policy != "poly" else "power", "lr_policy"),
            evidence=[*field_evidence(s, "lr_policy", "gamma", "stepsize"), rate_evidence(a, k)],
            fix=fix,
            culprit="power" if p.policy == "poly" else "stepsize" if p.policy == "step" else "gamma",
            data={"iteration": k},
        )


def _vanish_fix(a, k: int):
    s, p, stop = a.solver, a.params, a.horizon.stop
    gm = float(p.gamma)
    if p.policy == "exp":
        new = format(0.01 ** (1 / stop), ".10g")
        return set_fix(s, {"gamma": new}, f"{change_text(s, 'gamma', new)} (1% of base_lr at the end)")
    if p.policy == "step":
        changes = {"stepsize": str(math.ceil(stop / 3))}
        if gm < 0.01:
            changes["gamma"] = "0.1"
        desc = "; ".join(change_text(s, n, v) for n, v in changes.items())
        return set_fix(s, changes, f"{desc} (two drops in the run)")
    if p.policy == "multistep":
        n = int(lr.multistep_steps(p.stepvalues, np.array([stop // 2]))[0])
        new = pretty(max(gm, 10 ** (-3 / max(n, 1))) * 1.0001)
        return set_fix(s, {"gamma": new}, f"{change_text(s, 'gamma', new)} (at most 1000x lower by mid-run)")
    if p.policy == "inv":
        pw = float(p.power)
        if pw <= 0:
            return None
        new = pretty((1e-3 ** (-1 / pw) - 1) / (stop / 2))
        return set_fix(s, {"gamma": new}, f"{change_text(s, 'gamma', new)} (1000x lower by mid-run)")
    if p.policy == "poly":
        return set_fix(s, {"power": "1"}, f"{change_text(s, 'power', '1')} (linear decay)", safe=False)
    return None
