"""NAN100 (nets Caffe refuses to build) and the net rules' silence on files Caffe's parser rejects."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from nandoctor.config.edits import apply_edits
from nandoctor.config.net import load_net
from nandoctor.config.shapes import infer_shapes
from nandoctor.config.textformat import parse_file, parse_text
from nandoctor.config.validate import caffe_accepts
from nandoctor.core.registry import Facts, run_rules, select_rules
from nandoctor.core.types import InputError, Severity
from nandoctor.lint import lint_paths
from nandoctor.rules.net.common import nets_of
from tests.conftest import corpus_path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "net"
NET_RULES = select_rules(["NAN1"])
LOSS_WEIGHT_CHECK = "loss_weight must be unspecified or specified once per top blob."


def nan100(net, **options):
    return [f for f in run_rules(Facts(net=net, options=options), NET_RULES) if f.code == "NAN100"]


def test_every_abort_in_the_rejected_fixture():
    found = nan100(load_net(parse_file(FIXTURES / "net_rejected.prototxt")))
    got = {f.culprit: f.data["caffe_message"] for f in found}
    assert got == {
        "conv": "Check failed: channels_ % group_ == 0 (1 vs. 0)",
        "big": "blob.cpp:32] Check failed: shape[i] >= 0 (-2 vs. 0)",
        "cat": "Check failed: top_shape[j] == bottom[i]->shape(j) (8 vs. 6) All inputs must have the same shape, "
        "except at concat_axis.",
        "again": "Top blob 'conv' produced by multiple sources.",
        "loss": f"Check failed: top.size() == num_loss_weights (2 vs. 1) {LOSS_WEIGHT_CHECK}",
        "reg": f"Check failed: top.size() == num_loss_weights (1 vs. 2) {LOSS_WEIGHT_CHECK}",
    }
    assert all(f.severity is Severity.ERROR and f.data["phases"] == ["TRAIN"] for f in found)
    by_culprit = {f.culprit: f for f in found}
    (first,) = by_culprit["again"].evidence
    assert first.text == "Convolution 'conv' produces it first" and first.location.line == 4
    assert by_culprit["cat"].evidence[0].text == "cat reads data 2x3x8x8, conv 2x4x6x6"
    assert "(data 2x3x8x8), or group: 1" in by_culprit["conv"].fix.description
    reg = by_culprit["reg"]
    assert (reg.location.line, reg.location.col) == (11, 3)  # the first loss_weight
    assert [e.location.line for e in reg.evidence if e.location] == [11, 12]


def test_loss_weight_fix_applies_and_the_net_then_builds():
    path = FIXTURES / "net_rejected.prototxt"
    doc = parse_file(path)
    (loss,) = [f for f in nan100(load_net(doc)) if f.culprit == "loss"]
    assert "loss_weight: 1 loss_weight: 0" in loss.fix.description
    fixed = load_net(parse_text(apply_edits(doc.text, list(loss.fix.edits)), str(path)))
    assert fixed.layers[6].loss_weights == [1.0, 0.0]
    assert "loss" not in {f.culprit for f in nan100(fixed)}


def test_net_caffe_builds_has_no_finding():
    net = load_net(parse_file(FIXTURES / "net_builds.prototxt"))
    assert not net.problems
    assert nan100(net) == []


def test_unknown_bottom_when_no_phase_builds():
    (f,) = nan100(load_net(parse_file(FIXTURES / "net_unknown_bottom.prototxt")))
    assert f.data["caffe_message"] == "Unknown bottom blob 'image' (layer 'conv', bottom index 0)"
    assert f.location.line == 4


def test_v0_padding_into_relu_reports_only_the_upgrade_abort():
    (f,) = nan100(load_net(parse_file(FIXTURES / "v0_padding_into_relu.prototxt")))
    assert f.data["caffe_message"].endswith("Padding layer input to non-convolutional / non-pooling layer type relu")
    assert f.data["phases"] == []
    # a padding layer feeding a convolution is folded, as Caffe does: no finding
    assert nan100(load_net(parse_file(FIXTURES / "v0_padded_conv.prototxt"))) == []


def test_in_place_and_loss_weight_per_top_are_accepted():
    text = """
    layer { name: "in" type: "Input" top: "x" top: "y" input_param { shape { dim: 2 dim: 4 } } }
    layer { name: "r" type: "ReLU" bottom: "x" top: "x" }
    layer { name: "s" type: "Sigmoid" bottom: "x" top: "x" }
    layer { name: "l" type: "SoftmaxWithLoss" bottom: "x" bottom: "y" top: "l" top: "p" loss_weight: 2 loss_weight: 0 }
    """
    assert nan100(load_net(parse_text(text))) == []
    # the same top name at another position than its bottom is not in place
    swapped = text.replace(
        'bottom: "x" top: "x" }\n    layer { name: "s"', 'bottom: "y" top: "x" }\n    layer { name: "s"'
    )
    assert [f.culprit for f in nan100(load_net(parse_text(swapped)))] == ["r"]


def test_abort_in_one_phase_names_that_phase():
    text = """
    layer { name: "in" type: "Input" top: "x" top: "y" input_param { shape { dim: 2 dim: 4 } } }
    layer { name: "l" type: "SoftmaxWithLoss" bottom: "x" bottom: "y" top: "l" top: "p" include { phase: TEST } }
    """
    (f,) = nan100(load_net(parse_text(text)))
    assert f.data["phases"] == ["TEST"]


@pytest.mark.parametrize("name", ["BVLC__caffe__examples__mnist__mnist_autoencoder.prototxt"])
def test_unknown_bottom_message_is_caffes(name):
    """Caffe built this file in TEST phase without stages and printed the message we produce."""
    path = corpus_path("zoo", name)
    with (path.parent / "CAFFE_VERDICTS.tsv").open(newline="") as fh:
        row = next(r for r in csv.DictReader(fh, delimiter="\t") if r["file"] == name)
    caffe = row["instantiate_error"].split("] ", 1)[1]
    net = load_net(parse_file(path))
    shapes = infer_shapes(net.phase_layers("TEST"), net.input_shapes())
    assert next(p.message for p in shapes.problems if p.kind == "missing_bottom") == caffe
    # the solver builds it with a stage, so the file as a whole is not reported
    assert nan100(net) == []


# --- files Caffe's parser rejects: the NAN0xx finding, and no net rule piling on ---------------


def test_seed_file_gets_the_schema_error_only():
    path = corpus_path("oracles", "malformed", "00.prototxt")
    doc = parse_file(path)
    assert not caffe_accepts(doc, "NetParameter")
    net = load_net(doc)
    assert nets_of(Facts(net=net)) == []
    assert list(run_rules(Facts(net=net), NET_RULES)) == []
    report, _ = lint_paths([path])
    assert [f.code for f in report.findings] == ["NAN002"]


def test_fixed_seed_file_is_judged():
    net = load_net(parse_file(corpus_path("oracles", "malformed", "00_fixed.prototxt")))
    assert "NAN101" in {f.code for f in run_rules(Facts(net=net), NET_RULES)}


def test_every_rejected_malformed_net_is_left_to_the_schema_rules():
    folder = corpus_path("oracles", "malformed")
    with (folder / "VERDICTS.tsv").open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if r["kind"] == "net"]
    judged = 0
    for row in rows:
        try:
            doc = parse_file(folder / row["file"])
        except InputError:  # protobuf's parser stops on these: no net at all
            continue
        facts = Facts(net=load_net(doc))
        if row["accepted"] == "no":
            assert nets_of(facts) == [], row["file"]
        else:
            assert nets_of(facts), row["file"]
            judged += 1
    assert judged >= 8


def test_fork_extensions_do_not_silence_the_net_rules():
    """A fork field makes BVLC reject the file, but the fork the user runs reads it: keep checking."""
    path = corpus_path("zoo", "rbgirshick__py-faster-rcnn__models__pascal_voc__ZF__faster_rcnn_end2end__train.prototxt")
    doc = parse_file(path)
    assert not caffe_accepts(doc, "NetParameter")
    codes = {f.code for f in run_rules(Facts(net=load_net(doc)), NET_RULES)}
    assert "NAN110" in codes


def test_schema_error_in_a_fixture_silences_net_rules():
    text = 'layer { name: "d" type: "Input" top: "d" input_param { shape { dim: 1 dim: 1 dim: 10 dim: 10 } } }\n'
    pool = 'layer { name: "p" type: "Pooling" bottom: "d" top: "p" pooling_param { pool: AVE kernel_size: 2 stride: 5 %s } }'
    good = load_net(parse_text(text + pool % ""))
    assert "NAN101" in {f.code for f in run_rules(Facts(net=good), NET_RULES)}
    bad = load_net(parse_text(text + pool % "strid: 5"))
    assert list(run_rules(Facts(net=bad), NET_RULES)) == []


def test_convolution_setup_checks_in_caffes_order():
    base = 'layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 4 dim: 8 dim: 8 } } }\n'
    conv = 'layer { name: "c" type: "Convolution" bottom: "x" top: "c" convolution_param { kernel_size: 3 %s } }'

    def messages(params):
        return [f.data["caffe_message"] for f in nan100(load_net(parse_text(base + conv % params)))]

    assert messages("") == ["Check failed: num_output_ > 0 (0 vs. 0)"]
    assert messages("num_output: 6 group: 3") == ["Check failed: channels_ % group_ == 0 (1 vs. 0)"]
    assert messages("num_output: 6 group: 4") == [
        "Check failed: num_output_ % group_ == 0 (2 vs. 0) Number of output should be multiples of group."
    ]
    assert messages("num_output: 8 group: 4") == []
