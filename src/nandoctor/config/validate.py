"""Check a parsed prototxt against caffe.proto the way protobuf's text parser does.

``validate(doc, root)`` walks the Message tree of ``doc`` as a ``root``
("NetParameter" or "SolverParameter") and returns one Finding per problem, sorted
by position. Every finding that protobuf would reject sits at the exact
``line:col`` protobuf reports and carries, as evidence, the line Caffe prints
(``Error parsing text-format caffe.NetParameter: 4:45: Message type ...``).
Caffe stops at its first error; we report them all, and the first one is Caffe's.

Each kind of problem belongs to one rule (codes below); the rules in
``nandoctor.rules.config`` only filter this list, so the tree is walked once per
document (``validate_cached``).

Fields a well-known fork adds are reported once per field as info: BVLC rejects
the file, the fork it was written for does not. What lies inside a fork's own
messages (``bn_param { ... }``) is unknown to us and left alone.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace
from typing import Any

from nandoctor.config import schema
from nandoctor.config.textformat import Document, Field, Message, Pos, Scalar
from nandoctor.core.types import Cause, Edit, Evidence, Finding, Fix, Location, Severity

UNKNOWN_FIELD = "NAN002"
FORK_EXTENSION = "NAN003"
MESSAGE_SCALAR_MISMATCH = "NAN004"
WRONG_LITERAL = "NAN005"
NEGATIVE_UNSIGNED = "NAN006"
INTEGER_OUT_OF_RANGE = "NAN007"
UNKNOWN_ENUM_VALUE = "NAN008"
BAD_BOOLEAN = "NAN009"
DUPLICATE_FIELD = "NAN010"
V1_TYPE_IN_V2_LAYER = "NAN011"
V2_TYPE_IN_V1_LAYER = "NAN012"
MIXED_LAYER_FORMATS = "NAN013"
UNKNOWN_LAYER_TYPE = "NAN014"
MISSING_REQUIRED = "NAN015"
UNQUOTED_STRING = "NAN016"
QUOTED_ENUM = "NAN017"
IGNORED_PARAM_BLOCK = "NAN018"

# Codes whose findings mean BVLC Caffe refuses the file (fork extensions included).
REJECTING_CODES = frozenset(
    (UNKNOWN_FIELD, FORK_EXTENSION, MESSAGE_SCALAR_MISMATCH, WRONG_LITERAL, NEGATIVE_UNSIGNED,
     INTEGER_OUT_OF_RANGE, UNKNOWN_ENUM_VALUE, BAD_BOOLEAN, DUPLICATE_FIELD, V1_TYPE_IN_V2_LAYER,
     V2_TYPE_IN_V1_LAYER, MIXED_LAYER_FORMATS, MISSING_REQUIRED, UNQUOTED_STRING, QUOTED_ENUM)
)  # fmt: skip

# When Caffe meets each problem: protobuf stops at the first parse error (by position), checks
# required fields after parsing, then Caffe upgrades old formats, then builds the net.
_STAGE_PARSE, _STAGE_PARSE_END, _STAGE_UPGRADE, _STAGE_NET = range(4)

_INT_TYPES = frozenset(schema.INT_RANGES)
_UNSIGNED = frozenset(("uint32", "uint64", "fixed32", "fixed64"))
_TRUE = ("true", "True", "t")
_FALSE = ("false", "False", "f")
_BOOL_GUESS = {"yes": "true", "on": "true", "y": "true", "no": "false", "off": "false", "n": "false"}


def _expected_word(type_name: str) -> str:
    """What protobuf says it expected for a value of this type ("Expected integer, got: X")."""
    if type_name in _INT_TYPES:
        return "integer"
    if type_name in ("float", "double"):
        return "double"
    if type_name in ("string", "bytes"):
        return "string"
    if type_name == "bool":
        return "identifier"
    return "integer or identifier"


@dataclass
class _Walk:
    doc: Document
    root: str
    findings: list[Finding]
    forks_seen: dict[tuple[str, str], Finding]  # one info finding per fork field ...
    fork_types_seen: dict[str, Finding]  # ... and per fork layer type, counting occurrences
    missing: list[str] = field(default_factory=list)  # protobuf paths of unset required fields

    # -- reporting --------------------------------------------------------------------------
    def report(
        self,
        code: str,
        message: str,
        pos: Pos,
        protobuf: str | None,
        *,
        severity: Severity = Severity.ERROR,
        fix: Fix | None = None,
        culprit: str | None = None,
        evidence: list[Evidence] | None = None,
        data: dict[str, Any] | None = None,
    ) -> Finding:
        loc = Location(self.doc.path, pos.line, pos.col)
        ev = list(evidence or [])
        extra = dict(data or {})
        if protobuf is not None:
            line = f"Error parsing text-format caffe.{self.root}: {pos.line}:{pos.col}: {protobuf}"
            ev.insert(0, Evidence(line, loc, "prototxt"))
            extra["protobuf_message"] = protobuf
        finding = Finding(code, severity, Cause.UNKNOWN, message, loc, tuple(ev), fix, culprit, extra)
        self.findings.append(finding)
        return finding

    def edit(self, start: int, end: int, new: str, pos: Pos) -> Edit:
        return Edit(self.doc.path, start, end, self.doc.text[start:end], new, pos.line, pos.col)

    # -- the walk ---------------------------------------------------------------------------
    def message(self, msg: Message, mtype: str, path: str) -> None:
        spec = schema.MESSAGES[mtype]
        fields = msg.fields
        if msg.empty_lists:
            fields = sorted([*msg.fields, *msg.empty_lists], key=lambda f: f.name_pos.offset)
        seen: dict[str, Field] = {}
        counts: dict[str, int] = {}
        for f in fields:
            fspec = spec.fields.get(f.name)
            if fspec is None:
                fspec = self.unknown_field(f, mtype)
                if fspec is None:
                    continue
            index = counts.get(f.name, 0)
            if not (isinstance(f.value, Scalar) and f.value.kind == "empty_list"):
                counts[f.name] = index + 1
            if not fspec.repeated:
                first = seen.get(f.name)
                if first is not None and (f.list_pos is None or first.list_pos is not f.list_pos):
                    self.duplicate(f, mtype)
                seen.setdefault(f.name, f)
            where = f"{path}{f.name}[{index}]" if fspec.repeated else f"{path}{f.name}"
            self.field(f, fspec, mtype, where)
        self.required(msg, spec, path)
        if mtype in ("LayerParameter", "V1LayerParameter"):
            self.ignored_params(msg, mtype)
        if mtype == "LayerParameter":
            self.layer_type(msg)
        elif mtype == "NetParameter":
            self.layer_formats(msg)

    def unknown_field(self, f: Field, mtype: str) -> schema.FieldSpec | None:
        """Report a field the message lacks; returns the fork's spec when a fork defines it."""
        pos = f.after_name
        protobuf = f'Message type "caffe.{mtype}" has no field named "{f.name}".'
        fork = schema.fork_field(mtype, f.name)
        if fork is not None:
            name, fspec = fork
            key = (mtype, f.name)
            earlier = self.forks_seen.get(key)
            if earlier is not None:
                earlier.data["occurrences"] += 1
            else:
                self.forks_seen[key] = self.report(
                    FORK_EXTENSION,
                    f"{mtype}.{f.name} is a fork extension from {name}; BVLC Caffe rejects this file, "
                    "your fork must provide it",
                    pos,
                    protobuf,
                    severity=Severity.INFO,
                    culprit=f.name,
                    data={"fork": name, "message": mtype, "field": f.name, "occurrences": 1},
                )
            if fspec.type == schema.UNKNOWN_TYPE or (
                schema.is_message(fspec.type) and fspec.type not in schema.MESSAGES
            ):
                return None  # the fork's own message or enum: nothing we can check
            return fspec
        names = list(schema.MESSAGES[mtype].fields)
        suggestion = _nearest(f.name, names)
        message = f"Caffe has no field `{f.name}` in {mtype}"
        fix = None
        if suggestion is not None:
            message += f"; did you mean `{suggestion}`?"
            start = f.name_pos.offset
            edit = self.edit(start, start + len(f.name), suggestion, f.name_pos)
            case_only = suggestion.lower() == f.name.lower()
            fix = Fix(f"Rename `{f.name}` to `{suggestion}`.", (edit,), safe=case_only)
        else:
            message += f" (its fields: {', '.join(names)})"
        self.report(UNKNOWN_FIELD, message, pos, protobuf, fix=fix, culprit=f.name,
                    data={"message": mtype, "field": f.name, "suggestion": suggestion})  # fmt: skip
        return None

    def duplicate(self, f: Field, mtype: str) -> None:
        self.report(
            DUPLICATE_FIELD,
            f"`{f.name}` is set more than once in {mtype}, but it is not a repeated field",
            f.after_name,
            f'Non-repeated field "{f.name}" is specified multiple times.',
            fix=Fix(f"Keep one `{f.name}` (protobuf refuses the second, it does not take the last one)."),
            culprit=f.name,
        )

    def field(self, f: Field, fspec: schema.FieldSpec, mtype: str, path: str) -> None:
        value = f.value
        is_msg_type = schema.is_message(fspec.type)
        if f.list_pos is not None and not fspec.repeated:
            # every element of the list is its own Field: validate() keeps one report per '['
            found = "[" if is_msg_type else None
            protobuf = 'Expected "{", found "[".' if found else f"Expected {_expected_word(fspec.type)}, got: ["
            self.report(MESSAGE_SCALAR_MISMATCH, f"`{f.name}` is not repeated; it cannot take a [list]",
                        f.list_pos, protobuf, culprit=f.name)  # fmt: skip
            return
        if isinstance(value, Scalar) and value.kind == "empty_list":
            return
        if is_msg_type:
            if isinstance(value, Message):
                if fspec.type in schema.MESSAGES:
                    self.message(value, fspec.type, path + ".")
                return
            self.report(
                MESSAGE_SCALAR_MISMATCH,
                f"`{f.name}` is a {fspec.type} message; write `{f.name} {{ ... }}`, not a single value",
                value.start,
                f'Expected "{{", found "{value.first_token}".',
                culprit=f.name,
            )
            return
        if isinstance(value, Message):
            assert value.start is not None
            if f.colon:
                pos, protobuf = value.start, f"Expected {_expected_word(fspec.type)}, got: {_opener(self.doc, value)}"
            else:
                pos = f.after_name
                protobuf = f'Expected ":", found "{self.doc.text[pos.offset]}".'
            self.report(MESSAGE_SCALAR_MISMATCH,
                        f"`{f.name}` takes a single {_type_word(fspec.type)} value, not a {{ ... }} block",
                        pos, protobuf, culprit=f.name)  # fmt: skip
            return
        self.scalar(f, value, fspec, mtype)

    # -- scalar values ----------------------------------------------------------------------
    def scalar(self, f: Field, v: Scalar, fspec: schema.FieldSpec, mtype: str) -> None:
        t = fspec.type
        if t in _INT_TYPES:
            self.integer(f, v, t)
        elif t in ("float", "double"):
            self.floating(f, v)
        elif t in ("string", "bytes"):
            self.string(f, v, mtype)
        elif t == "bool":
            self.boolean(f, v)
        elif schema.is_enum(t):
            self.enum(f, v, t, mtype)

    def wrong(self, f: Field, v: Scalar, word: str, what: str, fix: Fix | None = None, signed: bool = True) -> None:
        # Numeric and enum readers consume a leading '-' before complaining; the others do not.
        pos, token = _value_token(v) if signed else (v.start, v.first_token)
        self.report(WRONG_LITERAL, f"`{f.name}` expects {what}, got `{v.text}`", pos,
                    f"Expected {word}, got: {token}", fix=fix, culprit=f.name)  # fmt: skip

    def integer(self, f: Field, v: Scalar, t: str) -> None:
        lo, hi = schema.INT_RANGES[t]
        if v.negative and t in _UNSIGNED:
            self.report(NEGATIVE_UNSIGNED, f"`{f.name}` is unsigned ({t}); it cannot be {v.text}", v.start,
                        "Expected integer, got: -", culprit=f.name)  # fmt: skip
            return
        if v.kind != "int":
            self.wrong(f, v, "integer", f"an integer ({t})", self.integer_fix(v, lo, hi))
            return
        if not lo <= v.value <= hi:
            pos, token = _value_token(v)
            self.report(INTEGER_OUT_OF_RANGE, f"`{f.name}` is {t}: {v.text} is outside [{lo}, {hi}]", pos,
                        f"Integer out of range ({token})", culprit=f.name)  # fmt: skip

    def integer_fix(self, v: Scalar, lo: int, hi: int) -> Fix | None:
        # 4.0 / 4e0 / "4" mean an integer: offer it; 3.5 needs a decision we cannot make.
        raw: Any = v.value
        if v.kind == "string":
            try:
                raw = float(v.value.strip())
            except ValueError:
                return None
        if not isinstance(raw, float) or not raw.is_integer() or not lo <= raw <= hi:
            return None
        new = str(int(raw))
        return Fix(f"Write the integer {new}.", (self.edit(v.start.offset, v.end, new, v.start),))

    def floating(self, f: Field, v: Scalar) -> None:
        body = v.text.lstrip("-").strip()
        if v.kind == "int" and (body[:2].lower() == "0x" or (len(body) > 1 and body[0] == "0")):
            pos, _ = _value_token(v)
            self.report(WRONG_LITERAL, f"`{f.name}` is a float; write it in decimal, not `{body}`", pos,
                        f"Expect a decimal number, got: {body}", culprit=f.name)  # fmt: skip
        elif v.kind == "ident" and v.value.lower() not in ("inf", "infinity", "nan"):
            pos, _ = _value_token(v)
            self.report(WRONG_LITERAL, f"`{f.name}` expects a number, got `{v.text}`", pos,
                        f"Expected double, got: {v.value.lower()}", culprit=f.name)  # fmt: skip
        elif v.kind == "string":
            fix = None
            try:
                float(v.value.strip())
                fix = Fix("Remove the quotes.", (self.edit(v.start.offset, v.end, v.value.strip(), v.start),))
            except ValueError:
                pass
            self.wrong(f, v, "double", "a number", fix)

    def string(self, f: Field, v: Scalar, mtype: str) -> None:
        if v.kind == "string":
            return
        quoted = f'"{v.text}"'
        if v.kind == "ident" and not v.negative:
            if f.name == "type" and mtype == "LayerParameter" and v.value in schema.V1_TYPE_TO_V2:
                new = f'"{schema.V1_TYPE_TO_V2[v.value]}"'
                edit = self.edit(v.start.offset, v.end, new, v.start)
                self.report(
                    V1_TYPE_IN_V2_LAYER,
                    f"`type: {v.value}` is the V1 enum spelling inside a V2 `layer` block; "
                    f"V2 layers name their type as a string: {new}",
                    v.start,
                    f"Expected string, got: {v.value}",
                    fix=Fix(f"Write `type: {new}`.", (edit,)),
                    culprit=v.value,
                )
                return
            edit = self.edit(v.start.offset, v.end, quoted, v.start)
            self.report(UNQUOTED_STRING, f"`{f.name}` is a string; quote it: {quoted}", v.start,
                        f"Expected string, got: {v.value}", fix=Fix(f"Write {quoted}.", (edit,)),
                        culprit=f.name)  # fmt: skip
            return
        edit = self.edit(v.start.offset, v.end, quoted, v.start)
        self.wrong(f, v, "string", "a quoted string", Fix(f"Write {quoted}.", (edit,), safe=False), signed=False)

    def boolean(self, f: Field, v: Scalar) -> None:
        if v.kind == "int" and not v.negative:
            if v.value > 1:
                self.report(BAD_BOOLEAN, f"`{f.name}` is a boolean; {v.text} is neither 0 nor 1", v.start,
                            f"Integer out of range ({v.text})", culprit=f.name)  # fmt: skip
            return
        if v.kind == "ident" and not v.negative:
            if v.value in _TRUE or v.value in _FALSE:
                return
            guess = _BOOL_GUESS.get(v.value.lower()) or (v.value.lower() if v.value.lower() in _TRUE + _FALSE else None)
            fix = None
            if guess is not None:
                fix = Fix(f"Write `{guess}`.", (self.edit(v.start.offset, v.end, guess, v.start),))
            self.report(
                BAD_BOOLEAN,
                f"`{f.name}` is a boolean: write true or false, not `{v.value}`",
                v.after or v.start,
                f'Invalid value for boolean field "{f.name}". Value: "{v.value}".',
                fix=fix,
                culprit=f.name,
            )
            return
        fix = None
        if v.kind == "string" and v.value in _TRUE + _FALSE:
            fix = Fix(f"Write `{v.value}` without quotes.", (self.edit(v.start.offset, v.end, v.value, v.start),))
        self.report(BAD_BOOLEAN, f"`{f.name}` is a boolean: write true or false, not `{v.text}`", v.start,
                    f"Expected identifier, got: {v.first_token}", fix=fix, culprit=f.name)  # fmt: skip

    def enum(self, f: Field, v: Scalar, t: str, mtype: str) -> None:
        values = schema.ENUMS[t]
        if v.kind == "ident" and not v.negative:
            if v.value not in values:
                self.unknown_enum(f, v, t, v.value)
            return
        if v.kind == "int":
            pos, token = _value_token(v)
            if not -(2**31) <= v.value <= 2**31 - 1:
                self.report(INTEGER_OUT_OF_RANGE, f"`{f.name}` is an enum; {v.text} is not a valid number",
                            pos, f"Integer out of range ({token})", culprit=f.name)  # fmt: skip
            elif v.value not in values.values():
                self.unknown_enum(f, v, t, str(v.value))
            return
        if v.negative:  # '-' then a float or a name: protobuf wanted an integer after the sign
            self.wrong(f, v, "integer", f"a {t} value")
            return
        if v.kind == "string":
            self.quoted_enum(f, v, t, mtype)
            return
        self.wrong(f, v, "integer or identifier", f"a {t} value ({', '.join(values)})")

    def unknown_enum(self, f: Field, v: Scalar, t: str, shown: str) -> None:
        names = list(schema.ENUMS[t])
        suggestion = _nearest(shown, names) if not shown.lstrip("-").isdigit() else None
        fix = None
        valid = ", ".join(f"{n}={number}" for n, number in schema.ENUMS[t].items())
        message = f"`{shown}` is not a value of {t} (valid: {valid})"
        if suggestion is not None:
            message += f"; did you mean {suggestion}?"
            fix = Fix(f"Write `{suggestion}`.", (self.edit(v.start.offset, v.end, suggestion, v.start),),
                      safe=suggestion.lower() == shown.lower())  # fmt: skip
        self.report(UNKNOWN_ENUM_VALUE, message, v.after or v.start,
                    f'Unknown enumeration value of "{shown}" for field "{f.name}".', fix=fix,
                    culprit=f.name)  # fmt: skip

    def quoted_enum(self, f: Field, v: Scalar, t: str, mtype: str) -> None:
        protobuf = f"Expected integer or identifier, got: {v.first_token}"
        if f.name == "type" and mtype == "V1LayerParameter":
            v1 = schema.V2_TO_V1_TYPE.get(v.value)
            fix = None
            message = f'`type: "{v.value}"` is the V2 string spelling inside a V1 `layers` block'
            if v1 is not None:
                message += f"; V1 layers use the enum {v1} (or convert the file to `layer` blocks)"
                fix = Fix(f"Write `type: {v1}`.", (self.edit(v.start.offset, v.end, v1, v.start),))
            else:
                message += "; this type has no V1 enum, convert the net to V2 `layer` blocks"
            self.report(V2_TYPE_IN_V1_LAYER, message, v.start, protobuf, fix=fix, culprit=v.value)
            return
        fix = None
        if v.value in schema.ENUMS[t]:
            fix = Fix(f"Write `{v.value}` without quotes.", (self.edit(v.start.offset, v.end, v.value, v.start),))
        self.report(QUOTED_ENUM, f"`{f.name}` is an enum ({t}); enum values are written without quotes",
                    v.start, protobuf, fix=fix, culprit=f.name)  # fmt: skip

    # -- whole-message checks ---------------------------------------------------------------
    def required(self, msg: Message, spec: schema.MessageSpec, path: str) -> None:
        for fspec in spec.fields.values():
            if fspec.required and not msg.has(fspec.name):
                pos = msg.start or Pos(1, 1, 0)
                self.report(
                    MISSING_REQUIRED,
                    f"{spec.name} requires `{fspec.name}`, which is not set",
                    pos,
                    None,
                    culprit=fspec.name,
                    data={"caffe_stage": _STAGE_PARSE_END},
                )
                self.missing.append(f"{path}{fspec.name}")

    def missing_required_evidence(self) -> None:
        """protobuf checks required fields after parsing and names them all in one line, without a position."""
        if not self.missing:
            return
        words = "Message missing required fields: " + ", ".join(self.missing)
        line = Evidence(f"Error parsing text-format caffe.{self.root}: {words}", None, "prototxt")
        for index, f in enumerate(self.findings):
            if f.code == MISSING_REQUIRED:
                self.findings[index] = replace(
                    f, evidence=(line, *f.evidence), data={**f.data, "protobuf_message": words}
                )

    def layer_type(self, layer: Message) -> None:
        f = layer.last("type")
        if f is None:
            name = layer.get("name")
            self.report(
                UNKNOWN_LAYER_TYPE,
                f"layer {name!r} has no type; Caffe cannot create it" if name else "a layer has no type",
                layer.start or Pos(1, 1, 0),
                None,
                severity=Severity.WARNING,
                evidence=[Evidence("Unknown layer type:  (known types: ...)", None, "computed")],
                culprit=name if isinstance(name, str) else None,
                data={"caffe_stage": _STAGE_NET},
            )
            return
        if not isinstance(f.value, Scalar) or f.value.kind != "string":
            return  # a non-string type is a literal problem, reported as such
        name = f.value.value
        if name in schema.V2_LAYER_TYPES:
            return
        fork = schema.fork_layer_type(name)
        v = f.value
        caffe_line = f"Unknown layer type: {name} (known types: {', '.join(sorted(schema.V2_LAYER_TYPES))})"
        evidence = [Evidence(caffe_line, None, "computed")]
        if fork is not None:
            earlier = self.fork_types_seen.get(name)
            if earlier is not None:
                earlier.data["occurrences"] += 1
                return
            self.fork_types_seen[name] = self.report(
                UNKNOWN_LAYER_TYPE,
                f'layer type "{name}" comes from the fork {fork}; BVLC Caffe cannot build this net',
                v.start,
                None,
                severity=Severity.INFO,
                evidence=evidence,
                culprit=name,
                data={"fork": fork, "occurrences": 1, "caffe_stage": _STAGE_NET},
            )
            return
        suggestion = _nearest(name, sorted(schema.V2_LAYER_TYPES))
        message = f'BVLC Caffe has no layer type "{name}"'
        fix = None
        if suggestion is not None:
            message += f'; did you mean "{suggestion}"?'
            edit = self.edit(v.start.offset, v.end, f'"{suggestion}"', v.start)
            fix = Fix(f'Write type: "{suggestion}".', (edit,), safe=suggestion.lower() == name.lower())
        self.report(UNKNOWN_LAYER_TYPE, message, v.start, None, severity=Severity.WARNING, evidence=evidence,
                    fix=fix, culprit=name, data={"caffe_stage": _STAGE_NET})  # fmt: skip

    def ignored_params(self, layer: Message, mtype: str) -> None:
        """``*_param`` blocks that the layer's type never reads: Caffe silently drops them."""
        type_field = layer.last("type")
        if type_field is None or not isinstance(type_field.value, Scalar):
            return
        layer_type = type_field.value.value
        if mtype == "V1LayerParameter":
            layer_type = schema.V1_TYPE_TO_V2.get(layer_type, "")
        if layer_type not in schema.V2_LAYER_TYPES or layer_type == "Python":
            return  # unknown, fork or Python layers may read what they like
        allowed = {schema.LAYER_PARAM_FIELD.get(layer_type)}
        if layer_type in schema.LOSS_LAYER_TYPES:
            allowed.add("loss_param")
        if layer_type in schema.TRANSFORM_LAYER_TYPES:
            allowed.add("transform_param")
        fields = schema.MESSAGES[mtype].fields
        name = layer.get("name")
        reported: set[str] = set()
        for f in layer.fields:
            if not f.name.endswith("_param") or f.name not in fields or f.name in allowed or f.name in reported:
                continue
            reported.add(f.name)
            own = schema.LAYER_PARAM_FIELD.get(layer_type)
            reads = f"it reads {own}" if own else "it reads no *_param block"
            message = f"{layer_type} layer {name!r} ignores `{f.name}`: Caffe never reads it for this type ({reads})"
            cause = Cause.UNKNOWN
            if f.name == "transform_param":
                message += "; scale, mean and crop are not applied, the data reach the net as stored"
                cause = Cause.BAD_INPUT
            finding = self.report(
                IGNORED_PARAM_BLOCK,
                message,
                f.name_pos,
                None,
                severity=Severity.WARNING,
                fix=Fix(
                    f"Move the settings into the block {layer_type} reads, or do the work in a layer of its own "
                    f"(e.g. Power/Scale for a data scale), and delete `{f.name}`.",
                    safe=False,
                ),
                culprit=name if isinstance(name, str) else f.name,
                data={"caffe_stage": _STAGE_NET, "layer_type": layer_type, "field": f.name},
            )
            if cause is not Cause.UNKNOWN:
                self.findings[-1] = replace(finding, cause=cause)

    def layer_formats(self, net: Message) -> None:
        v2 = net.first("layer")
        v1 = net.first("layers")
        if v2 is None or v1 is None:
            return
        later = v1 if v1.name_pos.offset > v2.name_pos.offset else v2
        self.report(
            MIXED_LAYER_FORMATS,
            "the net mixes V2 `layer` blocks and deprecated V1 `layers` blocks; Caffe refuses to upgrade it",
            later.name_pos,
            None,
            evidence=[Evidence("Refusing to upgrade inconsistent NetParameter input", None, "computed")],
            fix=Fix('Write every layer in one format (V2 `layer { type: "..." }`).'),
            culprit=later.name,
            data={"caffe_stage": _STAGE_UPGRADE},
        )


