"""Numerically unsafe constructions that feed a loss (NAN120-NAN125).

Each rule walks the layers whose output reaches a loss (``values.feeds_loss``) and uses
the sign analysis of ``values`` to decide whether an input can be 0 or negative.
"""

from __future__ import annotations

from collections.abc import Iterator

from nandoctor.config.edits import insert_field_edit, replace_edit
from nandoctor.config.net import Layer, Net
from nandoctor.config.textformat import Message, Scalar
from nandoctor.core.registry import Rule, register
from nandoctor.core.types import Bearing, Cause, Edit, Evidence, Finding, Fix, Severity
from nandoctor.rules.net.common import (
    Variant,
    field_evidence,
    field_of,
    location_of,
    nets_of,
    param_number,
    phases_text,
    variants,
)
from nandoctor.rules.net.values import analyse, chain_to_softmax, describe_source, feeds_loss, log_base, power_base


def _loss_layers(facts, net: Net) -> Iterator[tuple[Layer, Variant, dict, list[str]]]:
    """(layer, first variant, its input ranges, phase labels) for layers feeding a loss, deduplicated."""
    seen: dict[int, tuple[Layer, Variant, dict, list[str]]] = {}
    for variant in variants(facts, net):
        upstream = feeds_loss(variant)
        if not upstream:
            continue
        ranges = analyse(variant)
        for layer in variant.layers:
            if layer.index not in upstream:
                continue
            if layer.index in seen:
                seen[layer.index][3].append(variant.label)
            else:
                seen[layer.index] = (layer, variant, ranges, [variant.label])
    yield from seen.values()


def _param_fields(layer: Layer, param: str, names: tuple[str, ...]) -> list[Evidence]:
    msg = layer.param(param)
    return [field_evidence(layer, f) for n in names if (f := field_of(msg, n)) is not None]


def _sign_words(sign: str) -> str:
    return {"nonneg": "can be exactly 0", "any": "can be negative or 0"}.get(sign, "is positive")


def _guard_edit(net: Net, layer: Layer, param: str, shift: str = "1e-6") -> Edit | None:
    """Add ``shift: 1e-6`` to the layer's *_param (or replace a shift of 0)."""
    msg = layer.param(param)
    if msg is None:
        return None
    f = field_of(msg, "shift")
    if f is not None and isinstance(f.value, Scalar):
        return replace_edit(layer.path, f.value, shift)
    return insert_field_edit(net.doc, msg, f"shift: {shift}")


def _in_place_layer_edit(net: Net, variant: Variant, layer: Layer, layer_type: str) -> Edit | None:
    """Insert an in-place ``layer_type`` layer on this layer's input right after its producer (V2 files).

    Only offered when the producer's output feeds nothing else, so other consumers are unchanged.
    """
    src = variant.source(layer, 0)
    if (
        src is None
        or src.version != "v2"
        or not layer.bottoms
        or not isinstance(src.msg, Message)
        or src.msg.end is None
    ):
        return None
    if len(variant.consumers.get(src.index, [])) != 1:
        return None
    blob = layer.bottoms[0]
    text = net.doc.text
    line_start = text.rfind("\n", 0, src.field.name_pos.offset) + 1
    indent = text[line_start : src.field.name_pos.offset]
    indent = indent if not indent.strip() else ""
    inner = indent + ("\t" if "\t" in indent else "  ")
    block = (
        f'\n{indent}layer {{\n{inner}name: "{blob}_{layer_type.lower()}"\n{inner}type: "{layer_type}"\n'
        f'{inner}bottom: "{blob}"\n{inner}top: "{blob}"\n{indent}}}'
    )
    end = src.msg.end
    line = text.count("\n", 0, end) + 1
    return Edit(layer.path, end, end, "", block, line, end - (text.rfind("\n", 0, end) + 1) + 1)


