"""Loss rules: which layers make up the loss and with what weight (NAN110-NAN112)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from nandoctor.config.edits import replace_edit
from nandoctor.config.net import Layer, Net
from nandoctor.core.registry import Rule, register
from nandoctor.core.types import Bearing, Cause, Evidence, Finding, Fix, Severity
from nandoctor.rules.net.common import field_evidence, location_of, nets_of, phases_text, variants

LOSS_CLASSES = {
    "SoftmaxWithLoss": "classification", "SigmoidCrossEntropyLoss": "multi-label classification",
    "InfogainLoss": "classification (information gain)", "MultinomialLogisticLoss": "classification (probabilities in)",
    "HingeLoss": "classification (hinge)", "EuclideanLoss": "regression (L2)", "SmoothL1Loss": "regression (smooth L1)",
    "ContrastiveLoss": "metric learning", "MultiBoxLoss": "detection", "Python": "custom Python loss",
}  # fmt: skip
HIGH_WEIGHT = 100.0
LOW_WEIGHT = 1e-3
SPREAD = 100.0


def loss_class(layer: Layer) -> str:
    return LOSS_CLASSES.get(layer.type, f"custom ({layer.type} used as a loss)")


@dataclass
class Head:
    layer: Layer
    top: str
    weight: float
    explicit: bool
    phases: list[str]


def loss_heads(facts, net: Net) -> list[Head]:
    """Every (layer, top) with a non-zero effective loss weight, over the net's variants."""
    heads: dict[tuple[int, int], Head] = {}
    for variant in variants(facts, net):
        for layer in variant.layers:
            for i, w in enumerate(layer.loss_weights):
                if w == 0:
                    continue
                key = (layer.index, i)
                if key not in heads:
                    explicit = bool(layer.msg.all("loss_weight"))
                    heads[key] = Head(
                        layer, layer.tops[i] if i < len(layer.tops) else "(anonymous top)", w, explicit, []
                    )
                heads[key].phases.append(variant.label)
    return list(heads.values())


def _weight_field(layer: Layer, top_index: int):
    fields = layer.msg.all("loss_weight")
    return fields[top_index] if top_index < len(fields) else None


def _fmt(w: float) -> str:
    return f"{w:g}"


@register
class LossHeads(Rule):
    """
    ## What it detects
    Lists every layer that contributes to the net's loss, with its effective loss_weight:
    1 on the first top of Caffe's LossLayer types (SoftmaxWithLoss, EuclideanLoss, ...) unless
    `loss_weight` is given, 0 for every other layer (including Python layers named "...Loss"),
    and the explicit value wherever `loss_weight` is set.

    ## Why it leads to NaN
    Each head's gradient is scaled by its weight; a head you did not expect to count (or one
    that silently counts 0) changes the effective learning rate of the layers below it.

    ## How to fix
    Nothing to fix by itself; check that the heads and weights are the ones you meant.

    ## Example
    `layer { type: "SoftmaxWithLoss" ... }` plus `layer { type: "EuclideanLoss" loss_weight: 0.1 }`
    gives two heads: classification with weight 1 (default) and regression with weight 0.1.
    """

    code = "NAN110"
    title = "Loss heads and their effective weights"
    cause = Cause.GRADIENT_EXPLOSION
    bears = Bearing.PREDICTION
    severity = Severity.INFO
    needs = ("net",)

    def check(self, facts) -> Iterator[Finding]:
        for net in nets_of(facts):
            heads = loss_heads(facts, net)
            if not heads:
                continue
            parts = []
            evidence = []
            for h in heads:
                how = "explicit" if h.explicit else "default"
                parts.append(
                    f"'{h.layer.name}' top '{h.top}' ({h.layer.type}, {loss_class(h.layer)}): weight {_fmt(h.weight)} ({how}) [{phases_text(h.phases)}]"
                )
                f = _weight_field(h.layer, h.layer.tops.index(h.top) if h.top in h.layer.tops else 0)
                evidence.append(
                    field_evidence(h.layer, f)
                    if f is not None
                    else Evidence(
                        f"{h.layer.name}: {h.layer.type} (loss_weight 1 by default)", h.layer.location(), "prototxt"
                    )
                )
            yield self.finding(
                f"{len(heads)} loss head(s) in net '{net.name or net.doc.path}': " + "; ".join(parts),
                heads[0].layer.location(),
                evidence=evidence,
                culprit=heads[0].layer.name,
                data={"heads": [{"layer": h.layer.name, "top": h.top, "type": h.layer.type, "class": loss_class(h.layer), "weight": h.weight, "explicit": h.explicit, "phases": h.phases} for h in heads]},
            )  # fmt: skip


