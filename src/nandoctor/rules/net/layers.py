"""Risky layer parameters (NAN130-NAN135) and weight initialisation (NAN140-NAN141)."""

from __future__ import annotations

from collections.abc import Iterator

from nandoctor.config.edits import insert_field_edit, replace_edit
from nandoctor.config.forks import chosen_flavor
from nandoctor.config.net import Layer, Net, lr_mults
from nandoctor.config.textformat import Message, Scalar, boolean
from nandoctor.core.registry import Rule, register
from nandoctor.core.types import Bearing, Cause, Evidence, Finding, Fix, Severity
from nandoctor.rules.net.common import (
    Variant,
    field_evidence,
    field_of,
    location_of,
    nets_of,
    param_number,
    param_value,
    phases_text,
    variants,
)


def _layers_of_type(
    facts, net: Net, types: tuple[str, ...], training_only: bool = False
) -> Iterator[tuple[Layer, list[str]]]:
    """Each layer of the given types once, with the labels of the variants that contain it."""
    found: dict[int, tuple[Layer, list[str]]] = {}
    for variant in variants(facts, net):
        if training_only and not variant.is_training:
            continue
        for layer in variant.of_type(*types):
            found.setdefault(layer.index, (layer, []))[1].append(variant.label)
    yield from found.values()


def _true(value) -> bool:
    return boolean(value) is True


@register
class BatchNormGlobalStatsInTrain(Rule):
    """
    ## What it detects
    A BatchNorm layer with `use_global_stats: true` in a TRAIN net that has a loss.

    ## Why it leads to NaN
    With global statistics the layer never updates its running mean/variance, and a fresh
    (or renamed, so not loaded) layer has a normaliser of 0: Caffe then uses mean 0 and
    variance 0, multiplying activations by 1/sqrt(eps) = 316 per BatchNorm layer, which
    overflows to inf/NaN in a deep net.

    ## How to fix
    Remove `use_global_stats` from TRAIN (Caffe picks false in TRAIN and true in TEST), or
    make sure the statistics are loaded from a trained model when freezing them on purpose.

    ## Example
    `batch_norm_param { use_global_stats: true }` copied from a deploy file into train_val.
    """

    code = "NAN130"
    title = "BatchNorm uses global statistics while training"
    cause = Cause.GRADIENT_EXPLOSION
    bears = Bearing.PREDICTION
    severity = Severity.WARNING
    needs = ("net",)

    def check(self, facts) -> Iterator[Finding]:
        for net in nets_of(facts):
            for layer, phases in _layers_of_type(facts, net, ("BatchNorm",), training_only=True):
                msg = layer.param("batch_norm_param")
                f = field_of(msg, "use_global_stats")
                if f is None or not _true(f.value.value if isinstance(f.value, Scalar) else None):
                    continue
                yield self.finding(
                    f"BatchNorm '{layer.name}' has use_global_stats: true in a TRAIN net: its statistics never update, "
                    f"and unloaded statistics (normaliser 0) scale activations by 1/sqrt(eps) [{phases_text(phases)}]",
                    location_of(layer, f),
                    evidence=[field_evidence(layer, f)],
                    fix=Fix(f"Set use_global_stats: false in '{layer.name}' for TRAIN (or remove it and let Caffe choose per phase), "
                            "unless frozen statistics are loaded from a trained model.",
                            (replace_edit(layer.path, f.value, "false"),), safe=False),
                    culprit=layer.name,
                )  # fmt: skip


@register
class BatchNormZeroEps(Rule):
    """
    ## What it detects
    A BatchNorm layer with `eps` of 0 or less.

    ## Why it leads to NaN
    y = (x - mean) / sqrt(var + eps): a channel that is constant over the batch (dead ReLU,
    padding, a constant image region) has variance 0, and 0/0 = NaN.

    ## How to fix
    Use Caffe's default eps 1e-5 (remove the field) or any small positive value.

    ## Example
    `batch_norm_param { eps: 0 }`.
    """

    code = "NAN131"
    title = "BatchNorm eps is 0"
    cause = Cause.LOSS_FUNCTION
    bears = Bearing.PREDICTION
    severity = Severity.WARNING
    needs = ("net",)

    def check(self, facts) -> Iterator[Finding]:
        for net in nets_of(facts):
            for layer, phases in _layers_of_type(facts, net, ("BatchNorm",)):
                f = field_of(layer.param("batch_norm_param"), "eps")
                if f is None or param_number(layer, "batch_norm_param", "eps", 1e-5) > 0:
                    continue
                yield self.finding(
                    f"BatchNorm '{layer.name}' has eps {f.value.text if isinstance(f.value, Scalar) else '?'}: a channel with "
                    f"zero variance gives 0/0 = NaN [{phases_text(phases)}]",
                    location_of(layer, f),
                    evidence=[field_evidence(layer, f)],
                    fix=Fix(f"Set eps: 1e-5 in '{layer.name}'.", (replace_edit(layer.path, f.value, "1e-5"),) if isinstance(f.value, Scalar) else ()),
                    culprit=layer.name,
                )  # fmt: skip


