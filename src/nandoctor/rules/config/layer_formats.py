"""NAN013: V2 `layer` and V1 `layers` blocks in one net."""

from __future__ import annotations

from nandoctor.config import validate
from nandoctor.core.registry import register
from nandoctor.core.types import Severity
from nandoctor.rules.config._schema_rule import SchemaRule


@register
class MixedLayerFormats(SchemaRule):
    """
    ## What it detects
    A net that defines some layers with V2 `layer { }` blocks and others with deprecated V1
    `layers { }` blocks.

    ## Why it leads to NaN
    Caffe parses the file but refuses to upgrade it ("Refusing to upgrade inconsistent
    NetParameter input") and aborts. Such nets are stitched from examples of different eras,
    whose learning-rate multipliers (`blobs_lr` vs `lr_mult`) and defaults differ.

    ## How to fix
    Convert the V1 blocks to V2: `layers` -> `layer`, enum types -> strings
    (CONVOLUTION -> "Convolution"), `blobs_lr`/`weight_decay` -> `param { lr_mult decay_mult }`.

    ## Example
    `layer { type: "Input" ... } layers { type: CONVOLUTION ... }` -> two `layer` blocks
    """

    code = validate.MIXED_LAYER_FORMATS
    title = "V1 and V2 layer blocks mixed"
    severity = Severity.ERROR
