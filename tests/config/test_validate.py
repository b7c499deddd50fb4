"""Schema validation against Caffe's own verdicts (malformed oracles, zoo, caffe-runs) and its details."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from nandoctor.config.textformat import ParseError, parse_file, parse_text
from nandoctor.config.validate import (
    FORK_EXTENSION,
    UNKNOWN_FIELD,
    UNKNOWN_LAYER_TYPE,
    caffe_accepts,
    validate,
    validate_cached,
)
from nandoctor.core.types import Severity
from tests.conftest import CORPUS, corpus_files

MALFORMED = CORPUS / "oracles" / "malformed"
ZOO = CORPUS / "zoo"


def tsv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def caffe_words(caffe_error: str) -> str:
    """``L:C: message`` from Caffe's ``[libprotobuf ERROR ...] Error parsing text-format caffe.X: L:C: message``."""
    return caffe_error.split("Error parsing text-format ", 1)[1].split(": ", 1)[1].rstrip()


MALFORMED_ROWS = tsv(MALFORMED / "VERDICTS.tsv")
ZOO_ROWS = tsv(ZOO / "MANIFEST.tsv")
ZOO_VERDICTS = {r["file"]: r for r in tsv(ZOO / "CAFFE_VERDICTS.tsv")}


def root_of(kind: str) -> str:
    return "SolverParameter" if kind.startswith("solver") else "NetParameter"


@pytest.mark.skipif(not MALFORMED_ROWS, reason="corpus not available")
@pytest.mark.parametrize("row", MALFORMED_ROWS, ids=lambda r: r["file"])
def test_malformed_oracle_verdict_message_and_position(row):
    root = root_of(row["kind"])
    path = MALFORMED / row["file"]
    try:
        doc = parse_file(path, root)
    except ParseError as exc:
        assert row["accepted"] == "no"
        assert f"{exc.line}:{exc.col}: {exc.message}".rstrip() == caffe_words(row["caffe_error"])
        return
    findings = validate(doc, root)
    assert caffe_accepts(doc, root) == (row["accepted"] == "yes")
    if row["accepted"] == "yes":
        assert [f for f in findings if f.severity is Severity.ERROR] == []
        return
    first = findings[0]
    assert f"{first.location.line}:{first.location.col}: {first.data['protobuf_message']}" == caffe_words(
        row["caffe_error"]
    )
    assert row["caffe_error"].endswith(first.evidence[0].text)


def test_seed_example_names_kernel_size_and_renames_it():
    path = MALFORMED / "00.prototxt"
    if not path.is_file():
        pytest.skip("corpus not available")
    doc = parse_file(path)
    [finding] = validate(doc, "NetParameter")
    assert finding.code == UNKNOWN_FIELD
    assert "Caffe has no field `kernel` in PoolingParameter" in finding.message
    assert "kernel_size" in finding.message
    [edit] = finding.fix.edits
    assert (edit.old, edit.new) == ("kernel", "kernel_size")
    assert doc.text[edit.start : edit.end] == "kernel"
    fixed = doc.text[: edit.start] + edit.new + doc.text[edit.end :]
    fixed_doc = parse_text(fixed, str(path), "NetParameter")
    assert validate(fixed_doc, "NetParameter") == []
    assert fixed == (MALFORMED / "00_fixed.prototxt").read_text() or "kernel_size: 3" in fixed


@pytest.mark.skipif(not ZOO_ROWS, reason="corpus not available")
@pytest.mark.parametrize("row", ZOO_ROWS, ids=lambda r: r["file"][:70])
def test_zoo_file_parses_and_acceptance_matches_caffe(row):
    root = root_of(row["kind"])
    doc = parse_file(ZOO / row["file"], root)
    findings = validate(doc, root)
    verdict = ZOO_VERDICTS[row["file"]]
    assert caffe_accepts(doc, root) == (verdict["accepted"] == "yes")
    assert [f for f in findings if f.severity is Severity.ERROR] == []
    if verdict["accepted"] == "no":
        # Caffe rejects these zoo files only for fork fields: ours are infos, the first one is Caffe's line
        assert findings and all(f.severity is Severity.INFO for f in findings)
        protobuf = [f for f in findings if "protobuf_message" in f.data]
        assert verdict["caffe_error"].endswith(protobuf[0].evidence[0].text)
        assert protobuf[0].code == FORK_EXTENSION


