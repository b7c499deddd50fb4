"""NAN620: the first NaN/inf is made by the loss computation itself."""

from __future__ import annotations

from nandoctor.core.registry import Rule, register
from nandoctor.core.types import Bearing, Cause, Evidence, Fix, Severity
from nandoctor.rules.torch.common import exploding, producer_evidence, sane_inputs
from nandoctor.torch.facts import where as source_where


def loss_function(f, producer: dict) -> dict | None:
    """The user's function that ran the op: the frame of the op, else the criterion the guard was given."""
    return producer.get("source") or f.criterion


def loss_fix(producer: dict, function: dict | None = None) -> Fix:
    op = producer.get("op", "")
    place = f"in {source_where(function)}: " if function else ""
    if producer.get("zero_divisor") or "div" in op:
        text = f"{place}change x / count to x / count.clamp_min(1) (or add eps) so an empty class or mask gives 0"
    elif "log" in op:
        text = f"{place}change {op}(p) to {op}(p.clamp_min(1e-12)), or use log_softmax / F.cross_entropy on logits"
    elif "sqrt" in op or "pow" in op:
        text = f"{place}change {op}(x) to {op}(x + 1e-12) (keep the argument away from 0 and negatives)"
    else:
        text = f"{place}make {op} numerically safe (clamp its inputs, use the fused stable loss)"
    return Fix(text, safe=False)


def culprit_of(f, producer: dict, default: str) -> str:
    function = loss_function(f, producer)
    return f"{function['function']} ({producer.get('op')})" if function else default


@register
class TorchLossProducer(Rule):
    """
    ## What it detects
    Replaying the poisoned step, the first operation that turned finite values into
    NaN/inf ran after the model returned its output, in the loss computation (a loss
    module or the functional ops of a hand-written loss), and its inputs were of a sane
    magnitude. Also: the forward stayed finite but the backward of a loss op was the
    first to produce a non-finite gradient.

    ## Why it leads to NaN
    Losses written by hand often contain ``log(p)`` with p reaching 0, a division by a
    count that can be 0 (per-class frequency normalisation of labels absent from the
    batch), or ``sqrt`` at 0 whose gradient is inf. One such value makes the loss and
    then every gradient NaN.

    ## How to fix
    Guard the op: clamp the log argument with an epsilon or use ``log_softmax``/
    ``cross_entropy``; divide by ``count.clamp_min(1)``; add eps inside roots.

    ## Example
    ``w = 1 / torch.bincount(y, minlength=C)`` gives inf for a class missing from the
    batch, and ``(w[y] * nll).sum() / w.sum()`` is NaN.
    """

    code = "NAN620"
    title = "The loss computation produced the first NaN"
    cause = Cause.LOSS_FUNCTION
    bears = Bearing.GUARD
    severity = Severity.ERROR
    needs = ("torch",)

    def check(self, facts):
        f = facts.torch
        if f.bad_batch:
            return
        fwd, bwd = f.forward, f.backward
        if fwd and fwd.get("where") == "loss":
            sane = sane_inputs(fwd)
            culprit = culprit_of(f, fwd, f"{fwd.get('op')} (loss)")
            evidence = producer_evidence(fwd)
            function = loss_function(f, fwd)
            if function:
                evidence.append(Evidence(f"the op ran in {source_where(function)}"))
            if not sane:
                evidence.append(
                    Evidence("its inputs were already huge: the loss may only be where an explosion surfaced")
                )
            yield self.finding(
                f"step {f.step}: {fwd.get('op')} in the loss computation made the first NaN/inf",
                evidence=evidence,
                fix=loss_fix(fwd, function),
                culprit=culprit,
                data={"confidence": 0.92 if sane and not exploding(f) else 0.35, "op": fwd.get("op")},
            )
        elif not fwd and bwd and bwd.get("where") == "loss":
            yield self.finding(
                f"step {f.step}: the gradient of {bwd.get('op', bwd.get('node'))} in the loss is non-finite",
                evidence=[
                    Evidence(
                        f"backward replay: {bwd.get('node')} (from {bwd.get('op', '?')}) turned finite "
                        "gradients into NaN/inf; the forward pass was finite"
                    )
                ],
                fix=loss_fix(bwd, loss_function(f, bwd)),
                culprit=culprit_of(f, bwd, f"{bwd.get('op', bwd.get('node'))} (loss)"),
                data={"confidence": 0.85, "op": bwd.get("op")},
            )
