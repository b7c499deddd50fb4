"""Random mutations of real nets never make the net model, shapes or net rules raise."""

from __future__ import annotations

import re
from pathlib import Path
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nandoctor.config.net import load_net
from nandoctor.config.textformat import ParseError, parse_text
from nandoctor.core.registry import Facts, run_rules, select_rules
from nandoctor.rules.net import common
from nandoctor.rules.net.common import build_variants
from tests.conftest import CORPUS

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "net"
SOURCES = sorted(FIXTURES.glob("*.prototxt")) + [
    p
    for p in (
        CORPUS / "zoo" / "BVLC__caffe__examples__cifar__cifar10_18pct.prototxt",
        CORPUS / "zoo" / "BVLC__caffe__examples__mnist__lenet_train_test.prototxt",
        CORPUS / "caffe-runs" / "r62" / "train_val.prototxt",
    )
    if p.is_file()
]
TEXTS = [p.read_text(errors="replace") for p in SOURCES]
NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:e-?\d+)?")
TYPES = ["Pooling", "Convolution", "Log", "Power", "Exp", "Python", "InfogainLoss", "BatchNorm", "Reshape",
         "Slice", "Concat", "Eltwise", "Crop", "Input", "Data", "Nope", "SoftmaxWithLoss", "Flatten"]  # fmt: skip
RULES = select_rules(["NAN1"])


@st.composite
def mutated(draw):
    text = draw(st.sampled_from(TEXTS))
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "number", "type", "swap"]))
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "number":
            value = draw(
                st.sampled_from(
                    ["0", "-1", "1", "2", "3", "7", "100000", "0.5", "-0.5", "1e-30", "2147483647", "1e400"]
                )
            )
            lines[i] = NUMBER.sub(value, lines[i], count=1)
        elif op == "type":
            lines[i] = re.sub(r'type:\s*"[^"]*"', f'type: "{draw(st.sampled_from(TYPES))}"', lines[i])
        else:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_nets_never_raise(text):
    try:
        doc = parse_text(text, "fuzz.prototxt")
    except ParseError:
        return
    net = load_net(doc)
    build_variants(net)
    net.input_shapes()
    facts = Facts(net=net, options={"input_shapes": {"data": (2, 3, 25, 25)}})
    for f in run_rules(facts, RULES):
        assert f.code.startswith("NAN1")
    # most mutations break the schema, and then the net rules rightly stay quiet; run them anyway
    # so their code still meets the odd values
    with mock.patch.object(common, "parsed_by_caffe", lambda net: True):
        for f in run_rules(facts, RULES):
            assert f.code.startswith("NAN1")