def test_caffe_runs_configs_validate_clean():
    files = corpus_files("caffe-runs", pattern="*/*.prototxt")
    if not files:
        pytest.skip("corpus not available")
    for path in files:
        root = "SolverParameter" if "solver" in path.name else "NetParameter"
        doc = parse_file(path, root)
        assert validate(doc, root) == [], path
        assert caffe_accepts(doc, root)


# --- details ---------------------------------------------------------------------------------


def check(text: str, root: str = "NetParameter", schema_parse: bool = True):
    doc = parse_text(text, "t.prototxt", root if schema_parse else None)
    return validate(doc, root)


def test_fork_fields_are_reported_once_with_their_count():
    text = "layer { type: 'BN' bn_param { } }\nlayer { type: 'BN' bn_param { } }\nlayer { type: 'BN' }\n"
    findings = check(text)
    fork = [f for f in findings if f.code == FORK_EXTENSION]
    assert len(fork) == 1 and fork[0].data["occurrences"] == 2 and fork[0].severity is Severity.INFO
    assert "fork extension from SegNet" in fork[0].message
    types = [f for f in findings if f.code == UNKNOWN_LAYER_TYPE]
    assert len(types) == 1 and types[0].data["occurrences"] == 3 and types[0].severity is Severity.INFO


def test_unknown_fields_inside_fork_messages_stay_quiet():
    assert [f.code for f in check("layer { type: 'Normalize' norm_param { whatever: 1 across_spatial: false } }")] == [
        FORK_EXTENSION,
        UNKNOWN_LAYER_TYPE,
    ]


def test_fork_fields_of_unknown_kind_take_any_value():
    text = "layer { name: 'c' type: 'Convolution' forward_type: FLOAT16 forward_math: 'x' }"
    findings = check(text)
    assert [f.code for f in findings] == [FORK_EXTENSION, FORK_EXTENSION]
    assert all(f.data["fork"].startswith("NVCaffe") for f in findings)


def test_ignored_param_blocks_in_v1_layers_and_their_causes():
    findings = check("layers { name: 'r' type: RELU relu_param { } pooling_param { } lrn_param { } }")
    assert [(f.code, f.severity, f.cause.value) for f in findings] == [("NAN018", Severity.WARNING, "unknown")] * 2
    assert "ReLU layer 'r' ignores `pooling_param`" in findings[0].message
    [hdf5] = check("layer { name: 'd' type: 'HDF5Data' transform_param { scale: 0.1 } }")
    assert hdf5.cause.value == "bad_input" and "as stored" in hdf5.message
    assert check("layer { type: 'Input' }") == []
    assert [f.code for f in check("layer { type: 'BN' transform_param { } }")] == [UNKNOWN_LAYER_TYPE]


def test_v0_layer_types_follow_caffes_upgrade_list():
    text = 'layers { layer { name: "c" type: "convolution" } }\nlayers { layer { name: "p" type: "padding" } }'
    doc = parse_text(text)
    [finding] = validate(doc, "NetParameter")
    assert (finding.code, finding.severity, finding.location.line) == (UNKNOWN_LAYER_TYPE, Severity.ERROR, 1)
    assert finding.fix.edits[0].new == '"conv"'
    assert finding.evidence[0].text == "Unknown layer name: convolution"
    assert not caffe_accepts(doc, "NetParameter")
    assert validate(parse_text('layers { layer { type: "innerproduct" } }'), "NetParameter") == []


