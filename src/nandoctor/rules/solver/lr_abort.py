"""NAN200: Caffe aborts at the first update because of the lr policy or its parameters."""

from __future__ import annotations

import difflib
import math

from nandoctor.config import lr
from nandoctor.config.forks import FORK_LR_POLICIES, chosen_flavor, severity_for
from nandoctor.core.registry import Rule, register
from nandoctor.core.types import Bearing, Cause, Evidence, Severity
from nandoctor.rules.solver._shared import analysis, change_text, field_evidence, location, pretty, set_fix


@register
class LrPolicyAbort(Rule):
    """
    ## What it detects
    An lr_policy Caffe does not know (unset, misspelt, wrong case: names are case
    sensitive), or parameters that fail the checks Caffe makes when it first computes the
    rate: `step` and `sigmoid` need `stepsize > 0`; `step`, `exp`, `inv`, `multistep` and
    `sigmoid` need `gamma >= 0`.

    ## Why it leads to NaN
    Caffe aborts after the first forward/backward pass with a FATAL line such as
    `sgd_solver.cpp:33] Check failed: this->param_.stepsize() > 0 (0 vs. 0)` — often an
    hour into a job, after data loading and net setup. Builds up to Caffe 1.0 have no
    checks: `step` without stepsize crashes with SIGFPE (integer division by zero) and a
    negative gamma gives a sign-alternating or NaN learning rate.

    ## How to fix
    Set the missing parameter (the fix proposes a stepsize of a third of the run), make
    gamma non-negative, or spell the policy as Caffe does: fixed, step, exp, inv,
    multistep, poly, sigmoid.

    ## Example
    `lr_policy: "step"` with `gamma: 0.1` and no `stepsize` aborts at iteration 0;
    add `stepsize: 3334` for a 10000-iteration run.
    """

    code = "NAN200"
    title = "Caffe aborts when it first computes the learning rate"
    cause = Cause.LR_POLICY
    bears = Bearing.PREDICTION
    severity = Severity.ERROR
    needs = ("solver",)

    def check(self, facts):
        a = analysis(facts)
        if a is None or a.abort is None:
            return
        s, p, abort = a.solver, a.params, a.abort
        fix = _fix(a)
        where = "the first update (iteration 0)"
        message = f"Caffe will abort at {where} with: {abort.text}"
        if abort.culprit == "lr_policy" and not p.policy:
            message += " (lr_policy is not set)"
        elif abort.culprit == "lr_policy" and p.policy in FORK_LR_POLICIES:
            fork = FORK_LR_POLICIES[p.policy]
            message = f"BVLC Caffe would abort at {where} with: {abort.text} ({p.policy!r} exists only in {fork})"
            # a fork's policy is valid where the fork runs: an error only when the user runs another Caffe
            yield self.finding(
                message,
                location(s, "lr_policy"),
                severity=severity_for(fork, chosen_flavor(facts.options)),
                evidence=field_evidence(s, "lr_policy"),
                fix=fix,  # what to write to run the solver on BVLC Caffe instead
                culprit="lr_policy",
                data={"fatal": abort.text, "fork": fork},
            )
            return
        elif abort.culprit == "lr_policy":
            message += f" (known policies: {', '.join(lr.POLICIES)}; names are case sensitive)"
        if abort.culprit != "lr_policy":
            message += f". Builds without this check (Caffe <= 1.0): {abort.legacy}"
        yield self.finding(
            message,
            location(s, abort.culprit),
            evidence=[*field_evidence(s, abort.culprit), Evidence(f"F... {abort.text}", None, "computed")],
            fix=fix,
            culprit=abort.culprit,
            data={"fatal": abort.text},
        )


def _fix(a):
    s, p, culprit = a.solver, a.params, a.abort.culprit
    stop = a.horizon.stop
    if culprit == "lr_policy":
        close = [q for q in lr.POLICIES if q == p.policy.lower()] or difflib.get_close_matches(
            p.policy.lower(), lr.POLICIES, n=1
        )
        if close:
            new = f'"{close[0]}"'
            return set_fix(
                s, {"lr_policy": new}, f"{change_text(s, 'lr_policy', new)} (policy names are case sensitive)"
            )
        return set_fix(
            s,
            {"lr_policy": '"fixed"'},
            f"{change_text(s, 'lr_policy', chr(34) + 'fixed' + chr(34))}: a constant base_lr; choose the schedule you meant",
            safe=False,
        )
    if culprit == "stepsize":
        if stop > 0:
            value = max(1, math.ceil(stop / (3 if p.policy == "step" else 2)))
            why = "a third of the run" if p.policy == "step" else "the middle of the run"
        else:
            value, why = 10000, "a placeholder: choose it for the number of iterations you run"
        return set_fix(s, {"stepsize": str(value)}, f"{change_text(s, 'stepsize', str(value))} ({why})", safe=stop > 0)
    # gamma < 0 or NaN
    gm = float(p.gamma)
    if math.isnan(gm) or gm == -math.inf:
        new = 0.1
    else:
        new = abs(gm) if abs(gm) <= 1 or p.policy in ("inv", "sigmoid") else 1 / abs(gm)
    text = pretty(new)
    note = " (a sigmoid with gamma > 0 rises: Caffe has no decaying sigmoid)" if p.policy == "sigmoid" else ""
    return set_fix(s, {"gamma": text}, f"{change_text(s, 'gamma', text)}{note}", safe=p.policy != "sigmoid")
