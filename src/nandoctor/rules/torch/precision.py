"""NAN625: the first NaN/inf comes from running an op in float16/bfloat16; in float32 it is finite."""

from __future__ import annotations

from nandoctor.core.registry import Rule, register
from nandoctor.core.types import Cause, Evidence, Fix, Severity
from nandoctor.torch.facts import where as source_where


@register
class TorchReducedPrecisionProducer(Rule):
    """
    ## What it detects
    The step ran under float16/bfloat16 autocast (or on low-precision tensors) and the
    first non-finite value of the replay came from an op whose float32 result is finite:
    either the op itself, recomputed on the same inputs in float32, or the whole step
    replayed without autocast, stays finite.

    ## Why it leads to NaN
    float16 overflows above 65504, so a matmul, a sum of squares or an exponential that
    is fine in float32 gives inf; bfloat16 keeps the range but only 8 bits of mantissa,
    so two nearly equal values round to the same number and their difference is 0 (a
    later division gives inf). The model is not wrong; its precision is.

    ## How to fix
    Keep the named op in float32: wrap it in ``torch.autocast(device_type, enabled=False)``
    and cast its inputs with ``.float()``; or scale its inputs down; with float16 prefer
    bfloat16 where the hardware has it.

    ## Example
    A linear layer whose outputs reach 1e5 under ``torch.autocast("cuda", torch.float16)``
    returns inf; in float32 the same layer returns 1e5.
    """

    code = "NAN625"
    title = "An op overflowed in reduced precision (finite in float32)"
    cause = Cause.UNKNOWN
    severity = Severity.ERROR
    needs = ("torch",)

    def check(self, facts):
        f = facts.torch
        p = f.precision
        if f.bad_batch or not p or not (p.get("fp32_finite") or p.get("fp32_replay_finite")):
            return
        op, module = p.get("op") or "the op", p.get("module")
        dtype = p.get("dtype") or "reduced precision"
        place = f" in module {module}" if module else ""
        source = (f.forward or {}).get("source")
        at = f" ({source_where(source)})" if source else ""
        evidence = []
        if p.get("fp32_finite"):
            evidence.append(
                Evidence(f"{op}{place} gives NaN/inf in {dtype}; on the same inputs in float32 it is finite")
            )
        if p.get("fp32_replay_finite"):
            evidence.append(
                Evidence(f"the same step replayed without autocast stays finite; under {dtype} it does not")
            )
        yield self.finding(
            f"step {f.step}: {op}{place}{at} made the first NaN/inf in {dtype}; its float32 result is finite",
            evidence=evidence,
            fix=Fix(
                f"keep {op}{place}{at} in float32: run it under torch.autocast(device_type, enabled=False) with "
                "inputs cast by .float() (or scale its inputs down)",
                safe=False,
            ),
            culprit=f"{op}{place} ({dtype})",
            data={"confidence": 0.93, "op": op, "dtype": dtype},
        )
