"""NAN015: a message set without one of its required fields."""

from __future__ import annotations

from nandoctor.config import validate
from nandoctor.core.registry import register
from nandoctor.core.types import Severity
from nandoctor.rules.config._schema_rule import SchemaRule


@register
class MissingRequiredField(SchemaRule):
    """
    ## What it detects
    A message with a `required` field left out; in caffe.proto that is `clip_param`, whose
    `min` and `max` are both required.

    ## Why it leads to NaN
    Caffe rejects the file ("Message missing required fields"). A Clip layer is usually there
    to keep activations finite; configuring it wrongly removes that guard.

    ## How to fix
    Give both bounds.

    ## Example
    `clip_param { max: 6 }` -> `clip_param { min: 0 max: 6 }`
    """

    code = validate.MISSING_REQUIRED
    title = "Required field missing"
    severity = Severity.ERROR