@register
class BatchNormLearnableStats(Rule):
    """
    ## What it detects
    A BatchNorm layer declaring `param` blocks with lr_mult != 0 (other than the exact
    three-block form Caffe upgrades to lr_mult 0 by itself).

    ## Why it leads to NaN
    BVLC BatchNorm's three blobs are running statistics, not weights: BVLC Caffe aborts with
    "Cannot configure batch normalization statistics as layer parameters."; builds that do
    accept it let the solver apply gradient steps and weight decay to the statistics,
    corrupting the variance (negative variance -> sqrt of a negative -> NaN). Forks with a
    learnable BatchNorm (scale/bias inside the layer) intend it: a layer that sets that fork's
    `batch_norm_param { scale_filler bias_filler }` is not reported unless `--caffe` names
    another Caffe.

    ## How to fix
    Use `param { lr_mult: 0 }` three times (or no param block) and put the learnable affine in
    a following Scale layer with `bias_term: true`.

    ## Example
    `layer { type: "BatchNorm" param { lr_mult: 1 } }` — set lr_mult: 0.
    """

    code = "NAN132"
    title = "BatchNorm statistics declared as learnable"
    cause = Cause.GRADIENT_EXPLOSION
    bears = Bearing.PREDICTION
    severity = Severity.WARNING
    needs = ("net",)

    def check(self, facts) -> Iterator[Finding]:
        flavor = chosen_flavor(facts.options)
        for net in nets_of(facts):
            for layer, phases in _layers_of_type(facts, net, ("BatchNorm",)):
                mults = lr_mults(layer)
                if len(mults) == 3 or not any(m != 0 for m in mults):
                    continue
                if flavor in (None, "cifar-bn") and _learnable_batch_norm(layer):
                    continue  # that fork's BatchNorm holds a learnable scale/bias: lr_mult is meant
                edits = []
                for p in layer.msg.messages("param"):
                    f = field_of(p, "lr_mult")
                    if f is not None and isinstance(f.value, Scalar) and f.value.value != 0:
                        edits.append(replace_edit(layer.path, f.value, "0"))
                yield self.finding(
                    f"BatchNorm '{layer.name}' declares {len(mults)} param block(s) with lr_mult {', '.join(f'{m:g}' for m in mults)}: "
                    "BVLC Caffe aborts (\"Cannot configure batch normalization statistics as layer parameters.\"), other builds "
                    f"would train the running statistics [{phases_text(phases)}]",
                    layer.location(),
                    evidence=[Evidence(f"{layer.name}: param lr_mult {m:g}", layer.location(), "prototxt") for m in mults],
                    fix=Fix(f"Set lr_mult: 0 in the param blocks of '{layer.name}' (learnable scale/bias belong in a Scale layer).", tuple(edits), safe=False),
                    culprit=layer.name,
                )  # fmt: skip


def _learnable_batch_norm(layer: Layer) -> bool:
    """The fork whose BatchNorm fills its own scale/bias blobs (``scale_filler``/``bias_filler``)."""
    bn = layer.param("batch_norm_param")
    return bn is not None and any(bn.last(name) is not None for name in ("scale_filler", "bias_filler"))


@register
class LRNZeroK(Rule):
    """
    ## What it detects
    An LRN layer with `k: 0`.

    ## Why it leads to NaN
    y = x * (k + alpha/n * sum x^2)^(-beta): with k = 0 an all-zero window (after ReLU, in
    padding) computes 0 * 0^(-beta) = 0 * inf = NaN.

    ## How to fix
    Use k = 1 (Caffe's default) or any positive k.

    ## Example
    `lrn_param { local_size: 5 alpha: 1e-4 beta: 0.75 k: 0 }`.
    """

    code = "NAN133"
    title = "LRN with k = 0"
    cause = Cause.LOSS_FUNCTION
    bears = Bearing.PREDICTION
    severity = Severity.WARNING
    needs = ("net",)

    def check(self, facts) -> Iterator[Finding]:
        for net in nets_of(facts):
            for layer, phases in _layers_of_type(facts, net, ("LRN",)):
                f = field_of(layer.param("lrn_param"), "k")
                if f is None or param_number(layer, "lrn_param", "k", 1.0) > 0:
                    continue
                yield self.finding(
                    f"LRN '{layer.name}' has k {f.value.text if isinstance(f.value, Scalar) else '?'}: an all-zero window gives "
                    f"0 * inf = NaN [{phases_text(phases)}]",
                    location_of(layer, f),
                    evidence=[field_evidence(layer, f)],
                    fix=Fix(f"Set k: 1 in '{layer.name}'.", (replace_edit(layer.path, f.value, "1"),) if isinstance(f.value, Scalar) else ()),
                    culprit=layer.name,
                )  # fmt: skip


