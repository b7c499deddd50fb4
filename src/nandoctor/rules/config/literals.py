"""NAN005-NAN007, NAN016, NAN017: literals of the wrong kind for their field's type."""

from __future__ import annotations

from nandoctor.config import validate
from nandoctor.core.registry import register
from nandoctor.core.types import Severity
from nandoctor.rules.config._schema_rule import SchemaRule


@register
class WrongLiteral(SchemaRule):
    """
    ## What it detects
    A value whose literal does not fit the field's type: a quoted number in a numeric field
    (`num_output: "4"`), a float in an integer field (`kernel_size: 3.5`, `num_output: 4e0`),
    a word in a numeric field, a number in a string field, hex or octal in a float field.

    ## Why it leads to NaN
    Caffe rejects the file. When the literal came from a generator script the same script
    may produce other numbers the wrong way (an lr of "1e-2" as a string, a truncated
    float), so check the values that did parse, too.

    ## How to fix
    Write integers as integers, floats as decimal numbers, strings in quotes. When the
    intended integer is clear (`4.0`, `4e0`, `"4"`), the fix writes it.

    ## Example
    `num_output: "4"` -> `num_output: 4`
    """

    code = validate.WRONG_LITERAL
    title = "Value of the wrong type"
    severity = Severity.ERROR


@register
class NegativeUnsigned(SchemaRule):
    """
    ## What it detects
    A negative number in an unsigned field (uint32: `num_output`, `kernel_size`, `stride`,
    `pad`, `batch_size`, `crop_size` ...).

    ## Why it leads to NaN
    Caffe rejects the file (`Expected integer, got: -`). A negative size usually comes from
    arithmetic in a generator script that also produced other wrong geometry, such as a
    pooling window larger than its input.

    ## How to fix
    Use the non-negative value that was intended; padding and sizes cannot be negative in Caffe.

    ## Example
    `num_output: -4` -> `num_output: 4`
    """

    code = validate.NEGATIVE_UNSIGNED
    title = "Negative number in an unsigned field"
    severity = Severity.ERROR


@register
class IntegerOutOfRange(SchemaRule):
    """
    ## What it detects
    An integer that does not fit its field's type (int32, uint32, int64, uint64, or an enum).

    ## Why it leads to NaN
    Caffe rejects the file. Numbers this large in a net are typos (an extra digit) or
    overflowed computations; the same values in a solver (`max_iter`, `stepsize`) would
    change the learning-rate schedule entirely.

    ## How to fix
    Write the intended value; 32-bit fields hold at most 2147483647 (signed) or 4294967295 (unsigned).

    ## Example
    `num_output: 4294967296` -> `num_output: 4096`
    """

    code = validate.INTEGER_OUT_OF_RANGE
    title = "Integer out of range"
    severity = Severity.ERROR


@register
class UnquotedString(SchemaRule):
    """
    ## What it detects
    A string field whose value is written without quotes: `lr_policy: step`,
    `source: train_lmdb`, `name: conv1`.

    ## Why it leads to NaN
    Caffe rejects the file (`Expected string, got: step`). If the quotes are "fixed" by
    deleting the line, a solver falls back to `lr_policy` "" (Caffe aborts at the first
    update) or a layer loses its name.

    ## How to fix
    Put the value in double quotes (the fix does it).

    ## Example
    `lr_policy: step` -> `lr_policy: "step"`
    """

    code = validate.UNQUOTED_STRING
    title = "String value without quotes"
    severity = Severity.ERROR


@register
class QuotedEnum(SchemaRule):
    """
    ## What it detects
    An enum field whose value is written as a quoted string: `pool: "MAX"`, `phase: "TRAIN"`,
    `backend: "LMDB"`, `solver_mode: "GPU"`.

    ## Why it leads to NaN
    Caffe rejects the file (`Expected integer or identifier`). Enums select behaviour
    (pooling method, phase, norm region), and a wrong guess when repairing changes the net.

    ## How to fix
    Write the enum value bare, without quotes (the fix does it when the name is valid).

    ## Example
    `pool: "AVE"` -> `pool: AVE`
    """

    code = validate.QUOTED_ENUM
    title = "Enum value written as a string"
    severity = Severity.ERROR
