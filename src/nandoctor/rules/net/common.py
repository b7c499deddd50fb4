"""What every net rule needs: the phase variants of a net with their shapes, and edit helpers.

A net file can build several nets (TRAIN, TEST, per stage); rules look at all of them
and report a problem once, naming the phases it occurs in. Shapes use, in this order of
precedence: ``--input-shape`` (``facts.options["input_shapes"]``), the ``Top shape:``
lines of a log for the net's source layers (``facts.options["top_shapes"]`` as
``{layer: [shape, ...]}``, or ``facts.trace``), then what the file itself says.
The analysis is cached per net and override set, so a dozen rules share one pass.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

from nandoctor.config.edits import apply_edits
from nandoctor.config.net import Layer, Net
from nandoctor.config.shapes import ShapeResult, infer_shapes, overrides_from_top_shapes
from nandoctor.config.textformat import Document, Field, Message, Scalar, parse_text
from nandoctor.core.types import Edit, Evidence, Location

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass
class Variant:
    label: str  # "TRAIN", "TEST", "TEST stage=val"
    layers: list[Layer]
    shapes: ShapeResult
    # (layer.index, bottom position) -> the layer that last wrote that blob before this layer ran
    sources: dict[tuple[int, int], Layer] = field(default_factory=dict)
    consumers: dict[int, list[Layer]] = field(default_factory=dict)  # layer.index -> layers reading its tops

    @property
    def phase(self) -> str:
        return self.label.split()[0]

    def source(self, layer: Layer, i: int = 0) -> Layer | None:
        return self.sources.get((layer.index, i))

    _by_type: dict[str, list[Layer]] | None = field(default=None, repr=False)
    _training: bool | None = field(default=None, repr=False)

    @property
    def is_training(self) -> bool:
        """A TRAIN variant that has a loss (deploy files build a TRAIN net too, without one)."""
        if self._training is None:
            self._training = self.phase == "TRAIN" and any(layer.is_loss for layer in self.layers)
        return self._training

    def of_type(self, *types: str) -> list[Layer]:
        """Layers of the given types in file order (indexed once per variant)."""
        if self._by_type is None:
            self._by_type = {}
            for layer in self.layers:
                self._by_type.setdefault(layer.type, []).append(layer)
        if len(types) == 1:
            return self._by_type.get(types[0], [])
        return sorted((x for t in types for x in self._by_type.get(t, [])), key=lambda x: x.index)


def nets_of(facts) -> list[Net]:
    """The nets the net rules judge: only those whose file Caffe's parser accepts (see ``parsed_by_caffe``)."""
    net = facts.net
    if net is None:
        return []
    nets = [n for n in net if isinstance(n, Net)] if isinstance(net, (list, tuple)) else [net]
    return [n for n in nets if isinstance(n, Net) and parsed_by_caffe(n)]


def parsed_by_caffe(net: Net) -> bool:
    """False when the file holding the net has a schema error (a NAN0xx error: Caffe refuses to read it).

    Caffe never builds such a net, and our model of it is a guess (a misspelt ``kernel: 3`` is no
    kernel at all), so net rules stay quiet rather than pile findings about a net that does not
    exist onto the one finding that matters. Fork extensions (NAN003, info) do not count: the
    fork the user runs reads them, and its nets deserve the checks.
    """
    from nandoctor.config.load import root_type
    from nandoctor.config.validate import validate_cached
    from nandoctor.core.types import Severity

    return not any(f.severity is Severity.ERROR for f in validate_cached(net.doc, root_type(net.doc)))


def shape_overrides(facts, net: Net) -> dict[str, tuple]:
    opts = facts.options or {}
    out: dict[str, tuple] = {}
    by_layer: dict[str, list[tuple[int, ...]]] = dict(opts.get("top_shapes") or {})
    if not by_layer and getattr(facts, "trace", None) is not None:
        by_layer = _trace_top_shapes(facts.trace)
    if by_layer:
        sources = [layer for layer in net.layers if not layer.bottoms]
        out.update(overrides_from_top_shapes(sources, by_layer))
    for blob, shape in (opts.get("input_shapes") or {}).items():
        out[blob] = tuple(shape)
    return out


def _trace_top_shapes(trace: Any) -> dict[str, list[tuple[int, ...]]]:
    """``{layer: [shape, ...]}`` from the first net a parsed log set up (duck-typed, never raises)."""
    out: dict[str, list[tuple[int, ...]]] = {}
    try:
        for segment in trace.segments:
            for setup in segment.layers:
                if setup.net_index == 0 and setup.name not in out:
                    out[setup.name] = [
                        tuple(s[0]) if isinstance(s[0], (tuple, list)) else tuple(s) for s in setup.top_shapes
                    ]
    except (AttributeError, TypeError, IndexError):
        return {}
    return out


