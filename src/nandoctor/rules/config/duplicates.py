"""NAN010: a non-repeated field given more than once."""

from __future__ import annotations

from nandoctor.config import validate
from nandoctor.core.registry import register
from nandoctor.core.types import Severity
from nandoctor.rules.config._schema_rule import SchemaRule


@register
class DuplicateField(SchemaRule):
    """
    ## What it detects
    A field that is not repeated in caffe.proto but appears twice in the same message: two
    `name`s in a layer, `kernel_size` twice in `pooling_param`. (Repeated fields such as
    `kernel_size` in `convolution_param`, `top`, `bottom`, `stepvalue` may repeat.)

    ## Why it leads to NaN
    Caffe rejects the file (`Non-repeated field "kernel_size" is specified multiple times`);
    it does not take the last value. Two values usually mean a copy-paste edit where only one
    of them is the intended geometry or rate.

    ## How to fix
    Keep one of the values. For per-dimension pooling use `kernel_h`/`kernel_w`.

    ## Example
    `pooling_param { kernel_size: 3 kernel_size: 5 }` -> `pooling_param { kernel_h: 3 kernel_w: 5 }`
    """

    code = validate.DUPLICATE_FIELD
    title = "Non-repeated field given twice"
    severity = Severity.ERROR
