"""Blob shapes of a net, inferred the way Caffe's layers size their tops.

A shape is a tuple of dimensions; a dimension is ``None`` when the file does not say
(a Data layer's channels come from the database), and a whole shape is ``None`` when
even the number of axes is unknown (HDF5 data, Python and unknown layer types). Unknown
propagates downstream; nothing here raises on odd input. Where Caffe would abort
(negative output size, a pooling CHECK, mismatched concat inputs) a :class:`ShapeProblem`
records it with Caffe's message.

``overrides`` (blob -> shape, from ``--input-shape`` or a log's ``Top shape:`` lines) win
over anything inferred.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from nandoctor.config.layers import SHAPE_OF
from nandoctor.config.net import Layer
from nandoctor.config.pooling import PoolParams, pool_geometry
from nandoctor.config.textformat import Message, boolean, number

Shape = tuple[int | None, ...]


@dataclass(frozen=True, slots=True)
class ShapeProblem:
    layer: str
    message: str
    kind: str  # negative | pooling | mismatch | missing_bottom | check


@dataclass
class ShapeResult:
    shapes: dict[str, Shape | None] = field(default_factory=dict)  # final shape of every blob
    bottoms: dict[int, list[Shape | None]] = field(default_factory=dict)  # layer.index -> bottom shapes
    tops: dict[int, list[Shape | None]] = field(default_factory=dict)  # layer.index -> top shapes
    problems: list[ShapeProblem] = field(default_factory=list)

    def shape(self, blob: str) -> Shape | None:
        return self.shapes.get(blob)

    def bottom_shapes(self, layer: Layer) -> list[Shape | None]:
        return self.bottoms.get(layer.index, [None] * len(layer.bottoms))

    def top_shapes(self, layer: Layer) -> list[Shape | None]:
        return self.tops.get(layer.index, [None] * len(layer.tops))


def is_known(shape: Shape | None) -> bool:
    return shape is not None and all(d is not None for d in shape)


def format_shape(shape: Shape | None) -> str:
    if shape is None:
        return "?"
    return "x".join("?" if d is None else str(d) for d in shape)


def parse_shape(text: str) -> tuple[int, ...]:
    """``64,3,227,227`` or ``64x3x227x227`` -> (64, 3, 227, 227); raises ValueError."""
    parts = [p for p in text.replace("x", ",").replace(" ", ",").split(",") if p]
    dims = tuple(int(p) for p in parts)
    if not dims or any(d < 0 for d in dims):
        raise ValueError(f"not a shape: {text!r}")
    return dims


def overrides_from_top_shapes(layers: list[Layer], by_layer: dict[str, list[tuple[int, ...]]]) -> dict[str, Shape]:
    """Turn per-layer ``Top shape:`` lists (as a Caffe log prints them) into blob overrides."""
    out: dict[str, Shape] = {}
    for layer in layers:
        shapes = by_layer.get(layer.name)
        if not shapes:
            continue
        for top, shape in zip(layer.tops, shapes, strict=False):
            out.setdefault(top, tuple(shape))
    return out


# --- helpers ------------------------------------------------------------------------------


def _int(value, default: int | None = None) -> int | None:
    v = number(value) if value is not None else None
    return int(v) if v is not None and v == v and abs(v) != float("inf") else default


def _get(p: Message | None, name: str, default=None):
    return p.get(name, default) if p is not None else default


def _axis(axis: int, ndim: int) -> int | None:
    a = axis + ndim if axis < 0 else axis
    return a if 0 <= a < ndim else None


def _mul(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a * b


def _spatial(p: Message | None, name: str, n: int, default: int, h_name: str, w_name: str) -> list[int]:
    """Per-spatial-axis values of a repeated conv field (one value for all, or one per axis; _h/_w for 2-D)."""
    if p is not None and n == 2 and (p.has(h_name) or p.has(w_name)):
        return [_int(p.get(h_name), default) or 0, _int(p.get(w_name), default) or 0]
    values = [_int(v, default) for v in (p.get_all(name) if p is not None else [])]
    values = [default if v is None else v for v in values]
    if not values:
        return [default] * n
    if len(values) == 1:
        return values * n
    return (values + [default] * n)[:n]


def _trunc_div(a: int, b: int) -> int:
    """C++ integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


