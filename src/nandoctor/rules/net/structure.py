"""NAN100: nets Caffe refuses to build, with Caffe's own abort message.

Three sources, all found without running anything:
- the net model (``Net.problems``): loss_weight count vs tops (Layer::SetLossWeights), a V0
  padding layer feeding something other than a convolution or pooling (the V0 upgrade);
- blob wiring per phase, as Net::Init and InsertSplits check it: a bottom nobody produced
  earlier ("Unknown bottom blob"), a top name reused other than in place ("produced by
  multiple sources");
- shape inference (``ShapeResult.problems``): negative output sizes, mismatched Concat/Eltwise
  inputs, group/channel checks. Pooling geometry has its own rule (NAN103).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from nandoctor.config.edits import insert_field_edit
from nandoctor.config.net import Layer, Net, NetProblem
from nandoctor.config.shapes import format_shape
from nandoctor.core.registry import Rule, register
from nandoctor.core.types import Bearing, Cause, Evidence, Finding, Fix, Severity
from nandoctor.rules.net.common import Variant, field_evidence, location_of, nets_of, variants

SHAPE_KINDS = ("negative", "mismatch", "check")  # "pooling" is NAN103's; "missing_bottom" is handled below


@dataclass
class Abort:
    """One reason Caffe stops, with the phases it stops in (empty: whenever the file is read)."""

    message: str
    layer: Layer | None
    kind: str
    phases: list[str] = field(default_factory=list)
    inputs: str = ""  # the layer's bottoms and their shapes where Caffe stops, e.g. "data 2x3x8x8, conv 2x4x6x6"
    earlier: Layer | None = None  # for a top produced twice: the layer that produced it first


def net_aborts(facts, net: Net) -> list[Abort]:
    """Every distinct abort of this net, in file order of the layer it concerns."""
    found: dict[tuple, Abort] = {}
    built = variants(facts, net)

    def add(message: str, layer: Layer | None, kind: str, phase: str | None, variant: Variant | None = None) -> None:
        key = (message, layer.index if layer is not None else -1)
        abort = found.setdefault(key, Abort(message, layer, kind))
        if phase is not None and phase not in abort.phases:
            abort.phases.append(phase)
        if not abort.inputs and layer is not None and variant is not None and layer.bottoms:
            shapes = variant.shapes.bottom_shapes(layer)
            abort.inputs = ", ".join(f"{b} {format_shape(s)}" for b, s in zip(layer.bottoms, shapes, strict=False))

    for problem in net.problems:
        _add_model_problem(problem, built, add)
    if any(not a.phases for a in found.values()):
        return list(found.values())  # Caffe stops while reading the file: nothing after it is built
    for variant in built:
        for layer, message, kind, earlier in _wiring(variant, net):
            add(message, layer, kind, variant.label)
            found[(message, layer.index)].earlier = earlier
        by_name = {layer.name: layer for layer in variant.layers}
        for sp in variant.shapes.problems:
            if sp.kind in SHAPE_KINDS:
                add(sp.message, by_name.get(sp.layer), sp.kind, variant.label, variant)
    return sorted(found.values(), key=lambda a: a.layer.index if a.layer is not None else -1)


def _add_model_problem(problem: NetProblem, built: list[Variant], add) -> None:
    if problem.layer is None or problem.kind == "v0_padding":  # raised while reading the file
        add(problem.message, problem.layer, problem.kind, None)
        return
    for variant in built:  # raised while building a net that contains the layer
        if problem.layer in variant.layers:
            add(problem.message, problem.layer, problem.kind, variant.label)


def _wiring(variant: Variant, net: Net) -> Iterator[tuple[Layer, str, str, Layer | None]]:
    """Bottoms without a producer (InsertSplits, which runs first) and tops produced twice (Net::Init).

    ``variants`` keeps a variant with unknown bottoms only when no variant of the file builds: the
    file cannot be used at all then, while a TEST phase of a train-only file is not reported.
    """
    root = net.root if net.root is not None else net.doc.root
    # legacy net inputs (None: no layer); Input layers produce their own tops
    produced: dict[str, Layer | None] = {str(n): None for n in root.get_all("input")}
    missing, duplicated = [], []
    for layer in variant.layers:
        for j, bottom in enumerate(layer.bottoms):
            if bottom not in produced:
                missing.append((layer, f"Unknown bottom blob '{bottom}' (layer '{layer.name}', bottom index {j})"))
        for i, top in enumerate(layer.tops):
            in_place = i < len(layer.bottoms) and layer.bottoms[i] == top
            if top in produced and not in_place:
                duplicated.append((layer, f"Top blob '{top}' produced by multiple sources.", produced[top]))
            produced[top] = layer
    yield from ((layer, message, "missing_bottom", None) for layer, message in missing)
    yield from ((layer, message, "multiple_sources", first) for layer, message, first in duplicated)


@register
class NetRejectedByCaffe(Rule):
    """
    ## What it detects
    A net Caffe cannot build, found before running it: `loss_weight` given a number of times
    other than once per top (also a two-top loss layer without `loss_weight`, since a loss
    layer gets one implicit weight), a bottom that no earlier layer of the phase produces, a
    top name reused other than in place, a V0 padding layer feeding anything but a
    convolution or pooling, and shape checks Caffe makes while setting layers up (negative
    convolution output, Concat/Eltwise inputs of different shapes, channels not divisible by
    `group`). Files Caffe's parser already rejects are left to the NAN0xx rules.

    ## Why it leads to NaN
    It does not reach NaN: Caffe aborts with a CHECK failure (or FATAL) while setting the net
    up, often minutes into a job when only the TEST net is affected. The message quoted is
    Caffe's own, so it can be matched against a crashed log.

    ## How to fix
    Follow the message: one `loss_weight` per top (e.g. `loss_weight: 1 loss_weight: 0` for a
    SoftmaxWithLoss that also outputs its probabilities), add the missing producer to the
    phase or fix the blob name, give a reused top a new name (or make it in place by naming
    it like the bottom at the same position), make shapes agree.

    ## Example
    `layer { type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" top: "prob" }`
    aborts with `Check failed: top.size() == num_loss_weights (2 vs. 1) loss_weight must be
    unspecified or specified once per top blob.`
    """

    code = "NAN100"
    title = "Caffe refuses to build this net"
    cause = Cause.UNKNOWN
    bears = Bearing.PREDICTION
    severity = Severity.ERROR
    needs = ("net",)

    def check(self, facts) -> Iterator[Finding]:
        for net in nets_of(facts):
            for abort in net_aborts(facts, net):
                yield self._finding(net, abort)

    def _finding(self, net: Net, abort: Abort) -> Finding:
        layer = abort.layer
        where = f" [{', '.join(abort.phases)}]" if abort.phases else ""
        subject = f"{layer.type} '{layer.name}'" if layer is not None else f"net '{net.name}'"
        message = f"Caffe aborts building {subject}: {abort.message}{where}"
        evidence = [Evidence(f"{layer.name} reads {abort.inputs}")] if layer is not None and abort.inputs else []
        if abort.earlier is not None:
            first = abort.earlier
            evidence.append(Evidence(f"{first.type} '{first.name}' produces it first", first.location(), "prototxt"))
        elif abort.kind == "multiple_sources":
            evidence.append(Evidence("the net's `input` field produces it first", None, "prototxt"))
        weights = layer.msg.all("loss_weight") if layer is not None and abort.kind == "loss_weight_count" else []
        evidence += [field_evidence(layer, f) for f in weights]
        location = location_of(layer, weights[0] if weights else None) if layer is not None else None
        if location is None and net.layers:
            location = net.layers[0].location()
        return self.finding(
            message,
            location,
            evidence=evidence,
            fix=_fix(net, abort),
            culprit=layer.name if layer is not None else None,
            data={"caffe_message": abort.message, "kind": abort.kind, "phases": list(abort.phases)},
        )


def _fix(net: Net, abort: Abort) -> Fix:
    layer = abort.layer
    name = layer.name if layer is not None else ""
    if abort.kind == "loss_weight_count" and layer is not None:
        n_tops = max(len(layer.tops), 1)
        given = len(layer.msg.all("loss_weight"))
        if given < n_tops:
            weights = ["1"] if given == 0 else []
            weights += ["0"] * (n_tops - given - len(weights))
            text = " ".join(f"loss_weight: {w}" for w in weights)
            edit = insert_field_edit(net.doc, layer.msg, text)
            return Fix(
                f"Give '{name}' one loss_weight per top ({n_tops} tops): add `{text}`.",
                (edit,) if edit is not None else (),
            )
        return Fix(f"Give '{name}' exactly one loss_weight per top ({_tops(n_tops)}), or none.")
    if abort.kind == "missing_bottom":
        return Fix(f"Add the layer that produces the blob to this phase, or correct the bottom name of '{name}'.")
    if abort.kind == "multiple_sources":
        return Fix(
            f"Give the top of '{name}' a new name (and update the layers reading it), or compute in place by "
            "naming the top like the bottom at the same position."
        )
    if abort.kind == "mixed_formats":
        return Fix("Convert the V1 `layers` blocks to V2 `layer` blocks.")
    if abort.kind == "v0_padding":
        return Fix(f"Remove the padding layer before '{name}' and give the padding to the layer it is meant for.")
    return Fix(_shape_fix(name, abort))


def _tops(n: int) -> str:
    return "1 top" if n == 1 else f"{n} tops"


def _shape_fix(name: str, abort: Abort) -> str:
    """What to change for a setup CHECK of shape inference, in words a user acts on."""
    m = abort.message
    if "num_output_ > 0" in m:
        return f"Give '{name}' a positive num_output (convolution_param {{ num_output: N }})."
    if "channels_ % group_" in m:
        return f"Use a group that divides the input channels of '{name}' ({abort.inputs}), or group: 1."
    if "num_output_ % group_" in m:
        return f"Make num_output of '{name}' a multiple of its group."
    if abort.kind == "negative":
        return (
            f"The (dilated) kernel of '{name}' is larger than its padded input ({abort.inputs}): "
            "use a smaller kernel or dilation, more pad, or a larger input."
        )
    if abort.kind == "mismatch":
        return (
            f"Make the inputs of '{name}' ({abort.inputs}) agree (Concat: in every axis but the concat axis), "
            "e.g. with a Crop layer or matching strides and pads upstream."
        )
    return f"Change '{name}' or its inputs ({abort.inputs or 'none'}) so that Caffe's check holds."
