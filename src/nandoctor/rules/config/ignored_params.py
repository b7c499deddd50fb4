"""NAN018: a `*_param` block that the layer's type never reads."""

from __future__ import annotations

from nandoctor.config import validate
from nandoctor.core.registry import register
from nandoctor.core.types import Severity
from nandoctor.rules.config._schema_rule import SchemaRule


@register
class IgnoredParamBlock(SchemaRule):
    """
    ## What it detects
    A layer carrying a parameter block its type does not read: `transform_param` on an
    `HDF5Data` or `Input` layer, `convolution_param` on an `InnerProduct` layer,
    `pooling_param` on a `ReLU`. Caffe parses the block and silently drops it. (Loss layers
    read `loss_param`; Data, ImageData, WindowData and MemoryData read `transform_param`;
    Python layers and fork types are not judged.)

    ## Why it leads to NaN
    The settings the author relies on never happen. The classic case is
    `transform_param { scale: 0.00390625 }` on an HDF5Data layer: the pixels stay in 0..255,
    the first layers' outputs are 255x larger than intended and training diverges to NaN.
    A copied `*_param` block also often means the real block of the layer is missing, so the
    layer runs on its defaults (no weight filler: all-zero weights).

    ## How to fix
    Put the settings where the type reads them (the layer's own `*_param`), or do the work in
    a layer of its own (a Power or Scale layer for a data scale), and delete the ignored block.

    ## Example
    `layer { type: "HDF5Data" transform_param { scale: 0.0039 } }` -> store scaled data in
    the HDF5 file, or add `layer { type: "Power" power_param { scale: 0.0039 } }` after it
    """

    code = validate.IGNORED_PARAM_BLOCK
    title = "Parameter block the layer type ignores"
    severity = Severity.WARNING