# --- per-type shape functions --------------------------------------------------------------

Ctx = dict  # {"problems": list, "layer": Layer}


def _problem(ctx: Ctx, message: str, kind: str) -> None:
    ctx["problems"].append(ShapeProblem(ctx["layer"].name, message, kind))


def _input(layer: Layer, bottoms, ctx) -> list[Shape | None]:
    p = layer.param("input_param")
    shapes = [tuple(_int(d, 0) for d in m.get_all("dim")) for m in p.messages("shape")] if p else []
    if len(shapes) == 1:
        return [shapes[0]] * len(layer.tops)
    return [shapes[i] if i < len(shapes) else None for i in range(len(layer.tops))]


def _dummy(layer: Layer, bottoms, ctx) -> list[Shape | None]:
    p = layer.param("dummy_data_param")
    if p is None:
        return [None] * len(layer.tops)
    shapes = [tuple(_int(d, 0) for d in m.get_all("dim")) for m in p.messages("shape")]
    if not shapes:
        legacy = [[_int(v, 0) for v in p.get_all(k)] for k in ("num", "channels", "height", "width")]
        count = max((len(v) for v in legacy), default=0)
        for i in range(count):
            shapes.append(tuple(v[i] if i < len(v) else (v[0] if len(v) == 1 else 1) for v in legacy))
    if len(shapes) == 1:
        return [shapes[0]] * len(layer.tops)
    return [shapes[i] if i < len(shapes) else None for i in range(len(layer.tops))]


def _transform_dims(layer: Layer, p: Message | None) -> tuple[int | None, int | None, int | None]:
    """(channels, height, width) fixed by transform_param (crop, force_color/gray) or the data param."""
    t = layer.param("transform_param")
    crop = _int(_get(t, "crop_size"), 0) or _int(_get(p, "crop_size"), 0) or 0
    channels = None
    if boolean(_get(t, "force_color")):
        channels = 3
    elif boolean(_get(t, "force_gray")):
        channels = 1
    return channels, (crop or None), (crop or None)


def _data(layer: Layer, bottoms, ctx) -> list[Shape | None]:
    p = layer.param("data_param")
    n = _int(_get(p, "batch_size"))
    c, h, w = _transform_dims(layer, p)
    out: list[Shape | None] = [(n, c, h, w)]
    if len(layer.tops) > 1:
        out.append((n,))
    return out[: len(layer.tops)] + [None] * (len(layer.tops) - len(out))


def _image_data(layer: Layer, bottoms, ctx) -> list[Shape | None]:
    p = layer.param("image_data_param")
    n = _int(_get(p, "batch_size"), 1)
    c, h, w = _transform_dims(layer, p)
    if c is None:
        c = 1 if boolean(_get(p, "is_color")) is False else 3
    if h is None:
        nh, nw = _int(_get(p, "new_height"), 0), _int(_get(p, "new_width"), 0)
        if nh and nw:
            h, w = nh, nw
    out: list[Shape | None] = [(n, c, h, w), (n,)]
    return out[: len(layer.tops)] + [None] * max(0, len(layer.tops) - 2)


def _window_data(layer: Layer, bottoms, ctx) -> list[Shape | None]:
    p = layer.param("window_data_param")
    n = _int(_get(p, "batch_size"))
    _, h, w = _transform_dims(layer, p)
    out: list[Shape | None] = [(n, 3, h, w), (n, 1, 1, 1)]
    return out[: len(layer.tops)]


def _memory_data(layer: Layer, bottoms, ctx) -> list[Shape | None]:
    p = layer.param("memory_data_param")
    dims = tuple(_int(_get(p, k)) for k in ("batch_size", "channels", "height", "width"))
    out: list[Shape | None] = [dims, (dims[0],)]
    return out[: len(layer.tops)]


def _hdf5(layer: Layer, bottoms, ctx) -> list[Shape | None]:
    return [None] * len(layer.tops)  # dims come from the files


