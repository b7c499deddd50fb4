"""The net model: layers in file order with V2 type names, phase filtering and loss weights.

A net file may be V2 (``layer { type: "Convolution" }``), V1 (``layers { type: CONVOLUTION }``)
or V0 (``layers { layer { type: "conv" } bottom: .. }``). Caffe upgrades V0/V1 before
building; here every layer keeps the message written in the file (so locations and edits
point at the user's text) and gets the V2 type name Caffe's upgrade would give it.
``Layer.param("pooling_param")`` works for all three versions (V0's flat fields are
presented as the V2 message they become).

Phase filtering follows Caffe's ``Net::StateMeetsRule`` (net.cpp): a layer with
``include`` rules is kept if any rule matches, one with ``exclude`` rules is dropped if any
matches; a rule matches only if every field it sets matches the net state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from nandoctor.config import upgrade
from nandoctor.config.layers import ANY_LOSS_TYPES
from nandoctor.config.textformat import Document, Field, Message, number
from nandoctor.core.types import Location

PHASES = ("TRAIN", "TEST")
_PHASE_NUMBERS = {0: "TRAIN", 1: "TEST"}


@dataclass(slots=True)
class StateRule:
    """One NetStateRule (``include { ... }`` / ``exclude { ... }``)."""

    phase: str | None = None
    min_level: int | None = None
    max_level: int | None = None
    stages: tuple[str, ...] = ()
    not_stages: tuple[str, ...] = ()

    @classmethod
    def from_message(cls, msg: Message) -> StateRule:
        phase = msg.get("phase")
        if isinstance(phase, int):
            phase = _PHASE_NUMBERS.get(phase, str(phase))
        min_level, max_level = msg.get("min_level"), msg.get("max_level")
        return cls(
            phase=str(phase) if phase is not None else None,
            min_level=_as_int(min_level),
            max_level=_as_int(max_level),
            stages=tuple(str(s) for s in msg.get_all("stage")),
            not_stages=tuple(str(s) for s in msg.get_all("not_stage")),
        )

    def matches(self, phase: str, stages: tuple[str, ...], level: int) -> bool:
        if self.phase is not None and self.phase != phase:
            return False
        if self.min_level is not None and level < self.min_level:
            return False
        if self.max_level is not None and level > self.max_level:
            return False
        if any(s not in stages for s in self.stages):
            return False
        return not any(s in stages for s in self.not_stages)


@dataclass(eq=False)
class Layer:
    name: str
    type: str  # V2 type name, also for V1/V0 files
    bottoms: list[str]
    tops: list[str]
    msg: Message  # the layer's own message as in the file (V0: the outer ``layers`` message)
    field: Field  # the ``layer {`` / ``layers {`` field, for locations
    index: int  # position in file order
    loss_weights: list[float]  # one per top, Caffe's defaults applied
    path: str = ""
    include: list[StateRule] = field(default_factory=list)
    exclude: list[StateRule] = field(default_factory=list)
    version: str = "v2"
    _params: dict[str, Message] = field(default_factory=dict, repr=False)

    def param(self, name: str) -> Message | None:
        """The ``*_param`` message (last one wins, as in protobuf); V0 flat fields presented as V2."""
        if name in self._params:
            return self._params[name]
        value = self.msg.get(name)
        return value if isinstance(value, Message) else None

    def edit_target(self, name: str) -> Message | None:
        """Where a new field of the ``*_param`` ``name`` is written: the param message itself, or for
        V0 layers (flat fields) the inner ``layer { }`` message of this layer's own text."""
        if self.version == "v0":
            inner = self.msg.get("layer")
            return inner if isinstance(inner, Message) else None
        return self.param(name)

    def location(self) -> Location:
        return Location(self.path, self.field.name_pos.line, self.field.name_pos.col)

    def field_location(self, f: Field) -> Location:
        return Location(self.path, f.name_pos.line, f.name_pos.col)

    def included(self, phase: str = "TRAIN", stages: tuple[str, ...] = (), level: int = 0) -> bool:
        if self.include:
            return any(r.matches(phase, stages, level) for r in self.include)
        return not any(r.matches(phase, stages, level) for r in self.exclude)

    @property
    def in_place(self) -> list[str]:
        """Blobs this layer computes in place (top i named like bottom i)."""
        return [t for i, t in enumerate(self.tops) if i < len(self.bottoms) and self.bottoms[i] == t]

    @property
    def is_loss(self) -> bool:
        return any(w != 0 for w in self.loss_weights)