def variants(facts, net: Net) -> list[Variant]:
    overrides = shape_overrides(facts, net)
    key = tuple(sorted(overrides.items()))
    per_net = _CACHE.setdefault(net, {})
    if key not in per_net:
        per_net[key] = build_variants(net, overrides)
    return per_net[key]


def build_variants(net: Net, overrides: dict[str, tuple] | None = None) -> list[Variant]:
    inputs = net.input_shapes()
    out = []
    for label, layers in net.variants():
        shapes = infer_shapes(layers, inputs, overrides)
        variant = Variant(label, layers, shapes)
        writer: dict[str, Layer] = {}
        for layer in layers:
            for i, bottom in enumerate(layer.bottoms):
                src = writer.get(bottom)
                if src is not None:
                    variant.sources[(layer.index, i)] = src
                    variant.consumers.setdefault(src.index, []).append(layer)
            for top in layer.tops:
                writer[top] = layer
        out.append(variant)
    # A variant with inputs nobody produces cannot be built by Caffe ("Unknown bottom blob"); it is
    # usually a TEST phase of a train-only file. Keep such variants only when nothing else builds.
    buildable = [v for v in out if not any(p.kind == "missing_bottom" for p in v.shapes.problems)]
    return buildable or out


def phases_text(labels: list[str]) -> str:
    return ", ".join(dict.fromkeys(labels))


# --- locations, evidence and edits ---------------------------------------------------------


def field_of(msg: Message | None, name: str) -> Field | None:
    return msg.last(name) if msg is not None else None


def location_of(layer: Layer, f: Field | None) -> Location:
    return layer.field_location(f) if f is not None else layer.location()


def field_evidence(layer: Layer, f: Field) -> Evidence:
    value = f.value.text if isinstance(f.value, Scalar) else "{...}"
    return Evidence(f"{layer.name}: {f.name}: {value}", layer.field_location(f), "prototxt")


def reparse(doc: Document, edits: list[Edit]) -> Document | None:
    """The document after the edits, or None when the result no longer parses."""
    try:
        return parse_text(apply_edits(doc.text, edits), doc.path)
    except Exception:  # an edit that breaks the file is simply not offered
        return None


def reload_layer(doc: Document, layer: Layer) -> Layer | None:
    """The layer at the same place in an edited document (edits inside a layer keep its start)."""
    from nandoctor.config.net import load_net_message

    offset = layer.field.name_pos.offset

    def holder(msg: Message) -> Message | None:
        for f in msg.fields:
            if f.name_pos.offset == offset and f.name in ("layer", "layers"):
                return msg
            value = f.value
            if isinstance(value, Message) and value.start is not None and value.end is not None:
                inside = value.start.offset <= offset < value.end
                if inside:
                    return holder(value)
        return None

    net_msg = holder(doc.root)
    if net_msg is None:
        return None
    net = load_net_message(net_msg, doc)
    return next((x for x in net.layers if x.field.name_pos.offset == offset), None)


def param_value(layer: Layer, param_field: str, name: str):
    """A ``*_param`` field's value as written, else caffe.proto's default for it (None if neither)."""
    from nandoctor.config import schema

    msg = layer.param(param_field)
    if msg is not None and msg.has(name):
        return msg.get(name)
    message_type = schema.message_type_of("LayerParameter", param_field) or schema.message_type_of(
        "V1LayerParameter", param_field
    )
    return schema.default(message_type, name) if message_type else None


def param_number(layer: Layer, param_field: str, name: str, fallback: float) -> float:
    from nandoctor.config.textformat import number

    value = number(param_value(layer, param_field, name))
    return fallback if value is None else value


def edited_layer(doc: Document, layer: Layer, edits: list[Edit]) -> Layer | None:
    """The layer as it would read after ``edits`` (all inside it), or None if it no longer parses.

    V1/V2 layers are re-parsed on their own text (cheap on big files); V0 layers need the
    whole net because Caffe folds padding layers into them.
    """
    from nandoctor.config.net import load_net_message

    start, end = layer.field.name_pos.offset, layer.msg.end
    if layer.version == "v0" or end is None or any(not start <= e.start <= e.end <= end for e in edits):
        edited = reparse(doc, edits)
        return reload_layer(edited, layer) if edited is not None else None
    snippet = doc.text[start:end]
    shifted = [Edit(e.path, e.start - start, e.end - start, e.old, e.new) for e in edits]
    try:
        part = parse_text(apply_edits(snippet, shifted), doc.path)
    except Exception:  # an edit that breaks the layer is not offered
        return None
    net = load_net_message(part.root, part)
    return net.layers[0] if net.layers else None
