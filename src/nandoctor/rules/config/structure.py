"""NAN004: a block given where a single value belongs, or a value where a block belongs."""

from __future__ import annotations

from nandoctor.config import validate
from nandoctor.core.registry import register
from nandoctor.core.types import Severity
from nandoctor.rules.config._schema_rule import SchemaRule


@register
class MessageScalarMismatch(SchemaRule):
    """
    ## What it detects
    A message field written as a single value (`weight_filler: "xavier"`, `input_param shape`
    without braces), a scalar field written as a `{ ... }` block, or the list form `[a, b]`
    on a field that is not repeated.

    ## Why it leads to NaN
    Caffe rejects the file. A typical half-repair (dropping the malformed block) leaves the
    message at its defaults: a filler of constant 0, no input shape, MAX pooling with the
    default stride, each of which can end in a dead or diverging net.

    ## How to fix
    Write message fields as `name { field: value ... }` and scalar fields as `name: value`;
    repeat a non-repeated field's owner instead of listing values.

    ## Example
    `weight_filler: "xavier"` -> `weight_filler { type: "xavier" }`
    """

    code = validate.MESSAGE_SCALAR_MISMATCH
    title = "Message and scalar mixed up"
    severity = Severity.ERROR