@dataclass(frozen=True, slots=True)
class NetProblem:
    """Something in the net's structure that makes Caffe abort while reading or building it."""

    message: str  # Caffe's own words (its CHECK text) where it has them
    layer: Layer | None = None  # the layer it aborts on (None: the net as a whole)
    kind: str = "structure"  # mixed_formats | v0_padding | loss_weight_count

    def __str__(self) -> str:
        return self.message


@dataclass(eq=False)
class Net:
    doc: Document
    name: str
    version: Literal["v0", "v1", "v2"]
    layers: list[Layer]  # all, file order
    root: Message | None = None  # the NetParameter message (the document root unless embedded)
    problems: list[NetProblem] = field(default_factory=list)  # things Caffe would refuse, found while modelling

    def phase_layers(self, phase: str = "TRAIN", stages: tuple[str, ...] = (), level: int = 0) -> list[Layer]:
        return [layer for layer in self.layers if layer.included(phase, tuple(stages), level)]

    def stage_names(self) -> list[str]:
        """Every stage named in an include/exclude rule, in first-seen order."""
        seen: dict[str, None] = {}
        for layer in self.layers:
            for rule in (*layer.include, *layer.exclude):
                for s in (*rule.stages, *rule.not_stages):
                    seen.setdefault(s, None)
        return list(seen)

    def variants(self) -> list[tuple[str, list[Layer]]]:
        """The distinct nets this file can build: TRAIN and TEST, plus one per stage named in it.

        Labels look like ``TRAIN`` or ``TEST stage=val``; variants with the same layers are
        listed once (under the first label), so a net without rules gives just ``TRAIN``.
        """
        out: list[tuple[str, list[Layer]]] = []
        seen: set[tuple[int, ...]] = set()
        for phase in PHASES:
            for stages in [(), *((s,) for s in self.stage_names())]:
                layers = self.phase_layers(phase, stages)
                key = tuple(layer.index for layer in layers)
                if key in seen:
                    continue
                seen.add(key)
                label = phase + (f" stage={stages[0]}" if stages else "")
                out.append((label, layers))
        return out

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of the net's inputs: legacy ``input``/``input_dim``/``input_shape`` and Input layers."""
        root = self.root if self.root is not None else self.doc.root
        shapes: dict[str, tuple[int, ...]] = {}
        names = [str(n) for n in root.get_all("input")]
        dims = [d for d in (_as_int(v) for v in root.get_all("input_dim")) if d is not None]
        shape_msgs = root.messages("input_shape")
        for i, blob in enumerate(names):
            if i < len(shape_msgs):
                shapes[blob] = _dims(shape_msgs[i])
            elif len(dims) >= 4 * (i + 1):
                shapes[blob] = tuple(dims[4 * i : 4 * i + 4])
        for layer in self.layers:
            if layer.type != "Input":
                continue
            p = layer.param("input_param")
            layer_shapes = [_dims(m) for m in p.messages("shape")] if p is not None else []
            for i, top in enumerate(layer.tops):
                if len(layer_shapes) == 1:
                    shapes[top] = layer_shapes[0]
                elif i < len(layer_shapes):
                    shapes[top] = layer_shapes[i]
        return shapes