@register
class UnsafeLog(Rule):
    """
    ## What it detects
    A Log layer feeding a loss whose argument `shift + scale * x` is not guaranteed positive:
    its input comes from a layer that can output 0 or negative values (InnerProduct,
    Convolution, Eltwise differences, or Softmax/Sigmoid, which underflow to exactly 0).

    ## Why it leads to NaN
    ln(0) = -inf and ln(x < 0) = NaN in the forward pass; the backward divides by the argument
    (1/0 = inf). A predicted variance that drifts to or below 0 is the classic case.

    ## How to fix
    Make the argument positive by construction: pass the input through Softplus (BNLL) or
    Exp first, or predict the logarithm directly; `log_param { shift: 1e-6 }` only guards an
    input that is already >= 0 (e.g. after ReLU or Softmax).

    ## Example
    `var = InnerProduct(fc2)`, `log_var = Log(var)` in a Gaussian NLL: once `var` crosses 0 the
    loss is NaN. Inserting `layer { type: "BNLL" bottom: "var" top: "var" }` keeps it positive.
    """

    code = "NAN120"
    title = "Log of a value that can be zero or negative"
    cause = Cause.LOSS_FUNCTION
    bears = Bearing.PREDICTION
    severity = Severity.WARNING
    needs = ("net",)

    def check(self, facts) -> Iterator[Finding]:
        for net in nets_of(facts):
            for layer, variant, ranges, phases in _loss_layers(facts, net):
                if layer.type != "Log" or not layer.bottoms:
                    continue
                x = ranges.get((layer.index, 0))
                base = log_base(layer, x) if x is not None else "any"
                if base == "pos":
                    continue
                source = describe_source(variant, layer)
                if base == "nonneg":
                    edit = _guard_edit(net, layer, "log_param")
                    if edit is None and layer.version == "v2":
                        edit = insert_field_edit(net.doc, layer.msg, "log_param { shift: 1e-6 }")
                    fix = Fix(
                        f"Add log_param {{ shift: 1e-6 }} to '{layer.name}' so ln never sees 0.",
                        (edit,) if edit else (),
                        safe=False,
                    )
                else:
                    edit = _in_place_layer_edit(net, variant, layer, "BNLL")
                    fix = Fix(
                        f"Make the input of '{layer.name}' positive by construction: apply Softplus (BNLL) or Exp to "
                        f"'{layer.bottoms[0]}' first (or predict its logarithm directly); a shift alone does not help "
                        "for negative values.",
                        (edit,) if edit else (),
                        safe=False,
                    )
                yield self.finding(
                    f"Log '{layer.name}' takes ln of {source}, which {_sign_words(base)}: ln gives -inf/NaN and its "
                    f"gradient 1/x blows up; it feeds the loss [{phases_text(phases)}]",
                    layer.location(),
                    evidence=[Evidence(f"{layer.name}: type Log, input {source}", layer.location(), "prototxt"),
                              *_param_fields(layer, "log_param", ("scale", "shift", "base"))],
                    fix=fix,
                    culprit=layer.name,
                    data={"layer": layer.name, "input_sign": base},
                )  # fmt: skip


