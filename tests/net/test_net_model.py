"""The net model against Caffe's own upgrade output and phase rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from nandoctor.config.net import load_net, load_net_message, lr_mults
from nandoctor.config.textformat import Message, parse_file, parse_text
from tests.conftest import CORPUS, corpus_path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "net"


def _upgraded_pairs():
    folder = CORPUS / "zoo" / "upgraded"
    if not folder.is_dir():
        return []
    pairs = []
    for up in sorted(folder.glob("*.v2.prototxt")):
        original = CORPUS / "zoo" / up.name[: -len(".v2.prototxt")]
        doc = parse_file(original)
        if any(f.name in ("layer", "layers", "input") for f in doc.root):
            pairs.append(pytest.param(original, up, id=original.name[:60]))
    return pairs


def _leaves(msg: Message, prefix: str = "") -> dict[str, list]:
    out: dict[str, list] = {}
    for f in msg.fields:
        key = prefix + f.name
        if isinstance(f.value, Message):
            for k, v in _leaves(f.value, key + ".").items():
                out.setdefault(k, []).extend(v)
        else:
            value = f.value.value
            out.setdefault(key, []).append(float(value) if isinstance(value, (int, float)) else str(value))
    return out


@pytest.mark.parametrize(("original", "upgraded"), _upgraded_pairs())
def test_upgrade_matches_caffe(original, upgraded):
    ours = load_net(parse_file(original))
    caffe = load_net(parse_file(upgraded))
    assert caffe.version == "v2"
    caffe_layers = [
        layer for layer in caffe.layers if not (layer.type == "Input" and layer.index == 0 and ours.input_shapes())
    ]
    if len(caffe_layers) != len(caffe.layers):
        assert ours.input_shapes() == caffe.input_shapes()
    assert [(x.name, x.type, x.bottoms, x.tops) for x in ours.layers] == [
        (x.name, x.type, x.bottoms, x.tops) for x in caffe_layers
    ]
    for mine, theirs in zip(ours.layers, caffe_layers, strict=True):
        assert mine.loss_weights == theirs.loss_weights
        assert lr_mults(mine) == lr_mults(theirs), mine.name  # blobs_lr -> param { lr_mult }
        for f in theirs.msg.fields:
            if f.name.endswith("_param") and isinstance(f.value, Message) and f.name != "transform_param":
                got = mine.param(f.name)
                assert got is not None, (mine.name, f.name)
                want_leaves = _leaves(f.value)
                got_leaves = {k: v for k, v in _leaves(got).items() if k in want_leaves}
                # enum values are names in both; Caffe omits defaults, so only compare what it wrote
                assert got_leaves == want_leaves, (mine.name, f.name)


def test_v0_padding_is_folded_into_the_convolution():
    net = load_net(parse_file(corpus_path("zoo", "BVLC__caffe__examples__cifar__cifar10_18pct.prototxt")))
    assert net.version == "v0"
    conv1 = next(x for x in net.layers if x.name == "conv1")
    assert conv1.bottoms == ["data"]
    assert conv1.param("convolution_param").get("pad") == 2
    assert conv1.param("convolution_param").get("kernel_size") == 5
    assert all(x.type != "padding" for x in net.layers)


def test_phase_rules_follow_caffe():
    text = """
    layer { name: "a" type: "ReLU" include { phase: TRAIN } }
    layer { name: "b" type: "ReLU" include { phase: TEST } }
    layer { name: "c" type: "ReLU" include { stage: "x" stage: "y" } }
    layer { name: "d" type: "ReLU" exclude { not_stage: "x" } }
    layer { name: "e" type: "ReLU" include { min_level: 1 max_level: 2 } }
    layer { name: "f" type: "ReLU" include { phase: TEST } include { stage: "x" } }
    layer { name: "g" type: "ReLU" exclude { phase: TRAIN stage: "x" } }
    layer { name: "h" type: "ReLU" include { phase: 1 } }
    """
    net = load_net(parse_text(text))

    def names(*args, **kw):
        return "".join(x.name for x in net.phase_layers(*args, **kw))

    assert names("TRAIN") == "ag"
    assert names("TEST") == "bfgh"
    assert names("TRAIN", ("x",)) == "adf"
    assert names("TRAIN", ("x", "y")) == "acdf"
    assert names("TEST", (), 1) == "befgh"
    assert names("TEST", (), 3) == "bfgh"
    labels = [label for label, _ in net.variants()]
    assert labels[:2] == ["TRAIN", "TRAIN stage=x"]


def test_loss_weights_defaults_and_explicit():
    text = """
    layer { name: "l1" type: "SoftmaxWithLoss" bottom: "a" bottom: "b" top: "l1" }
    layer { name: "l2" type: "EuclideanLoss" bottom: "a" bottom: "b" top: "l2" loss_weight: 0.5 }
    layer { name: "r" type: "Reduction" bottom: "a" top: "r" }
    layer { name: "r2" type: "Reduction" bottom: "a" top: "r2" loss_weight: 2 }
    layer { name: "p" type: "Python" bottom: "a" top: "p" }
    layer { name: "s" type: "SoftmaxWithLoss" bottom: "a" bottom: "b" top: "s" top: "probs" }
    layers { name: "v1" type: SOFTMAX_LOSS bottom: "a" bottom: "b" top: "v1" }
    """
    net = load_net(parse_text(text))
    weights = {x.name: x.loss_weights for x in net.layers}
    assert weights == {
        "l1": [1.0], "l2": [0.5], "r": [0.0], "r2": [2.0], "p": [0.0], "s": [1.0, 0.0], "v1": [1.0],
    }  # fmt: skip
    assert net.problems  # layer and layers mixed


def test_in_place_and_input_shapes():
    net = load_net(
        parse_text(
            'input: "data" input_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8\n'
            'layer { name: "r" type: "ReLU" bottom: "data" top: "data" }'
        )
    )
    assert net.layers[0].in_place == ["data"]
    assert net.input_shapes() == {"data": (1, 3, 8, 8)}
    net = load_net(
        parse_text('layer { name: "in" type: "Input" top: "a" top: "b" input_param { shape { dim: 2 dim: 5 } } }')
    )
    assert net.input_shapes() == {"a": (2, 5), "b": (2, 5)}


def test_embedded_net_param():
    doc = parse_text('base_lr: 0.1 net_param { name: "n" layer { name: "x" type: "ReLU" } }')
    net = load_net_message(doc.root.get("net_param"), doc)
    assert net.name == "n" and [x.name for x in net.layers] == ["x"]
    assert net.layers[0].location().line == 1


def test_v1_numeric_type_and_location():
    net = load_net(parse_text('\n\nlayers { name: "c" type: 4 }', path="f.prototxt"))
    assert net.layers[0].type == "Convolution"
    assert str(net.layers[0].location()) == "f.prototxt:3:1"