def _as_int(value) -> int | None:
    """An integer field value; None for non-numbers and non-finite floats (never raises)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    return None


def _dims(shape: Message) -> tuple[int, ...]:
    return tuple(d for d in (_as_int(v) for v in shape.get_all("dim")) if d is not None)


def load_net(doc: Document) -> Net:
    """The net described by a whole file."""
    return load_net_message(doc.root, doc)


def load_net_message(msg: Message, doc: Document) -> Net:
    """The net described by a NetParameter message (a file's root, or ``net_param`` in a solver)."""
    v2 = [f for f in msg.fields if f.name == "layer" and isinstance(f.value, Message)]
    old = [f for f in msg.fields if f.name == "layers" and isinstance(f.value, Message)]
    problems: list[NetProblem] = []
    if v2 and old:
        problems.append(
            NetProblem(
                "Refusing to upgrade inconsistent NetParameter input; "
                "the definition includes both 'layer' and 'layers' fields.",
                kind="mixed_formats",
            )
        )
    version: Literal["v0", "v1", "v2"] = "v2"
    if old and not v2:
        version = "v0" if any(_is_v0(f) for f in old) else "v1"
    layers: list[Layer] = []
    for f in msg.fields:
        if not isinstance(f.value, Message) or f.name not in ("layer", "layers"):
            continue
        if f.name == "layer":
            layers.append(_v2_layer(f, len(layers), doc.path))
        elif _is_v0(f):
            layers.append(_v0_layer(f, len(layers), doc.path))
        else:
            layers.append(_v1_layer(f, len(layers), doc.path))
    if version == "v0":
        layers = _fold_v0_padding(layers, problems)
    problems.extend(_loss_weight_problems(layers))
    name = msg.get("name")
    return Net(doc, str(name) if name is not None else "", version, layers, root=msg, problems=problems)


def _is_v0(f: Field) -> bool:
    """A V0 ``layers { layer { ... } }`` entry (V1 entries have no ``layer`` message inside)."""
    return isinstance(f.value, Message) and isinstance(f.value.get("layer"), Message)


def _strings(msg: Message, name: str) -> list[str]:
    return [str(v) for v in msg.get_all(name)]


def _loss_weights(msg: Message, layer_type: str, n_tops: int) -> list[float]:
    given = [number(v) for v in msg.get_all("loss_weight")]
    if given:
        weights = [w if w is not None else 0.0 for w in given]
        return (weights + [0.0] * n_tops)[:n_tops] if n_tops else weights
    if layer_type in ANY_LOSS_TYPES:
        # a loss layer without top gets an anonymous one from Caffe (AutoTopBlobs), weight 1 all the same
        return [1.0] + [0.0] * (n_tops - 1)
    return [0.0] * n_tops


def _loss_weight_problems(layers: list[Layer]) -> list[NetProblem]:
    """Caffe's Layer::SetLossWeights check: loss_weight unspecified or once per top.

    LossLayer types get an implicit single weight, so a two-top SoftmaxWithLoss without
    loss_weight fails the same check.
    """
    out = []
    for layer in layers:
        given = len(layer.msg.all("loss_weight")) if layer.version != "v0" else 0
        is_loss_type = layer.type in ANY_LOSS_TYPES
        count = 1 if given == 0 and is_loss_type else given
        n_tops = max(len(layer.tops), 1) if is_loss_type else len(layer.tops)  # AutoTopBlobs adds one
        if count and count != n_tops:
            out.append(
                NetProblem(
                    f"Check failed: top.size() == num_loss_weights ({n_tops} vs. {count}) "
                    "loss_weight must be unspecified or specified once per top blob.",
                    layer,
                    "loss_weight_count",
                )
            )
    return out


def _rules(msg: Message) -> tuple[list[StateRule], list[StateRule]]:
    return (
        [StateRule.from_message(m) for m in msg.messages("include")],
        [StateRule.from_message(m) for m in msg.messages("exclude")],
    )


def _v2_layer(f: Field, index: int, path: str) -> Layer:
    msg = f.value
    assert isinstance(msg, Message)
    layer_type = str(msg.get("type", ""))
    tops = _strings(msg, "top")
    inc, exc = _rules(msg)
    return Layer(
        name=str(msg.get("name", "")), type=layer_type, bottoms=_strings(msg, "bottom"), tops=tops, msg=msg,
        field=f, index=index, loss_weights=_loss_weights(msg, layer_type, len(tops)), path=path,
        include=inc, exclude=exc, version="v2",
    )  # fmt: skip


def _v1_layer(f: Field, index: int, path: str) -> Layer:
    msg = f.value
    assert isinstance(msg, Message)
    layer_type = upgrade.v1_type_name(msg.get("type", ""))
    tops = _strings(msg, "top")
    inc, exc = _rules(msg)
    return Layer(
        name=str(msg.get("name", "")), type=layer_type, bottoms=_strings(msg, "bottom"), tops=tops, msg=msg,
        field=f, index=index, loss_weights=_loss_weights(msg, layer_type, len(tops)), path=path,
        include=inc, exclude=exc, version="v1",
    )  # fmt: skip


def _v0_layer(f: Field, index: int, path: str) -> Layer:
    msg = f.value
    assert isinstance(msg, Message)
    inner = msg.get("layer")
    assert isinstance(inner, Message)
    raw_type = str(inner.get("type", ""))
    layer_type = "padding" if raw_type == "padding" else upgrade.v0_type_name(raw_type)
    tops = _strings(msg, "top")
    return Layer(
        name=str(inner.get("name", "")), type=layer_type, bottoms=_strings(msg, "bottom"), tops=tops, msg=msg,
        field=f, index=index, loss_weights=_loss_weights(Message(), layer_type, len(tops)), path=path,
        version="v0", _params=upgrade.v0_params(layer_type, inner),
    )  # fmt: skip


def _fold_v0_padding(layers: list[Layer], problems: list[NetProblem]) -> list[Layer]:
    """Caffe's UpgradeV0PaddingLayers: a padding layer's pad moves into the conv/pool reading it."""
    producers: dict[str, Layer] = {}
    kept: list[Layer] = []
    for layer in layers:
        for i, bottom in enumerate(layer.bottoms):
            pad_layer = producers.get(bottom)
            if pad_layer is None:
                continue
            param_name = {"Convolution": "convolution_param", "Pooling": "pooling_param"}.get(layer.type)
            if param_name is None:
                inner = layer.msg.get("layer")
                v0_type = inner.get("type", "") if isinstance(inner, Message) else ""
                problems.append(  # upgrade_proto.cpp's CHECK, with the V0 type string as written
                    NetProblem(
                        'Check failed: (layer_param.type() == "conv") || (layer_param.type() == "pool") '
                        f"Padding layer input to non-convolutional / non-pooling layer type {v0_type}",
                        layer,
                        "v0_padding",
                    )
                )
                continue
            layer.bottoms[i] = pad_layer.bottoms[0] if pad_layer.bottoms else bottom
            inner = pad_layer.msg.get("layer")
            pad_field = inner.last("pad") if isinstance(inner, Message) else None
            if pad_field is not None:
                target = layer._params.setdefault(param_name, Message())
                upgrade.add_field(target, "pad", pad_field)
        if layer.type == "padding":
            for top in layer.tops:
                producers[top] = layer
            continue
        for top in layer.tops:
            producers.pop(top, None)
        kept.append(layer)
    for i, layer in enumerate(kept):
        layer.index = i
    return kept


def lr_mults(layer: Layer) -> list[float]:
    """The lr_mult of each declared parameter blob (V2 ``param { lr_mult }``, V1/V0 ``blobs_lr``)."""
    if layer.version == "v2":
        out = []
        for p in layer.msg.messages("param"):
            value = number(p.get("lr_mult", 1.0))
            out.append(1.0 if value is None else value)
        return out
    source = layer.msg if layer.version == "v1" else layer.msg.get("layer")
    if not isinstance(source, Message):
        return []
    return [v if v is not None else 1.0 for v in (number(x) for x in source.get_all("blobs_lr"))]