@register
class UnsafePower(Rule):
    """
    ## What it detects
    A Power layer feeding a loss with a fractional power on a base `shift + scale * x` that
    can be negative, a negative power on a base that can be 0, or a fractional power below 1
    on a base that can be exactly 0.

    ## Why it leads to NaN
    (negative)^0.5 is NaN; 0^-1 is inf (and inf * 0 = NaN downstream); for 0 < p < 1 the
    backward computes power * y / x = 0/0 = NaN where the base is 0 (sqrt has no finite
    gradient at 0).

    ## How to fix
    Keep the base strictly positive: AbsVal (or a square) before a root, and a small
    `shift` (e.g. 1e-6) for inverses and roots of values that can be 0.

    ## Example
    `err = target - pred` then `Power { power: 0.5 }`: NaN as soon as pred overshoots the
    target. `num_pos = Reduction SUM(is_pos)`, `norm = Power { power: -1 }`: inf on a batch
    without positives.
    """

    code = "NAN121"
    title = "Power with a fractional or negative exponent on an unsafe base"
    cause = Cause.LOSS_FUNCTION
    bears = Bearing.PREDICTION
    severity = Severity.WARNING
    needs = ("net",)

    def check(self, facts) -> Iterator[Finding]:
        for net in nets_of(facts):
            for layer, variant, ranges, phases in _loss_layers(facts, net):
                if layer.type != "Power" or not layer.bottoms:
                    continue
                power = param_number(layer, "power_param", "power", 1.0)
                x = ranges.get((layer.index, 0))
                base = power_base(layer, x) if x is not None else "any"
                fractional = not float(power).is_integer()
                if fractional and base == "any":
                    problem = f"power {power:g} of a base that can be negative gives NaN"
                elif power < 0 and base != "pos":
                    problem = f"power {power:g} of a base that can be 0 gives inf (and inf * 0 = NaN downstream)"
                elif fractional and 0 < power < 1 and base == "nonneg":
                    problem = f"power {power:g} of a base that can be 0 has a 0/0 = NaN gradient there"
                else:
                    continue
                source = describe_source(variant, layer)
                edits: list[Edit] = []
                if base == "any" and fractional:
                    edit = _in_place_layer_edit(net, variant, layer, "AbsVal")
                    if edit:
                        edits.append(edit)
                    how = f"take AbsVal of '{layer.bottoms[0]}' first (or square it) and add power_param {{ shift: 1e-6 }}"
                else:
                    how = "add power_param { shift: 1e-6 } so the base stays positive"
                guard = _guard_edit(net, layer, "power_param")
                if guard is not None:
                    edits.append(guard)
                yield self.finding(
                    f"Power '{layer.name}': {problem}; its input is {source} [{phases_text(phases)}]",
                    location_of(layer, field_of(layer.param("power_param"), "power")),
                    evidence=[Evidence(f"{layer.name}: type Power, input {source}", layer.location(), "prototxt"),
                              *_param_fields(layer, "power_param", ("power", "scale", "shift"))],
                    fix=Fix(f"In '{layer.name}', {how}.", tuple(edits), safe=False),
                    culprit=layer.name,
                    data={"layer": layer.name, "power": power, "base_sign": base},
                )  # fmt: skip


@register
class UnboundedExp(Rule):
    """
    ## What it detects
    An Exp layer feeding a loss whose input is not bounded above (anything but Sigmoid, TanH,
    Softmax, Threshold or Clip outputs).

    ## Why it leads to NaN
    exp overflows float at an exponent of about 88.7: one large activation makes it inf, and
    inf - inf or inf * 0 later gives NaN. Its gradient is exp itself, so the blow-up feeds back.

    ## How to fix
    Bound the exponent (TanH/Clip before Exp, or a smaller exp_param scale), or use a loss
    layer that computes the same quantity stably (SoftmaxWithLoss, SigmoidCrossEntropyLoss).

    ## Example
    `var = Exp(InnerProduct(...))` for a predicted variance: fine until the pre-activation
    exceeds 88, then inf.
    """

    code = "NAN122"
    title = "Exp without a bound on its input"
    cause = Cause.LOSS_FUNCTION
    bears = Bearing.PREDICTION
    severity = Severity.WARNING
    needs = ("net",)

    def check(self, facts) -> Iterator[Finding]:
        for net in nets_of(facts):
            for layer, variant, ranges, phases in _loss_layers(facts, net):
                if layer.type != "Exp" or not layer.bottoms:
                    continue
                x = ranges.get((layer.index, 0))
                if x is not None and x.bounded:
                    continue
                if param_number(layer, "exp_param", "scale", 1.0) == 0:
                    continue
                source = describe_source(variant, layer)
                yield self.finding(
                    f"Exp '{layer.name}' exponentiates {source}, which is not bounded: exp overflows to inf past ~88.7 "
                    f"and the loss becomes inf/NaN [{phases_text(phases)}]",
                    layer.location(),
                    evidence=[Evidence(f"{layer.name}: type Exp, input {source}", layer.location(), "prototxt"),
                              *_param_fields(layer, "exp_param", ("base", "scale", "shift"))],
                    fix=Fix(f"Bound the input of '{layer.name}' (TanH or Clip before it, or a smaller exp_param scale), "
                            "or compute the loss with a numerically stable loss layer."),
                    culprit=layer.name,
                )  # fmt: skip


