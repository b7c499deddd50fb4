"""NAN640: a pooling module made the first NaN/inf (an empty window)."""

from __future__ import annotations

from nandoctor.core.registry import Rule, register
from nandoctor.core.types import Bearing, Cause, Evidence, Fix, Severity
from nandoctor.rules.torch.common import exploding, is_pooling, pooling_module, producer_evidence, sane_inputs
from nandoctor.torch.pooling import geometry_report


def _geometry(f) -> dict | None:
    module = (f.forward or {}).get("module_producer") or {}
    if not module.get("attrs"):
        return None
    return geometry_report(module["attrs"], module.get("input_shape") or [])


@register
class TorchPoolingProducer(Rule):
    """
    ## What it detects
    Replaying the poisoned step, the first module/op that made NaN/inf from finite
    inputs is a pooling layer; when the module has kernel/stride/padding attributes the
    finding lists its windows that contain no input element.

    ## Why it leads to NaN
    An average over an empty window is 0 / 0 = NaN and a max over one is -inf. PyTorch's
    own ``AvgPool``/``MaxPool`` drop such a last window, but ported Caffe pooling
    (``ceil`` output size without the clip, stride > kernel), masked mean pooling over
    an all-padding sequence, attention pooling whose mask hides every position (softmax
    of all -inf) and ``mean`` over a zero-length dimension do not.

    ## How to fix
    Use ``ceil_mode=False`` or a stride <= kernel, clip the last window as PyTorch does,
    divide by ``count.clamp_min(1)`` in masked pooling, and give fully masked rows a
    defined output (skip them, or mask with a large negative number instead of -inf).

    ## Example
    Caffe-style average pooling, kernel 2, stride 3, no padding, ceil mode, on width 6:
    ceil((6 - 2) / 3) + 1 = 3 windows, and the third covers columns 6..7 of an input
    whose columns are 0..5, so it averages nothing: 0 / 0.
    """

    code = "NAN640"
    title = "A pooling layer produced NaN (empty window)"
    cause = Cause.POOLING
    bears = Bearing.GUARD
    severity = Severity.ERROR
    needs = ("torch",)

    def check(self, facts):
        f = facts.torch
        if f.bad_batch or not is_pooling(f.forward) or not sane_inputs(f.forward):
            return
        name, kind = pooling_module(f.forward)
        evidence = producer_evidence(f.forward)
        geometry = _geometry(f)
        if geometry and geometry["empty_windows"]:
            for w in geometry["empty_windows"][:4]:
                evidence.append(
                    Evidence(
                        f"window {w['window']} along spatial dim {w['dim']} covers positions {w['first']}..{w['last']} "
                        f"but the input has {w['size']} (kernel {geometry['kernel']}, stride {geometry['stride']}, "
                        f"pad {geometry['padding']}, ceil_mode={geometry['ceil_mode']}): it is empty"
                    )
                )
            fix = Fix(
                f"{name}: use ceil_mode=False, a stride <= kernel, or drop windows that start in the padding",
                safe=False,
            )
        else:
            fix = Fix(f"{name}: divide by the window's element count clamped to >= 1 (count.clamp_min(1))", safe=False)
        yield self.finding(
            f"step {f.step}: pooling {name} ({kind}) produced the first NaN/inf",
            evidence=evidence,
            fix=fix,
            culprit=name,
            data={"confidence": 0.6 if exploding(f) else 0.9, "geometry": geometry},
        )