@register
class EltwiseUnstableProdGrad(Rule):
    """
    ## What it detects
    An Eltwise PROD layer with `stable_prod_grad: false`.

    ## Why it leads to NaN
    The unstable gradient is computed as top / bottom_i: wherever an input is 0 (very common
    after ReLU) that is 0/0 = NaN.

    ## How to fix
    Remove `stable_prod_grad: false` (the default true multiplies the other inputs instead).

    ## Example
    `eltwise_param { operation: PROD stable_prod_grad: false }`.
    """

    code = "NAN134"
    title = "Eltwise PROD with the unstable gradient"
    cause = Cause.LOSS_FUNCTION
    bears = Bearing.PREDICTION
    severity = Severity.WARNING
    needs = ("net",)

    def check(self, facts) -> Iterator[Finding]:
        for net in nets_of(facts):
            for layer, phases in _layers_of_type(facts, net, ("Eltwise",)):
                if str(param_value(layer, "eltwise_param", "operation")) not in ("PROD", "0"):
                    continue
                f = field_of(layer.param("eltwise_param"), "stable_prod_grad")
                if f is None or not isinstance(f.value, Scalar) or _true(f.value.value):
                    continue
                yield self.finding(
                    f"Eltwise PROD '{layer.name}' has stable_prod_grad: false: its gradient divides by each input, "
                    f"0/0 = NaN wherever an input is 0 [{phases_text(phases)}]",
                    location_of(layer, f),
                    evidence=[field_evidence(layer, f)],
                    fix=Fix(f"Set stable_prod_grad: true in '{layer.name}'.", (replace_edit(layer.path, f.value, "true"),)),
                    culprit=layer.name,
                )  # fmt: skip


@register
class MVNTinyEps(Rule):
    """
    ## What it detects
    An MVN layer normalising variance with eps <= 1e-9 (the default). MVN adds eps to the
    standard deviation, not to the variance.

    ## Why it leads to NaN
    For (near-)constant inputs the output is noise divided by ~1e-9 and the gradient scales
    by 1/(std + eps), up to 1e9: an exploding gradient rather than a clean NaN.

    ## How to fix
    Use a larger eps (e.g. 1e-5 or 1e-3 on the std), or BatchNorm if batch statistics suit.

    ## Example
    `layer { type: "MVN" }` on a feature map that is constant for some samples.
    """

    code = "NAN135"
    title = "MVN eps is tiny (added to the standard deviation)"
    cause = Cause.GRADIENT_EXPLOSION
    bears = Bearing.PREDICTION
    severity = Severity.INFO
    needs = ("net",)

    def check(self, facts) -> Iterator[Finding]:
        for net in nets_of(facts):
            for layer, phases in _layers_of_type(facts, net, ("MVN",), training_only=True):
                if not _true(param_value(layer, "mvn_param", "normalize_variance")):
                    continue
                eps = param_number(layer, "mvn_param", "eps", 1e-9)
                if eps > 1e-9:
                    continue
                msg = layer.param("mvn_param")
                f = field_of(msg, "eps")
                if f is not None and isinstance(f.value, Scalar):
                    edits = (replace_edit(layer.path, f.value, "1e-5"),)
                elif msg is not None:
                    edit = insert_field_edit(layer_doc(net), msg, "eps: 1e-5")
                    edits = (edit,) if edit else ()
                else:
                    edit = (
                        insert_field_edit(layer_doc(net), layer.msg, "mvn_param { eps: 1e-5 }")
                        if layer.version == "v2"
                        else None
                    )
                    edits = (edit,) if edit else ()
                yield self.finding(
                    f"MVN '{layer.name}' divides by std + {eps:g}: near-constant inputs get gradients up to {1 / max(eps, 1e-30):.0e}x "
                    f"[{phases_text(phases)}]",
                    location_of(layer, f),
                    evidence=[field_evidence(layer, f)] if f is not None else [Evidence(f"{layer.name}: MVN with default eps 1e-9", layer.location(), "prototxt")],
                    fix=Fix(f"Use eps: 1e-5 in '{layer.name}'.", edits, safe=False),
                    culprit=layer.name,
                )  # fmt: skip


def layer_doc(net: Net):
    return net.doc


_LEARNABLE = ("Convolution", "InnerProduct", "Deconvolution")
_PARAM_OF = {
    "Convolution": "convolution_param",
    "Deconvolution": "convolution_param",
    "InnerProduct": "inner_product_param",
}
DEEP = 5