@register
class PythonLoss(Rule):
    """
    ## What it detects
    A Python layer that contributes to the loss (explicit non-zero loss_weight), and a Python
    layer whose class is named like a loss but counts 0 because Caffe gives non-LossLayer
    types a default loss_weight of 0.

    ## Why it leads to NaN
    A custom loss runs arbitrary code nandoctor cannot check statically (it never imports it):
    log/division without guards there are a common NaN source. A loss that silently counts 0
    trains nothing, so other heads or the learning rate get tuned around it.

    ## How to fix
    Check the layer's forward/backward for log(0), division by 0 and overflow; give
    `loss_weight: 1` explicitly if the layer is meant to be a loss.

    ## Example
    `layer { type: "Python" python_param { module: "losses" layer: "FocalLoss" } top: "loss" }`
    without `loss_weight` contributes nothing to the loss.
    """

    code = "NAN123"
    title = "Python layer used as a loss"
    cause = Cause.LOSS_FUNCTION
    bears = Bearing.PREDICTION
    severity = Severity.INFO
    needs = ("net",)

    def check(self, facts) -> Iterator[Finding]:
        for net in nets_of(facts):
            seen: set[int] = set()
            for variant in variants(facts, net):
                for layer in variant.of_type("Python"):
                    if layer.index in seen:
                        continue
                    seen.add(layer.index)
                    p = layer.param("python_param")
                    module = str(p.get("module", "?")) if p is not None else "?"
                    cls = str(p.get("layer", "?")) if p is not None else "?"
                    evidence = [
                        Evidence(
                            f"{layer.name}: python_param module '{module}' layer '{cls}'", layer.location(), "prototxt"
                        )
                    ]
                    if layer.is_loss:
                        weights = ", ".join(f"{w:g}" for w in layer.loss_weights)
                        yield self.finding(
                            f"Python layer '{layer.name}' ({module}.{cls}) is a custom loss (loss_weight {weights}); its code "
                            "cannot be checked statically for log(0), division by zero or overflow",
                            layer.location(), evidence=evidence, culprit=layer.name,
                            fix=Fix(f"Review {module}.{cls} forward/backward for unguarded log, division and exp."),
                        )  # fmt: skip
                    elif "loss" in cls.lower() and layer.tops:
                        edit = (
                            insert_field_edit(net.doc, layer.msg, "loss_weight: 1") if layer.version == "v2" else None
                        )
                        yield self.finding(
                            f"Python layer '{layer.name}' ({module}.{cls}) looks like a loss but contributes 0: Caffe's "
                            "default loss_weight is 0 for every type that is not a LossLayer",
                            layer.location(), severity=Severity.WARNING, evidence=evidence, culprit=layer.name,
                            fix=Fix(f"Add loss_weight: 1 to '{layer.name}' if it is meant to be a loss.", (edit,) if edit else (), safe=False),
                        )  # fmt: skip


