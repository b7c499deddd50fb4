"""Caffe's PoolingLayer geometry, reproduced exactly (BVLC final master, Caffe engine).

Given a ``pooling_param`` and an input height/width this computes what Caffe computes:
the output size (CEIL or FLOOR rounding, the padding correction that drops a last window
starting in the padding, global pooling), the CHECK failures Caffe aborts with (same
file:line and text as glog prints them), and for every output cell whether its window
is *empty*:

* AVE: the divisor is ``(hend - hstart) * (wend - wstart)`` with ``hend`` clipped to
  ``H + pad`` but *not* to ``H``; a divisor of 0 gives 0/0 = NaN, a negative divisor a
  silent 0 (or -0), and a window empty in both axes a positive divisor over an empty sum,
  also a silent 0.
* MAX: the window clipped to the image is empty, so the output keeps its initial value
  -FLT_MAX and the CPU backward writes through mask index -1.

Everything is per axis (the window of cell (ph, pw) is the product of the row window
and the column window), so counts come from the axes without visiting every cell.
Checked against every row of the oracle table ``oracles/pooling.csv``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

FLT_MAX = 3.4028234663852886e38

# Defaults of caffe.PoolingParameter; the schema module is the source when present.
_FALLBACK_DEFAULTS = {"pool": "MAX", "stride": 1, "pad": 0, "round_mode": "CEIL", "global_pooling": False}
_PARAM_FIELDS = (
    "kernel_size", "kernel_h", "kernel_w", "stride", "stride_h", "stride_w",
    "pad", "pad_h", "pad_w", "pool", "round_mode", "global_pooling",
)  # fmt: skip
_ENUM_NUMBERS = {"pool": {0: "MAX", 1: "AVE", 2: "STOCHASTIC"}, "round_mode": {0: "CEIL", 1: "FLOOR"}}


def _default(name: str) -> Any:
    try:
        from nandoctor.config import schema

        value = schema.default("PoolingParameter", name)
    except Exception:  # schema absent or field unknown to it: Caffe's documented default
        value = None
    return _FALLBACK_DEFAULTS.get(name) if value is None else value


@dataclass(frozen=True, slots=True)
class PoolParams:
    """The fields of a ``pooling_param`` that matter for geometry, and which ones were set.

    ``given`` lists the field names present in the file: Caffe's setup checks are about
    presence (``has_kernel_size()``), not values.
    """

    pool: str = "MAX"
    kernel_size: int | None = None
    kernel_h: int | None = None
    kernel_w: int | None = None
    stride: int = 1
    stride_h: int | None = None
    stride_w: int | None = None
    pad: int = 0
    pad_h: int | None = None
    pad_w: int | None = None
    round_mode: str = "CEIL"
    global_pooling: bool = False
    given: frozenset[str] = frozenset()

    @classmethod
    def from_message(cls, msg: Any) -> PoolParams:
        """Read a textformat Message (or None: every field at its default)."""
        from nandoctor.config.textformat import boolean

        values: dict[str, Any] = {}
        if msg is not None:
            for name in _PARAM_FIELDS:
                value = msg.get(name)
                if value is None:
                    continue
                if name in _ENUM_NUMBERS:
                    value = _ENUM_NUMBERS[name].get(value, value) if isinstance(value, int) else str(value)
                elif name == "global_pooling":
                    value = bool(boolean(value))
                else:
                    value = (
                        int(value)
                        if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
                        else None
                    )
                    if value is None:
                        continue
                values[name] = value
            values["given"] = frozenset(f.name for f in msg.fields)
        for name in ("pool", "stride", "pad", "round_mode", "global_pooling"):
            values.setdefault(name, _default(name))
        return cls(**values)

    @classmethod
    def of(cls, **fields: Any) -> PoolParams:
        """Build from keyword fields as if they were written in a pooling_param (they count as given)."""
        given = frozenset(fields)
        for name in ("pool", "stride", "pad", "round_mode", "global_pooling"):
            fields.setdefault(name, _default(name))
        return cls(**fields, given=given)

    def resolved(self) -> tuple[int | None, int | None, int, int, int, int]:
        """(kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w) as LayerSetUp assigns them."""
        if self.kernel_size is not None:
            kh = kw = self.kernel_size
        else:
            kh, kw = self.kernel_h, self.kernel_w
        if self.pad_h is None:
            ph = pw = self.pad
        else:
            ph, pw = self.pad_h, self.pad_w if self.pad_w is not None else 0
        if self.stride_h is None:
            sh = sw = self.stride
        else:
            sh, sw = self.stride_h, self.stride_w if self.stride_w is not None else 1
        return kh, kw, sh, sw, ph, pw


@dataclass(frozen=True, slots=True)
class Axis:
    """One spatial axis of a pooling: input size, resolved geometry and its windows."""

    size: int
    kernel: int
    stride: int
    pad: int
    out: int

    def start(self, i: int) -> int:
        return i * self.stride - self.pad

    def ave_extent(self, i: int) -> int:
        """AVE divisor factor: hend - hstart with hend clipped to size + pad only."""
        s = self.start(i)
        return min(s + self.kernel, self.size + self.pad) - s

    def covered(self, i: int) -> int:
        """Input cells the window covers after clipping to [0, size) (0 when empty)."""
        s = self.start(i)
        return max(0, min(s + self.kernel, self.size) - max(s, 0))

    def window(self, i: int) -> tuple[int, int]:
        """[start, end) of the window in input coordinates, before clipping to the image."""
        s = self.start(i)
        return s, s + self.kernel


@dataclass(frozen=True, slots=True)
class EmptyCell:
    """An output cell whose window is empty. ``kind``: nan | zero | neg_flt_max."""

    ph: int
    pw: int
    kind: str
    divisor: int | None  # AVE only


@dataclass(frozen=True, slots=True)
class PoolGeometry:
    """Caffe's result for one pooling configuration on one input size."""

    pool: str
    height: int
    width: int
    h: Axis | None
    w: Axis | None
    status: str  # ok | rejected_setup | rejected_forward
    error: str | None = None  # glog message without prefix, e.g. "pooling_layer.cpp:74] Check failed: ..."
    _rows: dict[str, list[int]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def out_h(self) -> int | None:
        return self.h.out if self.h else None

    @property
    def out_w(self) -> int | None:
        return self.w.out if self.w else None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def _axis_sets(self) -> tuple[list[int], list[int], list[int], list[int]]:
        """Per axis: indices with an AVE extent of 0 and indices whose clipped window is empty."""
        if not self._rows:
            h, w = self.h, self.w
            assert h is not None and w is not None
            he, we = _tail(h), _tail(w)
            self._rows["h0"] = [i for i in he if h.ave_extent(i) == 0]
            self._rows["w0"] = [j for j in we if w.ave_extent(j) == 0]
            self._rows["he"], self._rows["we"] = he, we
        r = self._rows
        return r["h0"], r["w0"], r["he"], r["we"]

    def first_cell(self, kind: str) -> EmptyCell | None:
        """The first cell (row-major) of a kind: nan | zero (AVE) or neg_flt_max (MAX); None if there is none."""
        if not self.ok or (kind == "neg_flt_max") == (self.pool == "AVE"):
            return None
        h0, w0, he, we = self._axis_sets()
        candidates: list[tuple[int, int]] = []
        if kind == "zero":
            w0_set, he_set = set(w0), set(he)
            zero_cols = [j for j in we if j not in w0_set]
            first_full_row = next((r for r in range(len(he) + 1) if r not in he_set), None)
            if zero_cols and first_full_row is not None and first_full_row < self.h.out:
                candidates.append((first_full_row, zero_cols[0]))
            h0_set = set(h0)
            for r in he:
                if r not in h0_set:
                    j = next(j for j in range(len(w0) + 1) if j not in w0_set)
                    if j < self.w.out:
                        candidates.append((r, j))
                    break
        else:
            rows, cols = (h0, w0) if kind == "nan" else (he, we)
            if cols:
                candidates.append((0, cols[0]))
            if rows:
                candidates.append((rows[0], 0))
        if not candidates:
            return None
        ph, pw = min(candidates)
        return EmptyCell(ph, pw, self._kind(ph, pw), self._divisor(ph, pw))

    def _divisor(self, ph: int, pw: int) -> int | None:
        return self.h.ave_extent(ph) * self.w.ave_extent(pw) if self.pool == "AVE" else None

    def _kind(self, ph: int, pw: int) -> str:
        if self.h.covered(ph) and self.w.covered(pw):
            return "ok"
        if self.pool != "AVE":
            return "neg_flt_max"
        return "nan" if self._divisor(ph, pw) == 0 else "zero"

    def counts(self) -> dict[str, int]:
        """Output cells (per channel plane) that are NaN, -FLT_MAX or a silent zero, for a positive input."""
        out = {"nan": 0, "neg_flt_max": 0, "zero": 0}
        if not self.ok:
            return out
        h0, w0, he, we = self._axis_sets()
        oh, ow = self.h.out, self.w.out
        if self.pool == "AVE":
            nan = len(h0) * ow + oh * len(w0) - len(h0) * len(w0)
            empty = len(he) * ow + oh * len(we) - len(he) * len(we)
            out["nan"] = nan
            out["zero"] = empty - nan  # a zero divisor implies an empty window, so NaN cells are a subset
        else:
            out["neg_flt_max"] = len(he) * ow + oh * len(we) - len(he) * len(we)
        return out

    def empty_cells(self, limit: int | None = None) -> list[EmptyCell]:
        """The empty-window cells in row-major order (at most ``limit``)."""
        cells: list[EmptyCell] = []
        if not self.ok:
            return cells
        _, _, he, we = self._axis_sets()
        he_set = set(he)
        h, w = self.h, self.w
        for ph in range(h.out):
            row_empty = ph in he_set
            cols = range(w.out) if row_empty else we
            for pw in cols:
                if self.pool == "AVE":
                    divisor = h.ave_extent(ph) * w.ave_extent(pw)
                    kind = "nan" if divisor == 0 else "zero"
                else:
                    divisor, kind = None, "neg_flt_max"
                cells.append(EmptyCell(ph, pw, kind, divisor))
                if limit is not None and len(cells) >= limit:
                    return cells
        return cells

    @property
    def has_empty_window(self) -> bool:
        if not self.ok:
            return False
        _, _, he, we = self._axis_sets()
        return bool(he or we)


def _tail(axis: Axis) -> list[int]:
    """Indices of the axis whose window is empty after clipping.

    With pad < kernel every window ends after 0, so only windows starting at or past the input
    edge can be empty; those are the last few, found without walking the whole axis.
    """
    low = max(0, (axis.size + axis.pad) // max(axis.stride, 1) - 1)
    return [i for i in range(low, axis.out) if axis.covered(i) == 0]


def setup_error(params: PoolParams) -> str | None:
    """The CHECK in PoolingLayer::LayerSetUp that fails for these params (input-independent part)."""
    given = params.given
    has_ks = "kernel_size" in given
    has_kh, has_kw = "kernel_h" in given, "kernel_w" in given
    if params.global_pooling:
        if has_ks or has_kh or has_kw:
            return (
                "pooling_layer.cpp:18] Check failed: !(pool_param.has_kernel_size() || pool_param.has_kernel_h() "
                "|| pool_param.has_kernel_w()) With Global_pooling: true Filter size cannot specified"
            )
    else:
        # kernel_size XOR (kernel_h and kernel_w); giving neither also fails this first CHECK,
        # so Caffe's follow-up "For non-square filters ..." check can never fire.
        if (not has_ks) == (not (has_kh and has_kw)):
            return (
                "pooling_layer.cpp:22] Check failed: !pool_param.has_kernel_size() != "
                "!(pool_param.has_kernel_h() && pool_param.has_kernel_w()) "
                "Filter size is kernel_size OR kernel_h and kernel_w; not both"
            )
    has_ph, has_pw, has_sh, has_sw = "pad_h" in given, "pad_w" in given, "stride_h" in given, "stride_w" in given
    if not ((("pad" not in given) and has_ph and has_pw) or (not has_ph and not has_pw)):
        return (
            "pooling_layer.cpp:29] Check failed: (!pool_param.has_pad() && pool_param.has_pad_h() && "
            "pool_param.has_pad_w()) || (!pool_param.has_pad_h() && !pool_param.has_pad_w()) "
            "pad is pad OR pad_h and pad_w are required."
        )
    if not ((("stride" not in given) and has_sh and has_sw) or (not has_sh and not has_sw)):
        return (
            "pooling_layer.cpp:33] Check failed: (!pool_param.has_stride() && pool_param.has_stride_h() && "
            "pool_param.has_stride_w()) || (!pool_param.has_stride_h() && !pool_param.has_stride_w()) "
            "Stride is stride OR stride_h and stride_w are required."
        )
    return None


def pool_geometry(params: PoolParams, height: int, width: int) -> PoolGeometry:
    """What Caffe's PoolingLayer SetUp/Reshape (and Forward's allocation) does on a (N, C, H, W) input."""
    err = setup_error(params)
    if err is not None:
        return PoolGeometry(params.pool, height, width, None, None, "rejected_setup", err)
    kh, kw, sh, sw, ph, pw = params.resolved()
    if params.global_pooling:
        kh, kw = height, width
    kh = 0 if kh is None else kh
    kw = 0 if kw is None else kw

    def reject(message: str) -> PoolGeometry:
        return PoolGeometry(params.pool, height, width, None, None, "rejected_setup", message)

    if kh <= 0:
        return reject(
            f"pooling_layer.cpp:50] Check failed: kernel_h_ > 0 ({kh} vs. 0) Filter dimensions cannot be zero."
        )
    if kw <= 0:
        return reject(
            f"pooling_layer.cpp:51] Check failed: kernel_w_ > 0 ({kw} vs. 0) Filter dimensions cannot be zero."
        )
    if params.global_pooling and not (ph == 0 and pw == 0 and sh == 1 and sw == 1):
        return reject(
            "pooling_layer.cpp:65] Check failed: pad_h_ == 0 && pad_w_ == 0 && stride_h_ == 1 && stride_w_ == 1 "
            "With Global_pooling: true; only pad = 0 and stride = 1"
        )
    if ph != 0 or pw != 0:
        if params.pool not in ("AVE", "MAX"):
            return reject(
                "pooling_layer.cpp:69] Check failed: this->layer_param_.pooling_param().pool() == "
                "PoolingParameter_PoolMethod_AVE || this->layer_param_.pooling_param().pool() == "
                "PoolingParameter_PoolMethod_MAX Padding implemented only for average and max pooling."
            )
        if not ph < kh:
            return reject(f"pooling_layer.cpp:74] Check failed: pad_h_ < kernel_h_ ({ph} vs. {kh})")
        if not pw < kw:
            return reject(f"pooling_layer.cpp:75] Check failed: pad_w_ < kernel_w_ ({pw} vs. {kw})")
    if sh <= 0 or sw <= 0:
        # Caffe has no CHECK here: the float division by 0 gives inf and an undefined int cast.
        return reject("stride 0: Caffe divides by zero when sizing the output (no CHECK; undefined behaviour)")

    out_h = _round_div(height + 2 * ph - kh, sh, params.round_mode) + 1
    out_w = _round_div(width + 2 * pw - kw, sw, params.round_mode) + 1
    if ph or pw:
        if (out_h - 1) * sh >= height + ph:
            out_h -= 1
        if (out_w - 1) * sw >= width + pw:
            out_w -= 1
    for value in (out_h, out_w):
        if value < 0:
            return reject(f"blob.cpp:32] Check failed: shape[i] >= 0 ({value} vs. 0)")
    h_axis = Axis(height, kh, sh, ph, out_h)
    w_axis = Axis(width, kw, sw, pw, out_w)
    if out_h == 0 or out_w == 0:
        return PoolGeometry(
            params.pool, height, width, h_axis, w_axis, "rejected_forward", "blob.cpp:133] Check failed: data_"
        )
    return PoolGeometry(params.pool, height, width, h_axis, w_axis, "ok")


def _round_div(num: int, den: int, mode: str) -> int:
    """ceil/floor of ``static_cast<float>(num) / den`` as Caffe computes it (float32 division).

    For the sizes real nets use the float32 quotient rounds the same way as the exact one,
    so integer arithmetic is used; huge values go through float32 like Caffe.
    """
    if abs(num) < 1 << 20 and den < 1 << 10:
        return num // den if mode == "FLOOR" else -(-num // den)
    import numpy as np

    q = float(np.float32(num) / np.float32(den))
    return int(math.floor(q) if mode == "FLOOR" else math.ceil(q))


def output_size(params: PoolParams, height: int, width: int) -> tuple[int, int] | None:
    """(out_h, out_w), or None when Caffe rejects the configuration at setup."""
    geo = pool_geometry(params, height, width)
    if geo.h is None or geo.w is None:
        return None
    return geo.h.out, geo.w.out