def _conv(layer: Layer, bottoms, ctx, deconv: bool = False) -> list[Shape | None]:
    b = bottoms[0] if bottoms else None
    p = layer.param("convolution_param")
    if b is None:
        return [None] * len(layer.tops)
    axis = _axis(_int(_get(p, "axis"), 1), len(b))
    if axis is None:
        return [None] * len(layer.tops)
    n_spatial = len(b) - axis - 1
    kernel = _spatial(p, "kernel_size", n_spatial, 0, "kernel_h", "kernel_w")
    stride = _spatial(p, "stride", n_spatial, 1, "stride_h", "stride_w")
    pad = _spatial(p, "pad", n_spatial, 0, "pad_h", "pad_w")
    dilation = _spatial(p, "dilation", n_spatial, 1, "", "")
    num_output = _int(_get(p, "num_output"))
    group = _int(_get(p, "group"), 1) or 1
    channels = b[axis]
    # BaseConvolutionLayer::LayerSetUp checks these in this order and aborts at the first
    if not num_output or num_output < 0:
        _problem(ctx, f"Check failed: num_output_ > 0 ({num_output or 0} vs. 0)", "check")
    elif channels is not None and channels % group:
        _problem(ctx, f"Check failed: channels_ % group_ == 0 ({channels % group} vs. 0)", "check")
    elif num_output % group:
        message = f"Check failed: num_output_ % group_ == 0 ({num_output % group} vs. 0) "
        _problem(ctx, message + "Number of output should be multiples of group.", "check")
    out_spatial: list[int | None] = []
    for i in range(n_spatial):
        size = b[axis + 1 + i]
        if size is None or kernel[i] <= 0 or stride[i] <= 0:
            out_spatial.append(None)
            continue
        extent = dilation[i] * (kernel[i] - 1) + 1
        if deconv:
            o = stride[i] * (size - 1) + extent - 2 * pad[i]
        else:
            o = _trunc_div(size + 2 * pad[i] - extent, stride[i]) + 1
        if o < 0:
            _problem(ctx, f"blob.cpp:32] Check failed: shape[i] >= 0 ({o} vs. 0)", "negative")
            o = None
        out_spatial.append(o)
    shape = (*b[:axis], num_output, *out_spatial)
    return [shape] * len(layer.tops)


def _deconv(layer, bottoms, ctx):
    return _conv(layer, bottoms, ctx, deconv=True)


def _pooling(layer: Layer, bottoms, ctx) -> list[Shape | None]:
    b = bottoms[0] if bottoms else None
    if b is None:
        return [None] * len(layer.tops)
    if len(b) != 4:
        _problem(ctx, f"Check failed: 4 == bottom[0]->num_axes() (4 vs. {len(b)}) Input must have 4 axes, "
                 "corresponding to (num, channels, height, width)", "check")  # fmt: skip
        return [None] * len(layer.tops)
    params = PoolParams.from_message(layer.param("pooling_param"))
    h, w = b[2], b[3]
    if h is None or w is None:
        if params.global_pooling:
            return [(b[0], b[1], 1, 1)] * len(layer.tops)
        return [(b[0], b[1], None, None)] * len(layer.tops)
    geo = pool_geometry(params, h, w)
    if geo.status != "ok":
        _problem(ctx, geo.error or geo.status, "pooling")
    if geo.h is None or geo.w is None:
        return [None] * len(layer.tops)
    return [(b[0], b[1], geo.h.out, geo.w.out)] * len(layer.tops)


def _inner_product(layer: Layer, bottoms, ctx) -> list[Shape | None]:
    b = bottoms[0] if bottoms else None
    p = layer.param("inner_product_param")
    if b is None:
        return [None] * len(layer.tops)
    axis = _axis(_int(_get(p, "axis"), 1), len(b))
    if axis is None:
        return [None] * len(layer.tops)
    return [(*b[:axis], _int(_get(p, "num_output")))] * len(layer.tops)


def _same(layer: Layer, bottoms, ctx) -> list[Shape | None]:
    b = bottoms[0] if bottoms else None
    return [b] * len(layer.tops)


def _scalar_loss(layer: Layer, bottoms, ctx) -> list[Shape | None]:
    out: list[Shape | None] = [()]
    if len(layer.tops) > 1:  # SoftmaxWithLoss / InfogainLoss: second top is the probabilities
        out.append(bottoms[0] if bottoms else None)
    return out + [None] * (len(layer.tops) - len(out))