def test_layer_without_type_is_a_warning():
    [finding] = check("layer { name: 'x' bottom: 'a' top: 'b' }")
    assert (finding.code, finding.severity, finding.location.col) == (UNKNOWN_LAYER_TYPE, Severity.WARNING, 7)
    assert "'x' has no type" in finding.message


def test_unknown_layer_type_is_a_warning_with_the_nearest_type():
    [finding] = check('layer { name: "x" type: "Convolutoin" }')
    assert finding.severity is Severity.WARNING
    assert '"Convolution"' in finding.message
    assert finding.fix.edits[0].new == '"Convolution"'
    assert not finding.fix.safe


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("layer { type: 'Convolution' lr_mult: 1 }", "it belongs inside `param { ... }`"),
        ("layer { type: 'Pooling' kernel_size: 3 }", "it belongs inside `pooling_param { ... }`"),
        ("layer { type: 'ReLU' kernel_size: 3 }", "`convolution_param { ... }` or `pooling_param { ... }`"),
        ("layer { type: 'Convolution' convolution_param { std: 0.1 } }", "`weight_filler { ... }` or"),
        ("layer { type: 'Convolution' blobs_lr: 1 }", "V1 spelling of `param { lr_mult: ... }`"),
        ("layer { Name: 'x' type: 'ReLU' }", "did you mean `name`?"),
    ],
)
def test_unknown_field_points_to_where_it_belongs(text, words):
    [finding] = [f for f in check(text, schema_parse=False) if f.code == UNKNOWN_FIELD]
    assert words in finding.message
    assert finding.fix is not None


def test_unknown_field_without_near_name_lists_the_fields():
    [finding] = check("layer { type: 'Dropout' dropout_param { ratio_xyz: 0.5 } }")
    assert finding.fix is None
    assert "dropout_ratio" in finding.message


def test_errors_come_first_in_caffe_order():
    findings = check("layer { type: 'Relu' } layers { type: RELU } layer { type: 'ReLU' name: 'a' name: 'b' }")
    assert [f.code for f in findings] == ["NAN010", "NAN013", "NAN014"]


def test_solver_with_inline_net_is_checked_inside():
    findings = check(
        "net_param { layer { type: 'Pooling' pooling_param { kernel: 2 } } }\nbase_lr: 0.1", "SolverParameter"
    )
    assert [f.data["protobuf_message"] for f in findings] == [
        'Message type "caffe.PoolingParameter" has no field named "kernel".'
    ]
    assert findings[0].evidence[0].text.startswith("Error parsing text-format caffe.SolverParameter: 1:")


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("layer { name { } }", 'Expected ":", found "{".'),
        ("layer { name: < > }", "Expected string, got: <"),
        ("layer { phase: { } }", "Expected integer or identifier, got: {"),
        ("layer { loss_weight: { } }", "Expected double, got: {"),
        ("layer { propagate_down [ { } ] }", 'Expected ":", found "[".'),
        ("layer { name: [] }", "Expected string, got: ["),
        ("layer { name: ['a', 'b'] }", "Expected string, got: ["),
    ],
)
def test_structure_mismatches_use_protobufs_words(text, word):
    findings = check(text, schema_parse=False)
    assert [f.data["protobuf_message"] for f in findings if "protobuf_message" in f.data] == [word]


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("layer { phase: -1 }", 'Unknown enumeration value of "-1" for field "phase".'),
        ("layer { phase: -x }", "Expected integer, got: x"),
        ("layer { phase: 1.0 }", "Expected integer or identifier, got: 1.0"),
        ("layer { phase: 0x1 }", None),
        ("layer { phase: 2147483648 }", "Integer out of range (2147483648)"),
        ("layer { loss_weight: -inf loss_weight: nan loss_weight: Infinity }", None),
        ("layer { loss_weight: -bad }", "Expected double, got: bad"),
        ("layer { loss_weight: BAD }", "Expected double, got: bad"),
        ("layer { loss_weight: 017 }", "Expect a decimal number, got: 017"),
        ("layer { loss_weight: -0x1 }", "Expect a decimal number, got: 0x1"),
        ("layer { name: 4 }", "Expected string, got: 4"),
        ("layer { name: -4 }", "Expected string, got: -"),
        ("layer { blobs { num: -2147483649 } }", "Integer out of range (2147483649)"),
        ("layer { blobs { num: -2147483648 shape { dim: -9223372036854775808 } } }", None),
        ("layer { blobs { num: 1.5 } }", "Expected integer, got: 1.5"),
        ("layer { blobs { num: -1.5 } }", "Expected integer, got: 1.5"),
        ("layer { propagate_down: -1 }", "Expected identifier, got: -"),
        ("layer { propagate_down: 1.0 }", "Expected identifier, got: 1.0"),
        ("layer { propagate_down: f propagate_down: False propagate_down: 0x1 }", None),
        ("layer { propagate_down: TRUE }", 'Invalid value for boolean field "propagate_down". Value: "TRUE".'),
    ],
)
def test_literal_checks_use_protobufs_words(text, word):
    findings = check(text)
    assert [f.data["protobuf_message"] for f in findings if "protobuf_message" in f.data] == ([word] if word else [])


