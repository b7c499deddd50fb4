"""A coarse value-range analysis of a net: what sign each blob can have, and whether it is bounded.

Three sign classes are enough for the unsafe-math rules: ``pos`` (always > 0), ``nonneg``
(>= 0, may be exactly 0, which includes float underflow of Softmax/Sigmoid) and ``any``.
``bounded`` means bounded above by a small constant (Sigmoid, TanH, Softmax, Threshold,
Clip, and shape-only layers of those). Learnable layers (InnerProduct, Convolution, Scale,
Bias, BatchNorm) and unknown types give ``any``: nothing constrains their weights.
"""

from __future__ import annotations

from dataclasses import dataclass

from nandoctor.config.layers import FIXED_OUTPUT
from nandoctor.config.net import Layer
from nandoctor.config.textformat import number
from nandoctor.rules.net.common import Variant, param_number

ORDER = {"pos": 0, "nonneg": 1, "any": 2}


@dataclass(frozen=True, slots=True)
class Range:
    sign: str = "any"  # pos | nonneg | any
    bounded: bool = False

    def weakest(self, other: Range) -> Range:
        sign = self.sign if ORDER[self.sign] >= ORDER[other.sign] else other.sign
        return Range(sign, self.bounded and other.bounded)


ANY = Range()
_PASS_THROUGH = {
    "Split",
    "Flatten",
    "Reshape",
    "Slice",
    "Crop",
    "Tile",
    "Dropout",
    "Pooling",
    "Silence",
    "BatchReindex",
    "Filter",
}


def _affine(x: Range, scale: float, shift: float) -> str:
    """Sign of shift + scale * x."""
    if scale == 0:
        return "pos" if shift > 0 else ("nonneg" if shift == 0 else "any")
    if scale < 0 or shift < 0 or x.sign == "any":
        return "any"
    if shift > 0 or x.sign == "pos":
        return "pos"
    return "nonneg"


def power_base(layer: Layer, x: Range) -> str:
    return _affine(
        x, param_number(layer, "power_param", "scale", 1.0), param_number(layer, "power_param", "shift", 0.0)
    )


def log_base(layer: Layer, x: Range) -> str:
    return _affine(x, param_number(layer, "log_param", "scale", 1.0), param_number(layer, "log_param", "shift", 0.0))


def _power(layer: Layer, ins: list[Range]) -> Range:
    x = ins[0] if ins else ANY
    power = param_number(layer, "power_param", "power", 1.0)
    base = power_base(layer, x)
    if power == 0:
        return Range("pos", True)
    if float(power).is_integer():
        if int(power) % 2 == 0:
            return Range("pos" if base == "pos" else "nonneg")
        return Range(base)
    return Range(base if base != "any" else "any")


def _eltwise(layer: Layer, ins: list[Range]) -> Range:
    p = layer.param("eltwise_param")
    op = str(p.get("operation", "SUM")) if p is not None else "SUM"
    if not ins:
        return ANY
    if op in ("MAX", "2"):
        best = min(ins, key=lambda r: ORDER[r.sign])
        return Range(best.sign, all(r.bounded for r in ins))
    if op in ("SUM", "1"):
        coeffs = [number(c) for c in (p.get_all("coeff") if p is not None else [])]
        if any(c is None or c < 0 for c in coeffs):
            return ANY
    out = ins[0]
    for r in ins[1:]:
        out = out.weakest(r)
    return Range(out.sign, False)


def _reduction(layer: Layer, ins: list[Range]) -> Range:
    p = layer.param("reduction_param")
    op = str(p.get("operation", "SUM")) if p is not None else "SUM"
    coeff = param_number(layer, "reduction_param", "coeff", 1.0)
    x = ins[0] if ins else ANY
    if coeff < 0:
        return ANY
    if op in ("ASUM", "SUMSQ", "2", "3"):
        return Range("nonneg" if coeff >= 0 else "any")
    return Range(x.sign if coeff > 0 else "nonneg")


def _relu(layer: Layer, ins: list[Range]) -> Range:
    slope = param_number(layer, "relu_param", "negative_slope", 0.0)
    x = ins[0] if ins else ANY
    return Range("nonneg" if slope == 0 else x.sign)


def _clip(layer: Layer, ins: list[Range]) -> Range:
    clip = layer.param("clip_param")
    low = param_number(layer, "clip_param", "min", 0.0) if clip is not None and clip.has("min") else float("-inf")
    return Range("pos" if low > 0 else ("nonneg" if low == 0 else "any"), True)


def output_range(layer: Layer, ins: list[Range]) -> Range:
    t = layer.type
    if t in _PASS_THROUGH:
        return ins[0] if ins else ANY
    if t == "Concat":
        out = ins[0] if ins else ANY
        for r in ins[1:]:
            out = out.weakest(r)
        return out
    if t in FIXED_OUTPUT:  # Sigmoid, Softmax, TanH, Threshold, AbsVal, BNLL, Exp, Accuracy, the losses
        return Range(*FIXED_OUTPUT[t])
    if t == "ReLU":
        return _relu(layer, ins)
    if t == "Clip":
        return _clip(layer, ins)
    if t == "Power":
        return _power(layer, ins)
    if t == "Eltwise":
        return _eltwise(layer, ins)
    if t == "Reduction":
        return _reduction(layer, ins)
    if t == "LRN":  # x * positive factor
        return Range(ins[0].sign if ins else "any")
    if t.endswith("Loss") or t == "Accuracy":
        return Range("nonneg")
    return ANY


def analyse(variant: Variant) -> dict[tuple[int, int], Range]:
    """(layer.index, bottom position) -> the range of that input."""
    blob: dict[str, Range] = {}
    inputs: dict[tuple[int, int], Range] = {}
    for layer in variant.layers:
        ins = []
        for i, name in enumerate(layer.bottoms):
            r = blob.get(name, ANY)
            inputs[(layer.index, i)] = r
            ins.append(r)
        out = output_range(layer, ins)
        for i, top in enumerate(layer.tops):
            blob[top] = out if i == 0 else (ins[0] if layer.type in ("Split", "Slice") and ins else ANY)
    return inputs


def feeds_loss(variant: Variant) -> set[int]:
    """Indices of layers whose output reaches a layer with a non-zero loss weight (those included)."""
    todo = [layer for layer in variant.layers if layer.is_loss]
    seen: set[int] = set()
    while todo:
        layer = todo.pop()
        if layer.index in seen:
            continue
        seen.add(layer.index)
        for i in range(len(layer.bottoms)):
            src = variant.source(layer, i)
            if src is not None and src.index not in seen:
                todo.append(src)
    return seen


def describe_source(variant: Variant, layer: Layer, i: int = 0) -> str:
    src = variant.source(layer, i)
    blob = layer.bottoms[i] if i < len(layer.bottoms) else "?"
    if src is None:
        return f"'{blob}' (no producer in this phase)"
    return f"'{blob}' from {src.type} '{src.name}'"


def chain_to_softmax(variant: Variant, layer: Layer, i: int = 0) -> Layer | None:
    """The Softmax feeding input ``i`` through shape-only layers, if any."""
    src = variant.source(layer, i)
    while src is not None and src.type in ("Split", "Flatten", "Reshape", "Dropout", "Crop"):
        src = variant.source(src, 0)
    return src if src is not None and src.type == "Softmax" else None