def _training_learnables(facts, net: Net) -> Iterator[tuple[Layer, list[str], Variant]]:
    found: dict[int, tuple[Layer, list[str], Variant]] = {}
    for variant in variants(facts, net):
        if not variant.is_training:
            continue
        for layer in variant.of_type(*_LEARNABLE):
            found.setdefault(layer.index, (layer, [], variant))[1].append(variant.label)
    yield from found.values()


@register
class MissingWeightFiller(Rule):
    """
    ## What it detects
    A Convolution, Deconvolution or InnerProduct layer in a training net without `weight_filler`.

    ## Why it leads to NaN
    FillerParameter defaults to type "constant" with value 0: the weights start at exactly 0,
    every unit computes the same thing and the loss sits near ln(#classes). Not a NaN by
    itself, but it is often "fixed" by raising the learning rate, which then explodes. Layers
    whose weights are copied from a pretrained model are not affected.

    ## How to fix
    Give `weight_filler { type: "xavier" }` (or "msra" before ReLU).

    ## Example
    `inner_product_param { num_output: 10 }` with no filler: all-zero weights.
    """

    code = "NAN140"
    title = "Weights start at zero (no weight_filler)"
    cause = Cause.UNKNOWN
    bears = Bearing.PREDICTION
    severity = Severity.INFO
    needs = ("net",)

    def check(self, facts) -> Iterator[Finding]:
        for net in nets_of(facts):
            for layer, phases, _ in _training_learnables(facts, net):
                param = layer.param(_PARAM_OF[layer.type])
                if param is not None and param.has("weight_filler"):
                    continue
                target = layer.edit_target(_PARAM_OF[layer.type])
                edit = (
                    insert_field_edit(net.doc, target, 'weight_filler { type: "xavier" }')
                    if target is not None
                    else None
                )
                yield self.finding(
                    f"{layer.type} '{layer.name}' has no weight_filler: its weights start at constant 0 [{phases_text(phases)}]",
                    layer.location(),
                    evidence=[Evidence(f"{layer.name}: {_PARAM_OF[layer.type]} without weight_filler", layer.location(), "prototxt")],
                    fix=Fix(f"Add weight_filler {{ type: \"xavier\" }} to '{layer.name}' (unless it is loaded from a pretrained model).",
                            (edit,) if edit else (), safe=False),
                    culprit=layer.name,
                )  # fmt: skip


@register
class UnitGaussianFiller(Rule):
    """
    ## What it detects
    A gaussian weight_filler with std 1 (given, or left at its default of 1) in a net with
    five or more Convolution/InnerProduct layers.

    ## Why it leads to NaN
    With std 1 each layer multiplies the activation scale by about sqrt(fan_in) (e.g. 48x for
    a 3x3x256 convolution): after a few layers the activations and the loss overflow to inf.

    ## How to fix
    Use a fan-in-aware filler (`xavier`, or `msra` before ReLU) or a small std such as 0.01.

    ## Example
    `weight_filler { type: "gaussian" }` in every layer of a 10-layer net.
    """

    code = "NAN141"
    title = "Gaussian weight filler with std 1 in a deep net"
    cause = Cause.GRADIENT_EXPLOSION
    bears = Bearing.PREDICTION
    severity = Severity.WARNING
    needs = ("net",)

    def check(self, facts) -> Iterator[Finding]:
        for net in nets_of(facts):
            learnables = list(_training_learnables(facts, net))
            if len(learnables) < DEEP:
                continue
            for layer, phases, _ in learnables:
                param = layer.param(_PARAM_OF[layer.type])
                filler = param.get("weight_filler") if param is not None else None
                if not isinstance(filler, Message) or str(filler.get("type", "constant")) != "gaussian":
                    continue
                if filler.has("sparse"):
                    continue  # sparse init keeps only ~sparse inputs per unit, so fan_in is small by design
                std_field = field_of(filler, "std")
                std = std_field.value.value if std_field is not None and isinstance(std_field.value, Scalar) else 1.0
                if not isinstance(std, (int, float)) or std < 1:
                    continue
                if std_field is not None and isinstance(std_field.value, Scalar):
                    edit = replace_edit(layer.path, std_field.value, "0.01")
                else:
                    edit = insert_field_edit(net.doc, filler, "std: 0.01")
                yield self.finding(
                    f"{layer.type} '{layer.name}' draws its weights from N(0, {std:g}) in a net with {len(learnables)} "
                    f"learnable layers: activations grow by ~sqrt(fan_in) per layer and overflow [{phases_text(phases)}]",
                    location_of(layer, std_field),
                    evidence=[field_evidence(layer, std_field)] if std_field is not None else [Evidence(f"{layer.name}: gaussian filler without std (default 1)", layer.location(), "prototxt")],
                    fix=Fix(f"Use std: 0.01 (or type \"xavier\"/\"msra\") in the weight_filler of '{layer.name}'.", (edit,) if edit else (), safe=False),
                    culprit=layer.name,
                )  # fmt: skip