def test_empty_list_of_a_repeated_field_is_fine():
    assert check("layer { type: 'ReLU' include: [] top: [] }") == []


def test_fixes_for_literals():
    [f] = check("layer { type: 'Convolution' convolution_param { num_output: 4e0 } }")
    assert f.fix.edits[0].new == "4"
    [f] = check("layer { type: 'Convolution' convolution_param { num_output: 3.5 } }")
    assert f.fix is None
    [f] = check("layer { type: 'Pooling' pooling_param { global_pooling: yes } }")
    assert f.fix.edits[0].new == "true"
    [f] = check("layer { type: 'Pooling' pooling_param { pool: 'max' } }")
    assert f.fix is None  # quoted and wrong case: no guess
    [f] = check("solver_mode: cpu", "SolverParameter")
    assert f.fix.edits[0].new == "CPU" and f.fix.safe
    [f] = check("base_lr: '0.01'", "SolverParameter")
    assert f.fix.edits[0].new == "0.01"


def test_required_fields_are_named_like_protobuf_after_the_positional_errors():
    findings = check("layer { type: 'Clip' } layer { type: 'Clip' clip_param { } name: 'a' name: 'b' }")
    assert [f.code for f in findings] == ["NAN010", "NAN015", "NAN015"]
    line = (
        "Error parsing text-format caffe.NetParameter: "
        "Message missing required fields: layer[1].clip_param.min, layer[1].clip_param.max"
    )
    assert [f.evidence[0].text for f in findings[1:]] == [line, line]


def test_validate_cached_returns_the_same_list_for_the_same_document():
    doc = parse_text("layer { pooling_param { kernel: 2 } }")
    assert validate_cached(doc, "NetParameter") is validate_cached(doc, "NetParameter")
    other = parse_text("layer { pooling_param { kernel: 2 } }")
    assert validate_cached(other, "NetParameter") is not validate_cached(doc, "NetParameter")
    assert validate_cached(doc, "SolverParameter")[0].code == UNKNOWN_FIELD


def test_unknown_root_is_a_programming_error():
    with pytest.raises(ValueError):
        validate(parse_text(""), "NoSuchMessage")


def test_caffe_accepts_counts_fork_fields_as_rejected_but_not_fork_layer_types():
    assert not caffe_accepts(parse_text("eval_type: 'detection'"), "SolverParameter")
    assert caffe_accepts(parse_text("layer { type: 'PriorBox' }"), "NetParameter")
    assert caffe_accepts(parse_text("layer { type: 'NoSuchLayer' }"), "NetParameter")
    assert not caffe_accepts(parse_text("layer { type: 'Input' } layers { type: RELU }"), "NetParameter")
