"""Judge one scalar literal against its field's type, in protobuf's words.

``judge(field, value, spec, message_type)`` returns None when protobuf's text parser
would accept the literal, else a :class:`Problem`: the rule code, a sentence for
people, the position and words protobuf reports, and, when the intent is clear, the
text to write instead. protobuf's readers differ in one detail that matters for the
position: the numeric and enum readers consume a leading ``-`` before they complain,
the string and boolean readers do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nandoctor.config import schema
from nandoctor.config.schema_problems import (
    BAD_BOOLEAN,
    INTEGER_OUT_OF_RANGE,
    NEGATIVE_UNSIGNED,
    QUOTED_ENUM,
    UNKNOWN_ENUM_VALUE,
    UNQUOTED_STRING,
    V1_TYPE_IN_V2_LAYER,
    V2_TYPE_IN_V1_LAYER,
    WRONG_LITERAL,
    nearest,
)
from nandoctor.config.tree import Pos, Scalar

_INT_TYPES = frozenset(schema.INT_RANGES)
_UNSIGNED = frozenset(("uint32", "uint64", "fixed32", "fixed64"))
_TRUE = ("true", "True", "t")
_FALSE = ("false", "False", "f")
_BOOL_GUESS = {"yes": "true", "on": "true", "y": "true", "no": "false", "off": "false", "n": "false"}
_INT32 = (-(2**31), 2**31 - 1)


@dataclass(frozen=True, slots=True)
class Problem:
    code: str
    message: str
    pos: Pos  # where protobuf reports it
    protobuf: str  # what protobuf says
    replacement: str | None = None  # text to write instead of the literal, when the intent is clear
    fix: str | None = None  # the fix for people (defaults to "Write <replacement>.")
    safe: bool = True
    culprit: str | None = None  # defaults to the field name


def expected_word(type_name: str) -> str:
    """The word in protobuf's ``Expected <word>, got: X`` for a value of this type."""
    if type_name in _INT_TYPES:
        return "integer"
    if type_name in ("float", "double"):
        return "double"
    if type_name in ("string", "bytes"):
        return "string"
    if type_name == "bool":
        return "identifier"
    return "integer or identifier"


def value_token(v: Scalar) -> tuple[Pos, str]:
    """Where a numeric or enum reader complains about a literal, and the token it shows
    (after a ``-`` it has already consumed the sign and points at the next token)."""
    if v.negative and v.body is not None:
        return v.body, v.text[1:].strip()
    return v.start, v.first_token


def judge(name: str, v: Scalar, spec: schema.FieldSpec, mtype: str) -> Problem | None:
    t = spec.type
    if t in _INT_TYPES:
        return _integer(name, v, t)
    if t in ("float", "double"):
        return _floating(name, v)
    if t in ("string", "bytes"):
        return _string(name, v, mtype)
    if t == "bool":
        return _boolean(name, v)
    if schema.is_enum(t):
        return _enum(name, v, t, mtype)
    return None


def _wrong(name: str, v: Scalar, word: str, what: str, replacement: str | None = None, **kw: Any) -> Problem:
    pos, token = value_token(v)
    return Problem(WRONG_LITERAL, f"`{name}` expects {what}, got `{v.text}`", pos, f"Expected {word}, got: {token}",
                   replacement, **kw)  # fmt: skip


def _integer(name: str, v: Scalar, t: str) -> Problem | None:
    lo, hi = schema.INT_RANGES[t]
    if v.negative and t in _UNSIGNED:
        return Problem(NEGATIVE_UNSIGNED, f"`{name}` is unsigned ({t}); it cannot be {v.text}", v.start,
                       "Expected integer, got: -")  # fmt: skip
    if v.kind != "int":
        new = _integral(v, lo, hi)
        return _wrong(name, v, "integer", f"an integer ({t})", new, fix=f"Write the integer {new}." if new else None)
    if not lo <= v.value <= hi:
        pos, token = value_token(v)
        return Problem(INTEGER_OUT_OF_RANGE, f"`{name}` is {t}: {v.text} is outside [{lo}, {hi}]", pos,
                       f"Integer out of range ({token})")  # fmt: skip
    return None


def _integral(v: Scalar, lo: int, hi: int) -> str | None:
    # 4.0 / 4e0 / "4" mean an integer: offer it; 3.5 needs a decision we cannot make.
    raw: Any = v.value
    if v.kind == "string":
        try:
            raw = float(v.value.strip())
        except ValueError:
            return None
    if not isinstance(raw, float) or not raw.is_integer() or not lo <= raw <= hi:
        return None
    return str(int(raw))


def _floating(name: str, v: Scalar) -> Problem | None:
    body = v.text.lstrip("-").strip()
    pos, _ = value_token(v)
    if v.kind == "int" and (body[:2].lower() == "0x" or (len(body) > 1 and body[0] == "0")):
        return Problem(WRONG_LITERAL, f"`{name}` is a float; write it in decimal, not `{body}`", pos,
                       f"Expect a decimal number, got: {body}")  # fmt: skip
    if v.kind == "ident" and v.value.lower() not in ("inf", "infinity", "nan"):
        return Problem(WRONG_LITERAL, f"`{name}` expects a number, got `{v.text}`", pos,
                       f"Expected double, got: {v.value.lower()}")  # fmt: skip
    if v.kind == "string":
        try:
            float(v.value.strip())
        except ValueError:
            return _wrong(name, v, "double", "a number")
        return _wrong(name, v, "double", "a number", v.value.strip(), fix="Remove the quotes.")
    return None