def _opener(doc: Document, m: Message) -> str:
    assert m.start is not None
    return doc.text[m.start.offset]


def _type_word(t: str) -> str:
    return "enum" if schema.is_enum(t) else t


def _value_token(v: Scalar) -> tuple[Pos, str]:
    """Where protobuf complains about a literal's value, and the token it shows.

    For ``-x`` protobuf has already consumed the sign, so it points at the token after it.
    """
    if v.negative and v.body is not None:
        return v.body, v.text[1:].strip()
    return v.start, v.first_token


def _nearest(name: str, candidates: list[str]) -> str | None:
    lowered = {c.lower(): c for c in candidates}
    if name.lower() in lowered:
        return lowered[name.lower()]
    low = name.lower()
    for c in candidates:  # `kernel` -> `kernel_size`, `AVERAGE` -> `AVE`: a word cut short or spelled out
        cl = c.lower()
        if min(len(cl), len(low)) >= 3 and (cl.startswith(low) or low.startswith(cl)):
            return c
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.75)
    return lowered[close[0]] if close else None


def validate(doc: Document, root: str) -> list[Finding]:
    """Every schema problem of ``doc`` read as a ``root`` message.

    Problems protobuf's parser reports come first, by position (the first is the one
    Caffe prints), then those Caffe finds after parsing (layer types, mixed formats).
    """
    if root not in schema.MESSAGES:
        raise ValueError(f"unknown root message type {root!r}")
    walk = _Walk(doc, root, [], {}, {})
    walk.message(doc.root, root, "")
    walk.missing_required_evidence()
    _dedupe_lists(walk.findings)
    return sorted(walk.findings, key=_caffe_order)


