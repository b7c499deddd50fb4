"""Pooling geometry without torch: which windows of a pooling layer see no input at all.

PyTorch's built-in pooling drops a last window that would start in the right padding,
so ``nn.AvgPool2d``/``nn.MaxPool2d`` never average over nothing. Hand-written or ported
pooling (Caffe's formula, masked mean pooling) has no such guard: an empty window
divides 0 by a count of 0 (NaN) or takes the max of nothing (-inf). This module
computes, per spatial dimension, the windows that cover only padding, using the
no-clip ceil/floor output-size formula that such code typically uses.
"""

from __future__ import annotations

import math
from typing import Any


def _per_dim(value: Any, dims: int) -> list[int]:
    if isinstance(value, list | tuple):
        out = [int(v) for v in value]
        return out if len(out) == dims else [out[0]] * dims
    return [int(value)] * dims


def window_count(size: int, kernel: int, stride: int, pad: int, dilation: int = 1, ceil_mode: bool = False) -> int:
    """Number of windows along one dimension, Caffe-style (no clipping of the last window)."""
    span = dilation * (kernel - 1) + 1
    steps = (size + 2 * pad - span) / stride
    return (math.ceil(steps) if ceil_mode else math.floor(steps)) + 1


def empty_windows(
    size: int, kernel: int, stride: int, pad: int, dilation: int = 1, ceil_mode: bool = False
) -> list[tuple[int, int, int]]:
    """Windows (index, first, last position) along one dimension that contain no input element."""
    out = []
    for i in range(max(window_count(size, kernel, stride, pad, dilation, ceil_mode), 0)):
        first = i * stride - pad
        positions = [first + j * dilation for j in range(kernel)]
        if not any(0 <= p < size for p in positions):
            out.append((i, positions[0], positions[-1]))
    return out


def geometry_report(attrs: dict[str, Any], input_shape: list[int]) -> dict[str, Any] | None:
    """Empty windows of a pooling module described by its attributes, for an input shape.

    ``attrs`` holds kernel_size, stride, padding, dilation, ceil_mode as the module has
    them (ints or tuples); the last ``len(kernel)`` dimensions of the input are spatial.
    Returns None when the attributes do not describe a windowed pooling.
    """
    if attrs.get("kernel_size") is None or not input_shape:
        return None
    kernel = attrs["kernel_size"]
    dims = len(kernel) if isinstance(kernel, list | tuple) else max(1, min(2, len(input_shape) - 2))
    if len(input_shape) < dims:
        return None
    kernel = _per_dim(kernel, dims)
    stride = _per_dim(attrs.get("stride") or kernel, dims)
    pad = _per_dim(attrs.get("padding", 0) or 0, dims)
    dilation = _per_dim(attrs.get("dilation", 1) or 1, dims)
    ceil_mode = bool(attrs.get("ceil_mode", False))
    sizes = [int(s) for s in input_shape[-dims:]]
    empty = []
    for d in range(dims):
        for index, first, last in empty_windows(sizes[d], kernel[d], stride[d], pad[d], dilation[d], ceil_mode):
            empty.append({"dim": d, "window": index, "first": first, "last": last, "size": sizes[d]})
    return {
        "kernel": kernel,
        "stride": stride,
        "padding": pad,
        "dilation": dilation,
        "ceil_mode": ceil_mode,
        "input": sizes,
        "empty_windows": empty,
    }
