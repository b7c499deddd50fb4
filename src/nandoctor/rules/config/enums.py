"""NAN008: an enum value the enum does not have."""

from __future__ import annotations

from nandoctor.config import validate
from nandoctor.core.registry import register
from nandoctor.core.types import Severity
from nandoctor.rules.config._schema_rule import SchemaRule


@register
class UnknownEnumValue(SchemaRule):
    """
    ## What it detects
    An enum field set to a name or number the enum lacks: `pool: AVERAGE` (the value is
    `AVE`), `solver_mode: cpu` (enum names are case-sensitive: `CPU`), `pool: 7`.

    ## Why it leads to NaN
    Caffe rejects the file. Choosing the replacement matters: `pool: AVE` and `pool: MAX`
    behave very differently on empty pooling windows (AVE divides by zero and yields NaN,
    MAX yields -FLT_MAX).

    ## How to fix
    Use one of the listed names; the fix offers the nearest one.

    ## Example
    `pool: AVERAGE` -> `pool: AVE`
    """

    code = validate.UNKNOWN_ENUM_VALUE
    title = "Unknown enum value"
    severity = Severity.ERROR