def _accuracy(layer: Layer, bottoms, ctx) -> list[Shape | None]:
    out: list[Shape | None] = [()]
    if len(layer.tops) > 1:
        b = bottoms[0] if bottoms else None
        axis = _axis(_int(_get(layer.param("accuracy_param"), "axis"), 1), len(b)) if b else None
        out.append((b[axis],) if b is not None and axis is not None else None)
    return out


def _concat(layer: Layer, bottoms, ctx) -> list[Shape | None]:
    if not bottoms or any(b is None for b in bottoms):
        return [None] * len(layer.tops)
    p = layer.param("concat_param")
    axis_value = _int(_get(p, "concat_dim")) if p is not None and p.has("concat_dim") else _int(_get(p, "axis"), 1)
    first = bottoms[0]
    axis = _axis(axis_value if axis_value is not None else 1, len(first))
    if axis is None:
        return [None] * len(layer.tops)
    total: int | None = 0
    for b in bottoms:
        if len(b) != len(first):
            _problem(
                ctx, "Check failed: num_axes == bottom[i]->num_axes() All inputs must have the same #axes.", "mismatch"
            )
            return [None] * len(layer.tops)
        for j, (x, y) in enumerate(zip(first, b, strict=True)):
            if j != axis and x is not None and y is not None and x != y:
                _problem(ctx, f"Check failed: top_shape[j] == bottom[i]->shape(j) ({x} vs. {y}) All inputs must have "
                         "the same shape, except at concat_axis.", "mismatch")  # fmt: skip
        total = None if total is None or b[axis] is None else total + b[axis]
    return [(*first[:axis], total, *first[axis + 1 :])] * len(layer.tops)


def _eltwise(layer: Layer, bottoms, ctx) -> list[Shape | None]:
    known = [b for b in bottoms if is_known(b)]
    for b in known[1:]:
        if b != known[0]:
            _problem(ctx, f"Check failed: bottom[0]->shape() == bottom[i]->shape() bottom[0]: {format_shape(known[0])}, "
                     f"bottom[i]: {format_shape(b)}", "mismatch")  # fmt: skip
            break
    return [bottoms[0] if bottoms else None] * len(layer.tops)


def _flatten(layer: Layer, bottoms, ctx) -> list[Shape | None]:
    b = bottoms[0] if bottoms else None
    if b is None:
        return [None] * len(layer.tops)
    p = layer.param("flatten_param")
    start = _axis(_int(_get(p, "axis"), 1), len(b))
    end = _axis(_int(_get(p, "end_axis"), -1), len(b))
    if start is None or end is None:
        return [None] * len(layer.tops)
    flat: int | None = 1
    for d in b[start : end + 1]:
        flat = _mul(flat, d)
    return [(*b[:start], flat, *b[end + 1 :])] * len(layer.tops)


def _reshape(layer: Layer, bottoms, ctx) -> list[Shape | None]:
    b = bottoms[0] if bottoms else None
    p = layer.param("reshape_param")
    if b is None or p is None:
        return [None] * len(layer.tops)
    shape_msg = p.get("shape")
    dims = [_int(d, 0) for d in shape_msg.get_all("dim")] if isinstance(shape_msg, Message) else []
    start = _int(p.get("axis"), 0)
    start = start + len(b) + 1 if start < 0 else start
    num_axes = _int(p.get("num_axes"), -1)
    end = len(b) if num_axes == -1 else start + num_axes
    if not 0 <= start <= end <= len(b):
        return [None] * len(layer.tops)
    new: list[int | None] = [b[start + i] if d == 0 and start + i < len(b) else d for i, d in enumerate(dims)]
    replaced = b[start:end]
    if -1 in new:
        total: int | None = 1
        for d in replaced:
            total = _mul(total, d)
        rest: int | None = 1
        for d in new:
            if d != -1:
                rest = _mul(rest, d)
        if total is None or not rest:
            new[new.index(-1)] = None
        else:
            if total % rest:
                _problem(ctx, f"Check failed: 0 == bottom[0]->count() % explicit_count ({total % rest} vs. 0) "
                         "bottom count not divisible by the reshape", "check")  # fmt: skip
            new[new.index(-1)] = total // rest
    return [(*b[:start], *new, *b[end:])] * len(layer.tops)