@register
class ExtremeLossWeight(Rule):
    """
    ## What it detects
    A loss_weight above 100, below 1e-3 (but not 0) or negative.

    ## Why it leads to NaN
    The weight multiplies the gradient of everything below the head: a weight of 200 is a
    200x larger learning rate for that branch and the shared trunk, the classic route to
    exploding gradients and inf/NaN loss. A negative weight makes the solver *maximise* that
    loss, which diverges. A tiny weight effectively switches the head off.

    ## How to fix
    Bring the weight to the order of 1 and rescale the head's targets instead (e.g. normalise
    box coordinates), or lower base_lr if the large weight is intended.

    ## Example
    `layer { name: "loss_bbox" type: "EuclideanLoss" loss_weight: 200 }` on pixel coordinates:
    the regression gradients dominate and overflow within a few iterations.
    """

    code = "NAN111"
    title = "Extreme loss_weight"
    cause = Cause.GRADIENT_EXPLOSION
    bears = Bearing.PREDICTION
    severity = Severity.WARNING
    needs = ("net",)

    def check(self, facts) -> Iterator[Finding]:
        for net in nets_of(facts):
            for h in loss_heads(facts, net):
                w = h.weight
                if not math.isfinite(w):
                    problem = "is not finite"
                elif w < 0:
                    problem = "is negative: the solver maximises this loss, which diverges"
                elif w > HIGH_WEIGHT:
                    problem = f"is above {HIGH_WEIGHT:g}: the head's gradients (and the trunk's) are scaled {w:g}x"
                elif w < LOW_WEIGHT:
                    problem = f"is below {LOW_WEIGHT:g}: the head hardly trains"
                else:
                    continue
                index = h.layer.tops.index(h.top) if h.top in h.layer.tops else 0
                f = _weight_field(h.layer, index)
                edits = (replace_edit(h.layer.path, f.value, "1"),) if f is not None and not f.is_message else ()
                yield self.finding(
                    f"loss_weight {_fmt(w)} of '{h.layer.name}' ({h.layer.type}, {loss_class(h.layer)}) {problem} [{phases_text(h.phases)}]",
                    location_of(h.layer, f),
                    evidence=[field_evidence(h.layer, f)] if f is not None else [],
                    fix=Fix(f"Set loss_weight of '{h.layer.name}' to 1 and rescale its targets (or lower base_lr) instead.", edits, safe=False),
                    culprit=h.layer.name,
                    data={"layer": h.layer.name, "weight": w},
                )  # fmt: skip


def _spread_fix(heads: list[Head]) -> Fix:
    """Clamp every head into [m/5, 5m] around the median weight m (explicit weights are edited)."""
    weights = sorted(h.weight for h in heads)
    ref = weights[(len(weights) - 1) // 2]
    edits, changes = [], []
    for h in heads:
        target = min(max(h.weight, ref / 5), ref * 5)
        if target == h.weight:
            continue
        changes.append(f"'{h.layer.name}' {_fmt(h.weight)} -> {target:g}")
        index = h.layer.tops.index(h.top) if h.top in h.layer.tops else 0
        f = _weight_field(h.layer, index)
        if f is not None and not f.is_message:
            edits.append(replace_edit(h.layer.path, f.value, f"{target:g}"))
    return Fix(
        f"Bring the loss weights within 5x of the median ({ref:g}): {', '.join(changes)}; rescale the heads' targets "
        "so their losses are comparable.",
        tuple(edits),
        safe=False,
    )


@register
class LossWeightSpread(Rule):
    """
    ## What it detects
    Several loss heads whose weights differ by a factor of 100 or more.

    ## Why it leads to NaN
    The shared layers receive the sum of the heads' gradients; the heavy head dominates and
    sets the effective learning rate of the trunk, so a base_lr tuned for one head explodes
    with the other.

    ## How to fix
    Balance the weights (same order of magnitude) and normalise each head's loss scale, e.g.
    scale regression targets so their loss is comparable to the classification loss.

    ## Example
    `loss_cls` (SoftmaxWithLoss, weight 1) and `loss_bbox` (EuclideanLoss, weight 200):
    spread 200x.
    """

    code = "NAN112"
    title = "Large spread between loss weights"
    cause = Cause.GRADIENT_EXPLOSION
    bears = Bearing.PREDICTION
    severity = Severity.WARNING
    needs = ("net",)

    def check(self, facts) -> Iterator[Finding]:
        for net in nets_of(facts):
            heads = [h for h in loss_heads(facts, net) if h.weight > 0 and math.isfinite(h.weight)]
            if len(heads) < 2:
                continue
            big = max(heads, key=lambda h: h.weight)
            small = min(heads, key=lambda h: h.weight)
            ratio = big.weight / small.weight
            if ratio < SPREAD:
                continue
            yield self.finding(
                f"Loss weights span {ratio:g}x: '{big.layer.name}' ({big.layer.type}, {loss_class(big.layer)}) has "
                f"{_fmt(big.weight)}, '{small.layer.name}' ({small.layer.type}, {loss_class(small.layer)}) has {_fmt(small.weight)}",
                big.layer.location(),
                evidence=[Evidence(f"{h.layer.name}: {h.layer.type} ({loss_class(h.layer)}) weight {_fmt(h.weight)}", h.layer.location(), "prototxt") for h in heads],
                fix=_spread_fix(heads),
                culprit=big.layer.name,
                data={"ratio": ratio, "heads": {h.layer.name: h.weight for h in heads}},
            )  # fmt: skip
