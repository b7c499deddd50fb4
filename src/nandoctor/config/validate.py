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

from dataclasses import dataclass, field, replace
from typing import Any

from nandoctor.config import forks, schema
from nandoctor.config.literals import expected_word, judge
from nandoctor.config.schema_problems import (
    ALL_CODES,
    BAD_BOOLEAN,
    DUPLICATE_FIELD,
    FORK_EXTENSION,
    IGNORED_PARAM_BLOCK,
    INTEGER_OUT_OF_RANGE,
    MESSAGE_SCALAR_MISMATCH,
    MISSING_REQUIRED,
    MIXED_LAYER_FORMATS,
    NEGATIVE_UNSIGNED,
    QUOTED_ENUM,
    UNKNOWN_ENUM_VALUE,
    UNKNOWN_FIELD,
    UNKNOWN_LAYER_TYPE,
    UNQUOTED_STRING,
    V1_TYPE_IN_V2_LAYER,
    V2_TYPE_IN_V1_LAYER,
    WRONG_LITERAL,
    nearest,
)
from nandoctor.config.tree import Document, Field, Message, Pos, Scalar
from nandoctor.config.upgrade import V0_TYPE_TO_V2
from nandoctor.core.types import Cause, Edit, Evidence, Finding, Fix, Location, Severity

__all__ = [
    "ALL_CODES", "BAD_BOOLEAN", "DUPLICATE_FIELD", "FORK_EXTENSION", "IGNORED_PARAM_BLOCK", "INTEGER_OUT_OF_RANGE",
    "MESSAGE_SCALAR_MISMATCH", "MISSING_REQUIRED", "MIXED_LAYER_FORMATS", "NEGATIVE_UNSIGNED", "QUOTED_ENUM",
    "UNKNOWN_ENUM_VALUE", "UNKNOWN_FIELD", "UNKNOWN_LAYER_TYPE", "UNQUOTED_STRING",
    "V1_TYPE_IN_V2_LAYER", "V2_TYPE_IN_V1_LAYER", "WRONG_LITERAL", "caffe_accepts", "validate", "validate_cached",
]  # fmt: skip

