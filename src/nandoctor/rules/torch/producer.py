"""NAN650/NAN651: the first NaN/inf was made inside the model, by something we cannot classify further."""

from __future__ import annotations

from nandoctor.core.registry import Rule, register
from nandoctor.core.types import Bearing, Cause, Evidence, Fix, Severity
from nandoctor.rules.torch.common import exploding, is_pooling, producer_evidence, sane_inputs


@register
class TorchModelProducer(Rule):
    """
    ## What it detects
    Replaying the poisoned step, the first op that turned finite inputs into NaN/inf ran
    inside the model, is not pooling, and there was no sign of a gradient explosion or
    a bad lr: the finding names the module and the op.

    ## Why it leads to NaN
    Ops such as ``sqrt``/``log``/division on values that reach 0 or below, ``exp`` of a
    large activation, or a weight already poisoned by an earlier update produce the
    value every later layer propagates.

    ## How to fix
    Make the named op safe (clamp its argument, add eps, compute it in float32).

    ## Example
    A custom normalisation ``x / x.norm(dim=1, keepdim=True)`` on an all-zero row.
    """

    code = "NAN650"
    title = "A model op produced the first NaN"
    cause = Cause.UNKNOWN
    bears = Bearing.GUARD
    severity = Severity.WARNING
    needs = ("torch",)

    def check(self, facts):
        f = facts.torch
        fwd = f.forward
        if f.bad_batch or not fwd or fwd.get("where") != "model" or is_pooling(fwd):
            return
        if exploding(f) or not f.lr_is_sane():
            return
        evidence = producer_evidence(fwd)
        module = fwd.get("module_producer") or {}
        if module and not module.get("params_finite", True):
            evidence.append(Evidence(f"{module.get('module')}'s own parameters are already non-finite"))
        yield self.finding(
            f"step {f.step}: {fwd.get('op')} in module {fwd.get('module')} produced the first NaN/inf",
            evidence=evidence,
            fix=Fix(
                f"make {fwd.get('op')} in {fwd.get('module')} safe for these inputs (clamp, eps, float32)", safe=False
            ),
            culprit=fwd.get("module"),
            data={"confidence": 0.55 if sane_inputs(fwd) else 0.3},
        )


@register
class TorchBackwardProducer(Rule):
    """
    ## What it detects
    The forward pass and the loss were finite, but the backward replay found an autograd
    node inside the model that turned finite incoming gradients into NaN/inf.

    ## Why it leads to NaN
    Some derivatives are infinite where the function is finite: ``sqrt`` and ``norm`` at
    0, ``pow`` with exponent < 1 at 0, ``acos`` at ±1. The gradient is NaN although every
    activation is fine, which ``detect_anomaly`` reports but does not explain.

    ## How to fix
    Add eps inside the root/norm, or clamp the argument away from the singular point.

    ## Example
    ``torch.sqrt((a - b).pow(2).sum(1))`` for identical rows: forward 0, gradient inf.
    """

    code = "NAN651"
    title = "A model op's gradient is the first NaN"
    cause = Cause.UNKNOWN
    bears = Bearing.GUARD
    severity = Severity.WARNING
    needs = ("torch",)

    def check(self, facts):
        f = facts.torch
        bwd = f.backward
        if f.bad_batch or f.forward or not bwd or bwd.get("where") == "loss" or exploding(f):
            return
        where = bwd.get("parameter") or bwd.get("module") or bwd.get("node")
        yield self.finding(
            f"step {f.step}: backward of {bwd.get('op', bwd.get('node'))} in {where} made the first NaN gradient",
            evidence=[Evidence(f"backward replay: {bwd.get('node')} turned finite gradients into NaN/inf")],
            fix=Fix(f"add eps inside {bwd.get('op', 'the op')} or clamp its argument away from 0", safe=False),
            culprit=where,
            data={"confidence": 0.5},
        )
