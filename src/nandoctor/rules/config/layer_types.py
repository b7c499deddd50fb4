"""NAN011, NAN012, NAN014: layer types in the wrong spelling or unknown to BVLC Caffe."""

from __future__ import annotations

from nandoctor.config import validate
from nandoctor.core.registry import register
from nandoctor.core.types import Severity
from nandoctor.rules.config._schema_rule import SchemaRule


@register
class V1TypeInV2Layer(SchemaRule):
    """
    ## What it detects
    A V2 `layer { }` block whose type is written in the V1 enum spelling: `type: CONVOLUTION`
    instead of `type: "Convolution"`.

    ## Why it leads to NaN
    Caffe rejects the file (`Expected string, got: CONVOLUTION`). Mixed-era files are often
    assembled from old and new examples whose defaults differ (V1 `blobs_lr` vs V2 `lr_mult`),
    so check the learning-rate multipliers of the copied layers too.

    ## How to fix
    Write the V2 string type (the fix does it, e.g. SOFTMAX_LOSS -> "SoftmaxWithLoss").

    ## Example
    `layer { type: CONVOLUTION }` -> `layer { type: "Convolution" }`
    """

    code = validate.V1_TYPE_IN_V2_LAYER
    title = "V1 layer type enum in a V2 layer"
    severity = Severity.ERROR


@register
class V2TypeInV1Layer(SchemaRule):
    """
    ## What it detects
    A deprecated V1 `layers { }` block whose type is written as a V2 string:
    `layers { type: "Convolution" }` instead of `type: CONVOLUTION`.

    ## Why it leads to NaN
    Caffe rejects the file (`Expected integer or identifier, got: "Convolution"`). Half-converted
    files also tend to keep V1 `blobs_lr`/`weight_decay` next to V2 fields.

    ## How to fix
    Convert the whole net to V2 `layer { }` blocks (preferred), or write the V1 enum (the fix
    does it when the type has one).

    ## Example
    `layers { type: "Convolution" }` -> `layers { type: CONVOLUTION }`
    """

    code = validate.V2_TYPE_IN_V1_LAYER
    title = "V2 layer type string in a V1 layers block"
    severity = Severity.ERROR


@register
class UnknownLayerType(SchemaRule):
    """
    ## What it detects
    A V2 layer whose type BVLC Caffe's layer registry does not know, or that has no type at
    all. Types of well-known forks (SSD's PriorBox, py-faster-rcnn's ROIPooling, SegNet's
    BN/Upsample ...) are reported as information, once per type; other unknown types as
    warnings, with the nearest known type. In a V0 (2013) net an unknown type string is an
    error: Caffe's upgrade of the file aborts (`Unknown layer name: X`).

    ## Why it leads to NaN
    BVLC Caffe aborts while building the net (`Unknown layer type: X`). A fork's layer has the
    fork's semantics: e.g. SegNet's BN layer normalises with its own statistics and epsilon,
    and loss layers of forks apply their own normalisation.

    ## How to fix
    Fix the spelling (types are case-sensitive: "Relu" is "ReLU"), or run the net with the fork
    that provides the layer.

    ## Example
    `type: "Relu"` -> `type: "ReLU"`
    """

    code = validate.UNKNOWN_LAYER_TYPE
    title = "Layer type unknown to BVLC Caffe"
    severity = Severity.WARNING