def _string(name: str, v: Scalar, mtype: str) -> Problem | None:
    if v.kind == "string":
        return None
    quoted = f'"{v.text}"'
    if v.kind == "ident" and not v.negative:
        if name == "type" and mtype == "LayerParameter" and v.value in schema.V1_TYPE_TO_V2:
            new = f'"{schema.V1_TYPE_TO_V2[v.value]}"'
            return Problem(
                V1_TYPE_IN_V2_LAYER,
                f"`type: {v.value}` is the V1 enum spelling inside a V2 `layer` block; "
                f"V2 layers name their type as a string: {new}",
                v.start,
                f"Expected string, got: {v.value}",
                new,
                fix=f"Write `type: {new}`.",
                culprit=v.value,
            )
        return Problem(UNQUOTED_STRING, f"`{name}` is a string; quote it: {quoted}", v.start,
                       f"Expected string, got: {v.value}", quoted)  # fmt: skip
    # the string reader takes no sign: it complains at the literal's first token, '-' included
    return Problem(WRONG_LITERAL, f"`{name}` expects a quoted string, got `{v.text}`", v.start,
                   f"Expected string, got: {v.first_token}", quoted, safe=False)  # fmt: skip


def _boolean(name: str, v: Scalar) -> Problem | None:
    if v.kind == "int" and not v.negative:
        if v.value > 1:
            return Problem(BAD_BOOLEAN, f"`{name}` is a boolean; {v.text} is neither 0 nor 1", v.start,
                           f"Integer out of range ({v.text})")  # fmt: skip
        return None
    if v.kind == "ident" and not v.negative:
        if v.value in _TRUE or v.value in _FALSE:
            return None
        low = v.value.lower()
        guess = _BOOL_GUESS.get(low) or (low if low in _TRUE + _FALSE else None)
        return Problem(
            BAD_BOOLEAN,
            f"`{name}` is a boolean: write true or false, not `{v.value}`",
            v.after or v.start,
            f'Invalid value for boolean field "{name}". Value: "{v.value}".',
            guess,
        )
    unquoted = v.value if v.kind == "string" and v.value in _TRUE + _FALSE else None
    return Problem(BAD_BOOLEAN, f"`{name}` is a boolean: write true or false, not `{v.text}`", v.start,
                   f"Expected identifier, got: {v.first_token}", unquoted,
                   fix=f"Write `{unquoted}` without quotes." if unquoted else None)  # fmt: skip


def _enum(name: str, v: Scalar, t: str, mtype: str) -> Problem | None:
    values = schema.ENUMS[t]
    if v.kind == "ident" and not v.negative:
        return None if v.value in values else _unknown_enum(name, v, t, v.value)
    if v.kind == "int":
        if not _INT32[0] <= v.value <= _INT32[1]:
            pos, token = value_token(v)
            return Problem(INTEGER_OUT_OF_RANGE, f"`{name}` is an enum; {v.text} is not a valid number", pos,
                           f"Integer out of range ({token})")  # fmt: skip
        return None if v.value in values.values() else _unknown_enum(name, v, t, str(v.value))
    if v.negative:  # '-' then a float or a name: protobuf wanted an integer after the sign
        return _wrong(name, v, "integer", f"a {t} value")
    if v.kind == "string":
        return _quoted_enum(name, v, t, mtype)
    return _wrong(name, v, "integer or identifier", f"a {t} value ({', '.join(values)})")


def _unknown_enum(name: str, v: Scalar, t: str, shown: str) -> Problem:
    valid = ", ".join(f"{n}={number}" for n, number in schema.ENUMS[t].items())
    message = f"`{shown}` is not a value of {t} (valid: {valid})"
    suggestion = nearest(shown, list(schema.ENUMS[t])) if not shown.lstrip("-").isdigit() else None
    if suggestion is not None:
        message += f"; did you mean {suggestion}?"
    return Problem(UNKNOWN_ENUM_VALUE, message, v.after or v.start,
                   f'Unknown enumeration value of "{shown}" for field "{name}".', suggestion,
                   safe=suggestion is not None and suggestion.lower() == shown.lower())  # fmt: skip


def _quoted_enum(name: str, v: Scalar, t: str, mtype: str) -> Problem:
    protobuf = f"Expected integer or identifier, got: {v.first_token}"
    if name == "type" and mtype == "V1LayerParameter":
        v1 = schema.V2_TO_V1_TYPE.get(v.value)
        message = f'`type: "{v.value}"` is the V2 string spelling inside a V1 `layers` block'
        if v1 is not None:
            message += f"; V1 layers use the enum {v1} (or convert the file to `layer` blocks)"
        else:
            message += "; this type has no V1 enum, convert the net to V2 `layer` blocks"
        return Problem(V2_TYPE_IN_V1_LAYER, message, v.start, protobuf, v1,
                       fix=f"Write `type: {v1}`." if v1 else None, culprit=v.value)  # fmt: skip
    bare = v.value if v.value in schema.ENUMS[t] else None
    return Problem(QUOTED_ENUM, f"`{name}` is an enum ({t}); enum values are written without quotes", v.start,
                   protobuf, bare, fix=f"Write `{bare}` without quotes." if bare else None)  # fmt: skip
