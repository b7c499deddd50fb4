"""The text-format parser: every construct Caffe files use, exact positions, protobuf's errors, fuzzing."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nandoctor.config.textformat import Message, ParseError, Pos, Scalar, parse_file, parse_text
from nandoctor.core.types import InputError
from tests.conftest import corpus_files, corpus_path


def value(text: str, *names: str, root: str | None = None):
    """The (last) scalar value reached by following ``names`` from the top."""
    msg = parse_text(text, root=root).root
    for name in names[:-1]:
        msg = msg.get(name)
    return msg.get(names[-1])


def error_of(text: str, root: str | None = "auto") -> tuple[int | None, int | None, str]:
    with pytest.raises(ParseError) as info:
        parse_text(text, root=root)
    return info.value.line, info.value.col, info.value.message


# --- the three net formats -------------------------------------------------------------


def test_v2_layer_syntax():
    text = 'name: "n"\nlayer {\n  name: "c1"\n  type: "Convolution"\n  bottom: "data"\n  top: "c1"\n' + (
        "  param { lr_mult: 1 decay_mult: 1 }\n  param { lr_mult: 2 decay_mult: 0 }\n"
        '  convolution_param { num_output: 20 kernel_size: 5 weight_filler { type: "xavier" } }\n'
        "  include { phase: TRAIN }\n}\n"
    )
    layer = parse_text(text).root.messages("layer")[0]
    assert layer.get("type") == "Convolution"
    assert [p.get("lr_mult") for p in layer.messages("param")] == [1, 2]
    assert layer.get("convolution_param").get("weight_filler").get("type") == "xavier"
    assert layer.get("include").get("phase") == "TRAIN"


def test_v1_layers_syntax_with_enum_type():
    text = "layers {\n  name: 'c1'\n  type: CONVOLUTION\n  blobs_lr: 1\n  blobs_lr: 2\n}\n"
    layer = parse_text(text).root.messages("layers")[0]
    assert layer.get("type") == "CONVOLUTION"
    assert layer.get_all("blobs_lr") == [1, 2]
    assert layer.last("type").value.kind == "ident"


def test_v0_nested_layer_syntax():
    text = 'layers {\n  layer {\n    name: "conv1"\n    type: "conv"\n    kernelsize: 5\n  }\n  bottom: "data"\n}\n'
    outer = parse_text(text).root.messages("layers")[0]
    assert outer.get("layer").get("kernelsize") == 5
    assert outer.get("bottom") == "data"


# --- lexical constructs ----------------------------------------------------------------


def test_comments_anywhere_and_containing_syntax():
    text = '# header { "\nname: "n"  # trailing: } \'\n# between\nlayer { # open\n  name: "x" # ]\n}\n'
    root = parse_text(text).root
    assert root.get("name") == "n"
    assert root.get("layer").get("name") == "x"


def test_both_quote_styles_and_escapes():
    text = r"""a: 'single "inner"' b: "double 'inner'" c: "tab\tnl\nq\"bs\\" d: "\x41\101\u00e9" e: '\''"""
    root = parse_text(text).root
    assert root.get("a") == 'single "inner"'
    assert root.get("b") == "double 'inner'"
    assert root.get("c") == 'tab\tnl\nq"bs\\'
    assert root.get("d") == "AAé"
    assert root.get("e") == "'"


def test_adjacent_strings_concatenate():
    doc = parse_text('source: "train_" \'lmdb\'\n  "_x" next: 1')
    f = doc.root.first("source")
    assert f.value.value == "train_lmdb_x"
    assert f.value.text == '"train_" \'lmdb\'\n  "_x"'
    assert f.value.first_token == '"train_"'
    assert doc.root.get("next") == 1


def test_angle_bracket_delimiters():
    root = parse_text("weight_filler < type: 'gaussian' std: 0.01 >").root
    assert root.get("weight_filler").get("std") == 0.01


def test_mismatched_delimiters_report_the_expected_closer():
    assert error_of("a < b: 1 }", root=None) == (1, 10, 'Expected ">", found "}".')
    assert error_of("a { b: 1 >", root=None) == (1, 10, 'Expected "}", found ">".')


def test_list_syntax_for_scalars_and_messages():
    root = parse_text("stepvalue: [100, 200, 300]\nparam [ { lr_mult: 1 }, { lr_mult: 2 } ]\nx: []").root
    assert root.get_all("stepvalue") == [100, 200, 300]
    assert [m.get("lr_mult") for m in root.messages("param")] == [1, 2]
    fields = root.all("stepvalue")
    assert fields[0].list_pos is fields[2].list_pos and fields[0].list_pos.col == 12
    assert not root.has("x")
    assert [f.name for f in root.empty_lists] == ["x"]


def test_optional_colon_before_messages():
    root = parse_text("pooling_param: { pool: MAX }\ninclude { phase: TEST }").root
    assert root.first("pooling_param").colon
    assert not root.first("include").colon
    assert root.get("pooling_param").get("pool") == "MAX"


def test_comma_and_semicolon_separators():
    root = parse_text("a: 1, b: 2; c { d: 3; e: 4, }").root
    assert (root.get("a"), root.get("b")) == (1, 2)
    assert root.get("c").get_all("e") == [4]


@pytest.mark.parametrize(
    ("literal", "expected", "kind"),
    [
        ("42", 42, "int"),
        ("0", 0, "int"),
        ("0x1F", 31, "int"),
        ("0X1f", 31, "int"),
        ("017", 15, "int"),
        ("1.5", 1.5, "float"),
        ("1.", 1.0, "float"),
        (".25", 0.25, "float"),
        ("1e-4", 1e-4, "float"),
        ("2E+3", 2000.0, "float"),
        ("1.5f", 1.5, "float"),
        ("3F", 3.0, "float"),
        ("-7", -7, "int"),
        ("- 7", -7, "int"),
        ("-0.5", -0.5, "float"),
        ("inf", "inf", "ident"),
        ("-inf", "inf", "ident"),
        ("nan", "nan", "ident"),
    ],
)
def test_number_literals(literal, expected, kind):
    scalar = parse_text(f"v: {literal}").root.first("v").value
    assert scalar.kind == kind
    assert scalar.value == expected
    assert scalar.text == literal
    assert scalar.negative == literal.startswith("-")


def test_negative_value_remembers_the_token_after_the_sign():
    scalar = parse_text("v: -  12 w: 1").root.first("v").value
    assert (scalar.start.col, scalar.body.col, scalar.after.col) == (4, 7, 10)
    assert scalar.first_token == "-"


def test_crlf_line_endings():
    doc = parse_text('name: "n"\r\nlayer {\r\n  top: "t"\r\n}\r\n')
    top = doc.root.get("layer").first("top")
    assert (top.name_pos.line, top.name_pos.col) == (3, 3)
    assert top.value.value == "t"


# --- positions ---------------------------------------------------------------------------


def test_positions_of_names_values_and_protobuf_error_spots():
    text = 'layer {\n  name: "p"\n  pooling_param { pool: AVE stride: 5 }\n}\n'
    doc = parse_text(text)
    pp = doc.root.get("layer").first("pooling_param")
    assert (pp.name_pos.line, pp.name_pos.col, pp.after_name.col) == (3, 3, 17)
    pool = pp.value.first("pool")
    assert (pool.name_pos.col, pool.after_name.col) == (19, 23)
    assert (pool.value.start.col, pool.value.after.col) == (25, 29)
    assert text[pool.value.start.offset : pool.value.end] == "AVE"
    assert pp.value.start.col == 17 and text[pp.value.end - 1] == "}"


def test_columns_count_tabs_and_utf8_bytes_like_protobuf():
    doc = parse_text('a {\n\tb: 1\n}\n# é\nc: "é" d: 2\n')
    b = doc.root.get("a").first("b")
    assert (b.name_pos.col, b.value.start.col) == (9, 12)
    d = doc.root.first("d")
    assert d.name_pos.col == 9  # "é" is two bytes for protobuf (8 characters precede d)


def test_pos_is_lazy_but_behaves_like_a_value():
    doc = parse_text("a: 1\nb: 2")
    pos = doc.root.first("b").name_pos
    assert pos == Pos(2, 1, 5)
    assert hash(pos) == hash(Pos(2, 1, 5))
    assert repr(pos) == "Pos(line=2, col=1, offset=5)"
    assert doc.location(pos).line == 2


def test_eof_position_after_final_newline():
    assert error_of("a {\n  b: 1\n") == (3, 1, "Expected identifier, got: ")


# --- protobuf's errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: 1\n}", (2, 1, "Expected identifier, got: }")),
        ("a 4", (1, 3, 'Expected ":", found "4".')),
        ("a: @", (1, 4, "Expected value, got: @")),
        ("@a: 1", (1, 1, "Expected identifier, got: @")),
        ("// c\na: 1", (1, 1, "Expected identifier, got: /")),
        ('a: "x\n"', (1, 6, "String literals cannot cross line boundaries.")),
        ('a: "x', (1, 6, "Unexpected end of string.")),
        (r'a: "\q"', (1, 6, "Invalid escape sequence in string literal.")),
        (r'a: "\xg"', (1, 7, "Expected hex digits for escape sequence.")),
        (r'a: "\X41"', (1, 6, "Invalid escape sequence in string literal.")),
        (r'a: "\u12"', (1, 9, r"Expected four hex digits for \u escape sequence.")),
        (r'a: "\U00200000"', (1, 9, r"Expected eight hex digits up to 10ffff for \U escape sequence")),
        ('a: "x\x00y"', (1, 6, "Unexpected end of string.")),
        ("a: 3x", (1, 5, "Need space between number and identifier.")),
        ("a: 1e", (1, 6, '"e" must be followed by exponent.')),
        ("a: 0x", (1, 6, '"0x" must be followed by hex digits.')),
        ("a: 08", (1, 5, "Numbers starting with leading zero must be in octal.")),
        ("a: 0x1.5", (1, 7, "Hex and octal numbers must be integers.")),
        ("a: 1.5.3", (1, 7, "Already saw decimal point or exponent; can't have another one.")),
        ("a.5: 1", (1, 2, "Need space between identifier and decimal point.")),
        ("a: 1\x01", (1, 5, "Invalid control characters encountered in text.")),
        ("\ufeffa: 1", (1, 1, "Interpreting non ascii codepoint 239.")),
        ("a: ü", (1, 4, "Interpreting non ascii codepoint 195.")),
        ("a: [1 2]", (1, 7, 'Expected "]", found "2".')),
        ("a [1]", (1, 4, 'Expected "{", found "1".')),
    ],
)
def test_syntax_errors_match_protobuf(text, expected):
    assert error_of(text, root=None) == expected


def test_sign_before_a_name_is_left_to_the_schema():
    # '-inf' is a float; whether '-x' is an error depends on the field's type (validate's job)
    assert parse_text("a: - x").root.first("a").value.negative
    assert error_of("a: - 'x'", root=None) == (1, 6, "Expected number, got: 'x'")


def test_schema_hook_reports_missing_brace_of_a_message_field():
    text = "layer {\n  type: 'Input'\n  input_param shape { dim: 1 }\n}\n"
    assert error_of(text, root=None)[2] == 'Expected ":", found "shape".'
    assert error_of(text, root="NetParameter") == (3, 15, 'Expected "{", found "shape".')
    assert error_of(text, root="auto") == (3, 15, 'Expected "{", found "shape".')
    assert error_of("train_state: 3", root="SolverParameter") == (1, 14, 'Expected "{", found "3".')


def test_schema_hook_reports_unknown_field_before_missing_colon():
    text = "layer { pooling_param { kernel 3 } }"
    assert error_of(text, root="NetParameter") == (
        1,
        32,
        'Message type "caffe.PoolingParameter" has no field named "kernel".',
    )
    assert error_of(text, root=None) == (1, 32, 'Expected ":", found "3".')


@pytest.mark.parametrize(
    ("text", "root", "expected"),
    [
        # a schema error before the syntax error is what protobuf reports (it stops there)
        ("layer { type: CONVOLUTION name: }", "NetParameter", (1, 15, "Expected string, got: CONVOLUTION")),
        (
            "layer { kernel: }",
            "NetParameter",
            (1, 15, 'Message type "caffe.LayerParameter" has no field named "kernel".'),
        ),
        (
            "layer { name: 'a' name: }",
            "NetParameter",
            (1, 23, 'Non-repeated field "name" is specified multiple times.'),
        ),
        ("base_lr: 0.1\nlr_policy: step\nmax_iter: }", "auto", (2, 12, "Expected string, got: step")),
        # the syntax error itself, in the words of the field's type
        ("layer { convolution_param { num_output: ] } }", "NetParameter", (1, 41, "Expected integer, got: ]")),
        ("base_lr: - }", "SolverParameter", (1, 12, "Expected double, got: }")),
        ("max_iter: - }", "SolverParameter", (1, 13, "Expected integer, got: }")),
        ("solver_mode: - }", "SolverParameter", (1, 16, "Expected integer, got: }")),
        ("lr_policy: - }", "SolverParameter", (1, 12, "Expected string, got: -")),
        ("debug_info: ]", "SolverParameter", (1, 13, "Expected identifier, got: ]")),
        ("debug_info: ]", None, (1, 13, "Expected value, got: ]")),
        ("lr_policy: - }", None, (1, 14, "Expected number, got: }")),
    ],
)
def test_schema_aware_errors_are_the_first_protobuf_reports(text, root, expected):
    assert error_of(text, root=root) == expected


def test_schema_hook_leaves_fork_messages_and_known_fields_alone():
    text = "layer { bn_param { scale_filler { type: 'constant' } } batch_norm_param { eps: 1e-5 } }"
    layer = parse_text(text, root="NetParameter").root.get("layer")
    assert layer.get("bn_param").get("scale_filler").get("type") == "constant"


def test_parse_file_reads_with_positions_and_reports_missing_files(tmp_path):
    path = tmp_path / "net.prototxt"
    path.write_bytes(b'name: "n"\nlayer { name: "\xff" }\n')
    doc = parse_file(path)
    assert doc.root.get("layer").get("name") == "\ufffd"
    with pytest.raises(InputError, match="file not found"):
        parse_file(tmp_path / "missing.prototxt")
    with pytest.raises(InputError, match="directory"):
        parse_file(tmp_path)


def test_message_helpers():
    root = parse_text("top: 'a' top: 'b' m { x: 1 } m { x: 2 }").root
    assert root.get("top") == "b"
    assert root.first("top").value.value == "a"
    assert root.get_all("top") == ["a", "b"]
    assert [m.get("x") for m in root.messages("m")] == [1, 2]
    assert root.get("missing", 7) == 7 and not root.has("missing")
    assert [f.name for f in root] == ["top", "top", "m", "m"]


# --- real files ------------------------------------------------------------------------------


def test_every_corpus_prototxt_parses():
    files = corpus_files("zoo", pattern="*.prototxt") + corpus_files("caffe-runs", pattern="*/*.prototxt")
    if not files:
        pytest.skip("corpus not available")
    for path in files:
        assert parse_file(path).root.fields, path


def _shape(msg: Message) -> list:
    return [(f.name, _shape(f.value) if isinstance(f.value, Message) else f.value.value) for f in msg.fields]


def test_schema_aware_parse_builds_the_same_tree_as_the_plain_parse():
    files = corpus_files("zoo", pattern="*.prototxt") + corpus_files("caffe-runs", pattern="*/*.prototxt")
    if not files:
        pytest.skip("corpus not available")
    for path in files:
        plain = parse_file(path, None).root
        for root in ("auto", "SolverParameter" if "solver" in path.name else "NetParameter"):
            assert _shape(parse_file(path, root).root) == _shape(plain), path


def test_crlf_corpus_file_has_the_positions_caffe_uses():
    path = corpus_path("zoo", "BVLC__caffe__examples__cifar__cifar10_18pct.prototxt")
    doc = parse_file(path)
    assert "\r\n" in doc.text
    first = doc.root.fields[0]
    assert (first.name_pos.line, first.name_pos.col) == (1, 1)
    layers = doc.root.messages("layers")
    assert layers[0].get("layer").get("type") == "data"


# --- fuzzing -------------------------------------------------------------------------------

_FUZZ_SOURCES = [
    p
    for p in corpus_files("oracles", "malformed", pattern="*.prototxt") + corpus_files("zoo", pattern="*.prototxt")
    if p.stat().st_size < 6000
]
_FUZZ_TEXTS = [p.read_text(encoding="utf-8", errors="replace") for p in _FUZZ_SOURCES]
_ALPHABET = list("{}<>[]:;,-.\"'#\n\t\r\\ 0123456789eExXfaz_é\x00")


def _mutate(text: str, ops: list[tuple[str, int, int]]) -> str:
    for op, where, pick in ops:
        if not text:
            break
        i = where % len(text)
        if op == "delete":
            text = text[:i] + text[i + 1 :]
        elif op == "insert":
            text = text[:i] + _ALPHABET[pick % len(_ALPHABET)] + text[i:]
        elif op == "duplicate":
            text = text[:i] + text[i] + text[i:]
        else:
            text = text[:i]
    return text


@pytest.mark.skipif(not _FUZZ_TEXTS, reason="corpus not available")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    index=st.integers(min_value=0, max_value=10_000),
    ops=st.lists(
        st.tuples(
            st.sampled_from(["delete", "insert", "duplicate", "truncate"]),
            st.integers(min_value=0, max_value=100_000),
            st.integers(min_value=0, max_value=1000),
        ),
        min_size=1,
        max_size=6,
    ),
    root=st.sampled_from([None, "auto", "NetParameter", "SolverParameter"]),
)
def test_mutated_corpus_files_only_raise_parse_errors(index, ops, root):
    from nandoctor.config.validate import validate

    text = _mutate(_FUZZ_TEXTS[index % len(_FUZZ_TEXTS)], ops)
    try:
        doc = parse_text(text, "fuzz.prototxt", root=root)
    except InputError as exc:
        assert exc.line is not None and exc.col is not None and exc.line >= 1 and exc.col >= 1
        return
    for kind in ("NetParameter", "SolverParameter"):
        for finding in validate(doc, kind):  # validation of any parse tree never crashes either
            assert finding.location is not None


# --- round trips of generated messages -----------------------------------------------------

_names = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)
_scalars = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**64 - 1).map(lambda v: ("int", v)),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda v: ("float", v)),
    st.text(st.characters(min_codepoint=1, max_codepoint=0x2FF, exclude_categories=("Cs",)), max_size=12).map(
        lambda v: ("string", v)
    ),
    st.from_regex(r"[A-Z][A-Z_0-9]{0,6}", fullmatch=True).map(lambda v: ("ident", v)),
)
_tree = st.recursive(
    _scalars,
    lambda children: st.lists(st.tuples(_names, children), max_size=4).map(lambda fs: ("message", fs)),
    max_leaves=20,
)


def _quote(s: str, quote: str) -> str:
    out = []
    for ch in s:
        if ch in ("\\", quote):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 32:
            out.append(f"\\{ord(ch):03o}")
        else:
            out.append(ch)
    return quote + "".join(out) + quote


def _print(fields, rng: random.Random, indent: str = "") -> str:
    lines = []
    for name, (kind, v) in fields:
        if kind == "message":
            opener, closer = rng.choice([("{", "}"), ("<", ">")])
            colon = rng.choice(["", ":"])
            body = _print(v, rng, indent + "  ")
            lines.append(f"{indent}{name}{colon} {opener}\n{body}{indent}{closer}")
        else:
            if kind == "string":
                literal = _quote(v, rng.choice(['"', "'"]))
            elif kind == "float":
                literal = repr(v)
            else:
                literal = str(v)
            lines.append(f"{indent}{name}: {literal}")
        lines[-1] += rng.choice(["", ",", ";", " # note"]) + rng.choice(["\n", "\r\n"])
    return "".join(lines)


def _same(fields, msg: Message) -> None:
    assert [f.name for f in msg.fields] == [name for name, _ in fields]
    for (_, (kind, v)), f in zip(fields, msg.fields, strict=True):
        if kind == "message":
            assert isinstance(f.value, Message)
            _same(v, f.value)
            continue
        assert isinstance(f.value, Scalar)
        if kind == "float":
            assert f.value.kind in ("float", "ident") or f.value.kind == "int"
            assert math.isclose(float(f.value.value), v) or float(f.value.value) == v
        else:
            assert f.value.value == v and f.value.kind == kind


@settings(max_examples=100, deadline=None)
@given(fields=st.lists(st.tuples(_names, _tree), max_size=6), seed=st.integers(0, 2**16))
def test_printed_messages_parse_back_to_the_same_tree(fields, seed):
    text = _print(fields, random.Random(seed))
    doc = parse_text(text, root=None)
    _same(fields, doc.root)