# When Caffe meets each problem: protobuf stops at the first parse error (by position), checks
# required fields after parsing, then Caffe upgrades old formats, then builds the net.
_STAGE_PARSE, _STAGE_PARSE_END, _STAGE_UPGRADE, _STAGE_NET = range(4)


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
                fspec = self.unknown_field(f, mtype, msg)
                if fspec is None:
                    continue
            index = counts.get(f.name, 0)
            if not (isinstance(f.value, Scalar) and f.value.kind == "empty_list"):
                counts[f.name] = index + 1
            if not fspec.repeated:
                first = seen.get(f.name)
                if first is not None and (f.list_pos is None or first.list_pos is not f.list_pos):
                    self.duplicate(f, mtype)
                if not (isinstance(f.value, Scalar) and f.value.kind == "empty_list"):  # `x: []` sets nothing
                    seen.setdefault(f.name, f)
            where = f"{path}{f.name}[{index}]" if fspec.repeated else f"{path}{f.name}"
            self.field(f, fspec, mtype, where)
        self.required(msg, spec, path)
        if mtype in ("LayerParameter", "V1LayerParameter"):
            self.ignored_params(msg, mtype)
        if mtype == "LayerParameter":
            self.layer_type(msg)
        elif mtype == "V0LayerParameter":
            self.v0_layer_type(msg)
        elif mtype == "NetParameter":
            self.layer_formats(msg)

    def unknown_field(self, f: Field, mtype: str, msg: Message) -> schema.FieldSpec | None:
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
        suggestion = nearest(f.name, names)
        homes = _homes(f.name, mtype, msg)
        message = f"Caffe has no field `{f.name}` in {mtype}"
        fix = None
        v1_home = schema.V1_LAYER_FIELD_TO_V2.get(f.name) if mtype == "LayerParameter" else None
        if v1_home is not None:  # `blobs_lr: 1` copied from a V1 net into a V2 layer
            suggestion = None
            block, inner = v1_home
            message += f"; it is the V1 spelling of `{block} {{ {inner}: ... }}` (one `{block}` per blob)"
            fix = Fix(f"Write `{block} {{ {inner}: ... }}` instead of `{f.name}`, one block per blob.", safe=False)
        elif homes and (suggestion is None or suggestion.lower() != f.name.lower()):
            # `lr_mult` in a layer, `kernel_size` in a layer: right name, wrong level
            suggestion = None
            blocks = " or ".join(f"`{h} {{ ... }}`" for h in homes)
            message += f"; it belongs inside {blocks}"
            fix = Fix(f"Move `{f.name}` into {blocks}.", safe=False)
        elif suggestion is not None:
            message += f"; did you mean `{suggestion}`?"
            start = f.name_pos.offset
            edit = self.edit(start, start + len(f.name), suggestion, f.name_pos)
            case_only = suggestion.lower() == f.name.lower()
            fix = Fix(f"Rename `{f.name}` to `{suggestion}`.", (edit,), safe=case_only)
        elif len(names) <= 15:
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
            protobuf = 'Expected "{", found "[".' if found else f"Expected {expected_word(fspec.type)}, got: ["
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
                pos, protobuf = value.start, f"Expected {expected_word(fspec.type)}, got: {_opener(self.doc, value)}"
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
        problem = judge(f.name, v, fspec, mtype)
        if problem is None:
            return
        if problem.code == UNKNOWN_ENUM_VALUE and self.fork_enum_value(f, v, fspec, problem):
            return
        fix = None
        if problem.replacement is not None:
            edit = self.edit(v.start.offset, v.end, problem.replacement, v.start)
            fix = Fix(problem.fix or f"Write `{problem.replacement}`.", (edit,), safe=problem.safe)
        self.report(problem.code, problem.message, problem.pos, problem.protobuf, fix=fix,
                    culprit=problem.culprit or f.name)  # fmt: skip

    def fork_enum_value(self, f: Field, v: Scalar, fspec: schema.FieldSpec, problem) -> bool:
        """An enum value only a fork defines (Intel Caffe's MKLDNN engine): reported once per value, as info."""
        fork = forks.fork_enum_value(fspec.type, str(v.value))
        if fork is None:
            return False
        key = (fspec.type, str(v.value))
        earlier = self.forks_seen.get(key)
        if earlier is not None:
            earlier.data["occurrences"] += 1
            return True
        self.forks_seen[key] = self.report(
            FORK_EXTENSION,
            f"`{v.value}` is a value of {fspec.type} only in {fork}; BVLC Caffe rejects this file, "
            "your fork must provide it",
            problem.pos,
            problem.protobuf,
            severity=Severity.INFO,
            culprit=f.name,
            data={"fork": fork, "enum": fspec.type, "value": str(v.value), "occurrences": 1},
        )
        return True

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

    def count_fork_occurrences(self) -> None:
        """Fork fields and types are reported once; say how many places use them."""
        for index, f in enumerate(self.findings):
            count = f.data.get("occurrences", 1)
            if count > 1:
                self.findings[index] = replace(f, message=f"{f.message} ({count} places)")

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
        caffe_line = f"Unknown layer type: {name} (known types: ...)"  # the list depends on the build
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
        suggestion = nearest(name, sorted(schema.V2_LAYER_TYPES))
        message = f'BVLC Caffe has no layer type "{name}"'
        fix = None
        if suggestion is not None:
            message += f'; did you mean "{suggestion}"?'
            edit = self.edit(v.start.offset, v.end, f'"{suggestion}"', v.start)
            fix = Fix(f'Write type: "{suggestion}".', (edit,), safe=suggestion.lower() == name.lower())
        self.report(UNKNOWN_LAYER_TYPE, message, v.start, None, severity=Severity.WARNING, evidence=evidence,
                    fix=fix, culprit=name, data={"caffe_stage": _STAGE_NET})  # fmt: skip

    def v0_layer_type(self, layer: Message) -> None:
        """V0 (2013) type strings: Caffe's upgrade knows a fixed list and aborts on anything else."""
        f = layer.last("type")
        if f is None or not isinstance(f.value, Scalar) or f.value.kind != "string":
            return
        name = f.value.value
        if name in V0_TYPE_TO_V2 or name == "padding":  # padding layers are folded into the next layer
            return
        suggestion = nearest(name, sorted(V0_TYPE_TO_V2))
        message = f'Caffe\'s V0 upgrade knows no layer type "{name}"'
        fix = None
        if suggestion is not None:
            message += f'; did you mean "{suggestion}"?'
            edit = self.edit(f.value.start.offset, f.value.end, f'"{suggestion}"', f.value.start)
            fix = Fix(f'Write type: "{suggestion}".', (edit,), safe=False)
        self.report(UNKNOWN_LAYER_TYPE, message, f.value.start, None, fix=fix, culprit=name,
                    evidence=[Evidence(f"Unknown layer name: {name}", None, "computed")],
                    data={"caffe_stage": _STAGE_UPGRADE})  # fmt: skip

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


def _homes(name: str, mtype: str, msg: Message) -> list[str]:
    """The message fields of ``mtype`` whose own message has a field ``name`` (the layer's own
    ``*_param`` first, when its type is known)."""
    homes = []
    for child in schema.MESSAGES[mtype].fields.values():
        sub = schema.MESSAGES.get(child.type)
        if sub is not None and name in sub.fields and child.type != mtype:
            homes.append(child.name)
    if mtype == "LayerParameter" and len(homes) > 1:
        own = schema.LAYER_PARAM_FIELD.get(msg.get("type") if isinstance(msg.get("type"), str) else "")
        if own in homes:
            return [own]
        return homes[:3]
    return homes


def _opener(doc: Document, m: Message) -> str:
    assert m.start is not None
    return doc.text[m.start.offset]


def _type_word(t: str) -> str:
    return "enum" if schema.is_enum(t) else t


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
    walk.count_fork_occurrences()
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
    """Would BVLC Caffe's parser and its upgrade step accept this file? Fork extensions: no.

    (Building the net is a later step: unknown V2 layer types do not count here.)
    """
    return not any(f.severity is Severity.ERROR or f.code == FORK_EXTENSION for f in validate_cached(doc, root))