def _caffe_order(f: Finding) -> tuple[int, int, int]:
    loc = f.location
    return (f.data.get("caffe_stage", _STAGE_PARSE), loc.line or 0 if loc else 0, loc.col or 0 if loc else 0)


def _dedupe_lists(findings: list[Finding]) -> None:
    # ``name: [1, 2]`` on a non-repeated field yields one Field per element, all sharing the '['.
    seen: set[tuple[str, int | None, int | None]] = set()
    out = []
    for f in findings:
        key = (f.code, f.location.line if f.location else None, f.location.col if f.location else None)
        if f.code == MESSAGE_SCALAR_MISMATCH and key in seen:
            continue
        seen.add(key)
        out.append(f)
    findings[:] = out


_CACHE: dict[int, tuple[Document, str, list[Finding]]] = {}
_CACHE_SIZE = 32


def validate_cached(doc: Document, root: str) -> list[Finding]:
    """``validate`` once per (document, root), shared by every config rule."""
    hit = _CACHE.get(id(doc))
    if hit is not None and hit[0] is doc and hit[1] == root:
        return hit[2]
    result = validate(doc, root)
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[id(doc)] = (doc, root, result)
    return result


def caffe_accepts(doc: Document, root: str) -> bool:
    """Would BVLC Caffe's parser (and its upgrade step) accept this file? Fork extensions: no."""
    return not any(
        f.code in REJECTING_CODES and (f.severity is Severity.ERROR or f.code == FORK_EXTENSION)
        for f in validate_cached(doc, root)
    )