@register
class InfogainSemantics(Rule):
    """
    ## What it detects
    An InfogainLoss layer. Its input changed meaning between Caffe versions: up to rc5 it
    expected probabilities (a Softmax before it); since 1.0 (April 2017) it applies a softmax
    itself and expects raw scores.

    ## Why it leads to NaN
    A Softmax before InfogainLoss on Caffe >= 1.0 is a double softmax: probabilities squashed
    towards uniform, tiny gradients, and a loss that looks stuck. Raw scores fed to the old
    layer are taken as probabilities: ln(max(p, 1e-20)) of negative scores clamps at 46 and the
    gradient -H/(N*1e-20) explodes to inf/NaN.

    ## How to fix
    Match the input to the Caffe you build: raw scores on >= 1.0, a Softmax before it on rc5
    and older (or use SoftmaxWithLoss with loss_param weights).

    ## Example
    `prob = Softmax(fc8)`, `InfogainLoss(prob, label)` — correct on rc5, a double softmax on 1.0.
    """

    code = "NAN124"
    title = "InfogainLoss input depends on the Caffe version"
    cause = Cause.LOSS_FUNCTION
    bears = Bearing.PREDICTION
    severity = Severity.WARNING
    needs = ("net",)

    def check(self, facts) -> Iterator[Finding]:
        for net in nets_of(facts):
            for layer, variant, _, phases in _loss_layers(facts, net):
                if layer.type != "InfogainLoss" or not layer.bottoms:
                    continue
                softmax = chain_to_softmax(variant, layer)
                if softmax is not None:
                    bottom_field = layer.msg.all("bottom")[0] if layer.msg.all("bottom") else None
                    edits = ()
                    if softmax.bottoms and bottom_field is not None and isinstance(bottom_field.value, Scalar):
                        quote = bottom_field.value.text[0] if bottom_field.value.text[:1] in "\"'" else '"'
                        edits = (replace_edit(layer.path, bottom_field.value, f"{quote}{softmax.bottoms[0]}{quote}"),)
                    yield self.finding(
                        f"InfogainLoss '{layer.name}' reads the output of Softmax '{softmax.name}': on Caffe 1.0 and later "
                        "InfogainLoss applies its own softmax, so this is a double softmax (correct only on rc5 and older) "
                        f"[{phases_text(phases)}]",
                        layer.location(),
                        evidence=[Evidence(f"{layer.name}: bottom '{layer.bottoms[0]}' from Softmax '{softmax.name}'", layer.location(), "prototxt")],
                        fix=Fix(f"On Caffe >= 1.0 feed the raw scores '{softmax.bottoms[0] if softmax.bottoms else '?'}' to '{layer.name}'.", edits, safe=False),
                        culprit=layer.name,
                    )  # fmt: skip
                else:
                    yield self.finding(
                        f"InfogainLoss '{layer.name}' reads raw scores {describe_source(variant, layer)}: right for Caffe 1.0 "
                        "and later (internal softmax); Caffe rc5 and older take them as probabilities, clamp ln at 1e-20 and "
                        f"the gradient explodes [{phases_text(phases)}]",
                        layer.location(),
                        severity=Severity.INFO,
                        evidence=[Evidence(f"{layer.name}: bottom {describe_source(variant, layer)}", layer.location(), "prototxt")],
                        fix=Fix("Make sure the Caffe you train with is 1.0 or later, or put a Softmax before the layer on rc5 and older."),
                        culprit=layer.name,
                    )  # fmt: skip


@register
class MultinomialRawScores(Rule):
    """
    ## What it detects
    A MultinomialLogisticLoss whose input is not a probability (not produced by a Softmax or
    Sigmoid, possibly through reshaping layers).

    ## Why it leads to NaN
    The layer computes -ln(max(p_label, 1e-20)) and its gradient -1/(N * max(p, 1e-20)):
    raw scores (negative or > 1) are not rejected, so the loss sits at the 46.05 clamp and the
    gradient reaches 1e20 scale, overflowing to inf/NaN.

    ## How to fix
    Use SoftmaxWithLoss on the raw scores (numerically stable), or put a Softmax before the
    MultinomialLogisticLoss.

    ## Example
    `MultinomialLogisticLoss(fc8, label)` -> replace the type with `SoftmaxWithLoss`.
    """

    code = "NAN125"
    title = "MultinomialLogisticLoss fed raw scores"
    cause = Cause.LOSS_FUNCTION
    bears = Bearing.PREDICTION
    severity = Severity.ERROR
    needs = ("net",)

    def check(self, facts) -> Iterator[Finding]:
        for net in nets_of(facts):
            for layer, variant, ranges, phases in _loss_layers(facts, net):
                if layer.type != "MultinomialLogisticLoss" or not layer.bottoms:
                    continue
                x = ranges.get((layer.index, 0))
                if x is not None and x.sign != "any" and x.bounded:
                    continue  # Softmax / Sigmoid output
                type_field = layer.msg.last("type")
                edits: tuple[Edit, ...] = ()
                if type_field is not None and isinstance(type_field.value, Scalar):
                    new = '"SoftmaxWithLoss"' if layer.version == "v2" else "SOFTMAX_LOSS"
                    edits = (replace_edit(layer.path, type_field.value, new),)
                yield self.finding(
                    f"MultinomialLogisticLoss '{layer.name}' reads {describe_source(variant, layer)}, which is not a "
                    f"probability: ln is clamped at 1e-20 and the gradient reaches 1e20 scale [{phases_text(phases)}]",
                    layer.location(),
                    evidence=[Evidence(f"{layer.name}: bottom {describe_source(variant, layer)}", layer.location(), "prototxt")],
                    fix=Fix(f"Change '{layer.name}' to SoftmaxWithLoss (it applies a stable softmax to raw scores).", edits, safe=False),
                    culprit=layer.name,
                )  # fmt: skip
