"""Loss, unsafe-math and layer rules (NAN110-NAN141) on minimal fixtures and real runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from nandoctor.config.edits import apply_edits
from nandoctor.config.net import load_net
from nandoctor.config.textformat import parse_file, parse_text
from nandoctor.core.registry import Facts, run_rules, select_rules
from nandoctor.core.types import Cause, Severity
from tests.conftest import corpus_path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "net"
NET_RULES = select_rules(["NAN1"])


def findings(net, **options):
    return list(run_rules(Facts(net=net, options=options), NET_RULES))


def by_code(found):
    out: dict[str, list[str]] = {}
    for f in found:
        out.setdefault(f.code, []).append(f.culprit)
    return out


def fixture(name):
    return load_net(parse_file(FIXTURES / name))


def test_unsafe_math_positive():
    found = findings(fixture("unsafe_math.prototxt"))
    codes = by_code(found)
    assert codes["NAN120"] == ["log_var"]
    assert sorted(codes["NAN121"]) == ["inv", "sqrt_err"]
    assert codes["NAN122"] == ["exp"]
    assert all(f.cause == Cause.LOSS_FUNCTION for f in found if f.code.startswith("NAN12"))
    log = next(f for f in found if f.code == "NAN120")
    assert "InnerProduct 'var'" in log.message and log.location.line == 6


def test_unsafe_math_negative():
    codes = by_code(findings(fixture("safe_math.prototxt")))
    assert not {"NAN120", "NAN121", "NAN122"} & set(codes), codes


def test_loss_rules():
    found = findings(fixture("losses.prototxt"))
    codes = by_code(found)
    heads = next(f for f in found if f.code == "NAN110")
    assert [h["layer"] for h in heads.data["heads"]] == ["cls", "reg", "info", "mll", "custom"]
    assert [h["weight"] for h in heads.data["heads"]] == [1.0, 500.0, 0.0001, 1.0, 1.0]
    assert sorted(codes["NAN111"]) == ["info", "reg"]
    assert codes["NAN112"] == ["reg"]
    assert sorted(codes["NAN123"]) == ["custom", "focal"]
    assert codes["NAN124"] == ["info"]
    assert codes["NAN125"] == ["mll"]
    assert next(f for f in found if f.code == "NAN125").severity == Severity.ERROR
    assert all(f.cause == Cause.GRADIENT_EXPLOSION for f in found if f.code in ("NAN110", "NAN111", "NAN112"))


def test_balanced_single_head_is_quiet():
    net = load_net(parse_text('layer { name: "in" type: "Input" top: "a" top: "b" }\n'
                              'layer { name: "l" type: "SoftmaxWithLoss" bottom: "a" bottom: "b" top: "l" }\n'
                              'layer { name: "e" type: "EuclideanLoss" bottom: "a" bottom: "b" top: "e" loss_weight: 0.5 }'))  # fmt: skip
    assert set(by_code(findings(net))) == {"NAN110"}


def test_risky_layers_positive():
    codes = by_code(findings(fixture("risky_layers.prototxt")))
    assert codes["NAN130"] == ["bn1"]
    assert codes["NAN131"] == ["bn2"]
    assert codes["NAN132"] == ["bn2"]
    assert codes["NAN133"] == ["lrn"]
    assert codes["NAN134"] == ["prod"]
    assert codes["NAN135"] == ["mvn"]
    assert codes["NAN140"] == ["c1"]
    assert codes["NAN141"] == ["c2", "fc"]


def test_risky_layers_negative():
    assert set(by_code(findings(fixture("safe_layers.prototxt")))) == {"NAN110"}


def test_deploy_nets_skip_training_checks():
    net = load_net(parse_text('input: "x" input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n'
                              'layer { name: "bn" type: "BatchNorm" bottom: "x" top: "x" batch_norm_param { use_global_stats: true } }\n'
                              'layer { name: "c" type: "Convolution" bottom: "x" top: "c" convolution_param { num_output: 2 kernel_size: 3 } }'))  # fmt: skip
    assert findings(net) == []


@pytest.mark.parametrize(
    "name", ["unsafe_math.prototxt", "losses.prototxt", "risky_layers.prototxt", "seed_pool_25.prototxt"]
)
def test_every_offered_edit_removes_its_finding(name):
    net = fixture(name)
    for f in findings(net):
        if f.fix is None or not f.fix.edits:
            continue
        text = apply_edits(net.doc.text, list(f.fix.edits))
        fixed = load_net(parse_text(text, net.doc.path))
        again = [g for g in findings(fixed) if g.code == f.code and g.culprit == f.culprit]
        assert all(g.severity.rank > f.severity.rank for g in again), (f.code, f.culprit, [g.message for g in again])


@pytest.mark.parametrize(
    ("run_id", "code", "culprit"),
    [("r04", "NAN121", "sqrt_err"), ("r61", "NAN121", "norm"), ("r62", "NAN120", "log_var")],
)
def test_caffe_runs_unsafe_constructions(run_id, code, culprit):
    net = load_net(parse_file(corpus_path("caffe-runs", run_id, "train_val.prototxt")))
    found = findings(net)
    hit = [f for f in found if f.code == code and f.culprit == culprit]
    assert hit and hit[0].cause == Cause.LOSS_FUNCTION
    assert culprit in hit[0].message


def test_caffe_run_r63_loss_weight():
    net = load_net(parse_file(corpus_path("caffe-runs", "r63", "train_val.prototxt")))
    codes = by_code(findings(net))
    assert codes["NAN111"] == ["loss_bbox"] and codes["NAN112"] == ["loss_bbox"]


def test_healthy_runs_have_no_warnings():
    for run_id in ("r01", "r14", "r19", "r53", "r54", "r57"):
        net = load_net(parse_file(corpus_path("caffe-runs", run_id, "train_val.prototxt")))
        bad = [f for f in findings(net) if f.severity != Severity.INFO]
        assert not bad, (run_id, [f.message for f in bad])


def test_v0_insertions_go_into_the_layers_own_block():
    net = fixture("v0_padded_conv.prototxt")
    [f] = [f for f in findings(net) if f.code == "NAN140"]
    [edit] = f.fix.edits
    assert edit.line == 21 and "weight_filler" in edit.new  # after kernelsize in conv1, not in pad1
    fixed = load_net(parse_text(apply_edits(net.doc.text, [edit])))
    conv = next(x for x in fixed.layers if x.name == "conv1")
    assert conv.param("convolution_param").get("weight_filler").get("type") == "xavier"
    assert conv.param("convolution_param").get("pad") == 2


def test_loss_rules_negative():
    """A Python layer that is no loss, InfogainLoss on raw scores (Caffe >= 1.0: info only), and a
    MultinomialLogisticLoss after a Softmax."""
    net = load_net(parse_text("""
    layer { name: "in" type: "Input" top: "x" top: "y" input_param { shape { dim: 2 dim: 5 } shape { dim: 2 } } }
    layer { name: "aug" type: "Python" bottom: "x" top: "xa" python_param { module: "aug" layer: "Jitter" } }
    layer { name: "fc" type: "InnerProduct" bottom: "xa" top: "fc" inner_product_param { num_output: 3 weight_filler { type: "xavier" } } }
    layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
    layer { name: "info" type: "InfogainLoss" bottom: "fc" bottom: "y" top: "info" }
    layer { name: "mll" type: "MultinomialLogisticLoss" bottom: "prob" bottom: "y" top: "mll" }
    """))  # fmt: skip
    found = findings(net)
    assert not [f for f in found if f.code in ("NAN123", "NAN125")], [f.message for f in found]
    [info] = [f for f in found if f.code == "NAN124"]
    assert info.severity is Severity.INFO and info.culprit == "info"
    assert not [f for f in found if f.severity is not Severity.INFO]
