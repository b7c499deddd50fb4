"""NAN002: a field caffe.proto does not define."""

from __future__ import annotations

from nandoctor.config import validate
from nandoctor.core.registry import register
from nandoctor.core.types import Severity
from nandoctor.rules.config._schema_rule import SchemaRule


@register
class UnknownField(SchemaRule):
    """
    ## What it detects
    A field that the message it appears in does not have in BVLC Caffe's caffe.proto,
    e.g. `kernel` inside `pooling_param` (the field is `kernel_size`), `lr_mult` written
    directly in a `layer` instead of inside `param { }`, or a field name with the wrong
    case. The finding names the nearest valid field and sits where protobuf reports it.

    ## Why it leads to NaN
    Caffe refuses the whole file (`Message type "caffe.PoolingParameter" has no field named
    "kernel"`). The danger is the repair: deleting the line instead of renaming it leaves the
    field at its default, and some defaults are exactly what makes a run go NaN (an AVE pooling
    whose last window is empty, a zero filler, an lr of 0).

    ## How to fix
    Rename the field to the suggested one (the fix does it), or move it into the message
    that owns it. If the file was written for a fork of Caffe, run it with that fork.

    ## Example
    `pooling_param { pool: AVE stride: 5 kernel: 3 }` -> `pooling_param { pool: AVE stride: 5 kernel_size: 3 }`
    """

    code = validate.UNKNOWN_FIELD
    title = "Field not defined by caffe.proto"
    severity = Severity.ERROR