def _slice(layer: Layer, bottoms, ctx) -> list[Shape | None]:
    b = bottoms[0] if bottoms else None
    if b is None:
        return [None] * len(layer.tops)
    p = layer.param("slice_param")
    axis_value = _int(_get(p, "slice_dim")) if p is not None and p.has("slice_dim") else _int(_get(p, "axis"), 1)
    axis = _axis(axis_value if axis_value is not None else 1, len(b))
    if axis is None:
        return [None] * len(layer.tops)
    size = b[axis]
    points = [_int(x, 0) for x in (p.get_all("slice_point") if p is not None else [])]
    if points:
        edges = [0, *points, size]
        sizes = [None if y is None or x is None else y - x for x, y in itertools.pairwise(edges)]
    elif size is not None and layer.tops:
        if size % len(layer.tops):
            _problem(
                ctx, f"Check failed: bottom_slice_axis % top.size() == 0 ({size % len(layer.tops)} vs. 0)", "check"
            )
        sizes = [size // len(layer.tops)] * len(layer.tops)
    else:
        sizes = [None] * len(layer.tops)
    return [(*b[:axis], s, *b[axis + 1 :]) for s in sizes[: len(layer.tops)]] + [None] * (len(layer.tops) - len(sizes))


def _crop(layer: Layer, bottoms, ctx) -> list[Shape | None]:
    if len(bottoms) < 2 or bottoms[0] is None or bottoms[1] is None:
        return [None] * len(layer.tops)
    a, ref = bottoms
    axis = _axis(_int(_get(layer.param("crop_param"), "axis"), 2), len(a))
    if axis is None or len(ref) != len(a):
        return [None] * len(layer.tops)
    return [(*a[:axis], *ref[axis:])] * len(layer.tops)


def _reduction(layer: Layer, bottoms, ctx) -> list[Shape | None]:
    b = bottoms[0] if bottoms else None
    if b is None:
        return [None] * len(layer.tops)
    axis = _axis(_int(_get(layer.param("reduction_param"), "axis"), 0), len(b))
    return [b[:axis] if axis is not None else None] * len(layer.tops)


def _argmax(layer: Layer, bottoms, ctx) -> list[Shape | None]:
    b = bottoms[0] if bottoms else None
    if b is None:
        return [None] * len(layer.tops)
    p = layer.param("argmax_param")
    top_k = _int(_get(p, "top_k"), 1)
    if p is not None and p.has("axis"):
        axis = _axis(_int(p.get("axis"), 0), len(b))
        if axis is None:
            return [None] * len(layer.tops)
        return [(*b[:axis], top_k, *b[axis + 1 :])] * len(layer.tops)
    # Caffe: at least 3 axes, all 1 except N, top_k on axis 2 and 2 channels with out_max_val
    shape: list[int | None] = [1] * max(len(b), 3)
    shape[0] = b[0] if b else None
    shape[2] = top_k
    if boolean(_get(p, "out_max_val")):
        shape[1] = 2
    return [tuple(shape)] * len(layer.tops)


def _tile(layer: Layer, bottoms, ctx) -> list[Shape | None]:
    b = bottoms[0] if bottoms else None
    if b is None:
        return [None] * len(layer.tops)
    p = layer.param("tile_param")
    axis = _axis(_int(_get(p, "axis"), 1), len(b))
    if axis is None:
        return [None] * len(layer.tops)
    return [(*b[:axis], _mul(b[axis], _int(_get(p, "tiles"))), *b[axis + 1 :])] * len(layer.tops)


def _embed(layer: Layer, bottoms, ctx) -> list[Shape | None]:
    b = bottoms[0] if bottoms else None
    return [(*b, _int(_get(layer.param("embed_param"), "num_output"))) if b is not None else None] * len(layer.tops)


def _permute(layer: Layer, bottoms, ctx) -> list[Shape | None]:
    """SSD fork: the axes listed in permute_param.order first, the rest in their order."""
    b = bottoms[0] if bottoms else None
    p = layer.param("permute_param")
    if b is None:
        return [None] * len(layer.tops)
    order = [o for o in (_int(x) for x in (p.get_all("order") if p is not None else [])) if o is not None]
    if any(not 0 <= o < len(b) for o in order):
        return [None] * len(layer.tops)
    order = list(dict.fromkeys(order)) + [i for i in range(len(b)) if i not in order]
    return [tuple(b[i] for i in order)] * len(layer.tops)


def _roi_pooling(layer: Layer, bottoms, ctx) -> list[Shape | None]:
    """py-faster-rcnn fork: (number of ROIs, channels, pooled_h, pooled_w)."""
    if len(bottoms) < 2 or bottoms[0] is None or bottoms[1] is None or len(bottoms[0]) != 4:
        return [None] * len(layer.tops)
    p = layer.param("roi_pooling_param")
    return [(bottoms[1][0], bottoms[0][1], _int(_get(p, "pooled_h"), 0), _int(_get(p, "pooled_w"), 0))] * len(
        layer.tops
    )


def _none(layer: Layer, bottoms, ctx) -> list[Shape | None]:
    return [None] * len(layer.tops)


# Which function infers a type's tops is a column of the layer-type table (config/layers.py).
_BY_NAME = {
    f.__name__[1:]: f
    for f in (
        _accuracy,
        _argmax,
        _concat,
        _conv,
        _crop,
        _data,
        _deconv,
        _dummy,
        _eltwise,
        _embed,
        _flatten,
        _hdf5,
        _image_data,
        _inner_product,
        _input,
        _memory_data,
        _none,
        _permute,
        _pooling,
        _reduction,
        _reshape,
        _roi_pooling,
        _same,
        _scalar_loss,
        _slice,
        _tile,
        _window_data,
    )
}
SHAPE_FUNCTIONS: dict[str, Callable] = {t: _BY_NAME[name] for t, name in SHAPE_OF.items()}


def infer_shapes(
    layers: list[Layer],
    inputs: dict[str, tuple] | None = None,
    overrides: dict[str, tuple] | None = None,
) -> ShapeResult:
    """Shapes of every blob when ``layers`` (one phase, file order) run on ``inputs``."""
    overrides = dict(overrides or {})
    result = ResultBuilder(inputs, overrides)
    for layer in layers:
        result.run(layer)
    return result.result


class ResultBuilder:
    def __init__(self, inputs: dict[str, tuple] | None, overrides: dict[str, tuple]):
        self.overrides = overrides
        self.result = ShapeResult()
        self.produced: set[str] = set()
        for blob, shape in (inputs or {}).items():
            self.result.shapes[blob] = tuple(shape)
            self.produced.add(blob)
        for blob, shape in overrides.items():
            if blob in self.result.shapes:
                self.result.shapes[blob] = tuple(shape)

    def run(self, layer: Layer) -> None:
        res = self.result
        bottoms: list[Shape | None] = []
        for j, name in enumerate(layer.bottoms):
            if name not in self.produced:
                message = f"Unknown bottom blob '{name}' (layer '{layer.name}', bottom index {j})"  # insert_splits.cpp
                res.problems.append(ShapeProblem(layer.name, message, "missing_bottom"))
            bottoms.append(res.shapes.get(name))
        res.bottoms[layer.index] = bottoms
        fn = SHAPE_FUNCTIONS.get(layer.type, _none)
        ctx = {"problems": res.problems, "layer": layer}
        try:
            tops = fn(layer, bottoms, ctx)
        except (TypeError, ValueError, ZeroDivisionError, IndexError):
            tops = [None] * len(layer.tops)  # a malformed param never stops the walk
        tops = list(tops[: len(layer.tops)]) + [None] * (len(layer.tops) - len(tops))
        for i, top in enumerate(layer.tops):
            in_place = i < len(layer.bottoms) and layer.bottoms[i] == top
            if top in self.overrides and not in_place:
                tops[i] = tuple(self.overrides[top])
            res.shapes[top] = tops[i]
            self.produced.add(top)
        res.tops[layer.index] = tops
