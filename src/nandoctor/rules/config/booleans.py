"""NAN009: a boolean field with a value protobuf does not read as a boolean."""

from __future__ import annotations

from nandoctor.config import validate
from nandoctor.core.registry import register
from nandoctor.core.types import Severity
from nandoctor.rules.config._schema_rule import SchemaRule


@register
class BadBoolean(SchemaRule):
    """
    ## What it detects
    A boolean field set to something other than `true`/`false` (`True`/`False`, `t`/`f`,
    `1`/`0` are accepted too): `global_pooling: yes`, `mirror: "true"`, `bias_term: 2`.

    ## Why it leads to NaN
    Caffe rejects the file. Booleans in Caffe nets switch behaviour that matters for NaN
    (`use_global_stats` in BatchNorm, `global_pooling`, `bias_term`); a repair that drops
    the line silently takes the default.

    ## How to fix
    Write `true` or `false`; the fix maps yes/no/on/off.

    ## Example
    `global_pooling: yes` -> `global_pooling: true`
    """

    code = validate.BAD_BOOLEAN
    title = "Invalid boolean value"
    severity = Severity.ERROR
