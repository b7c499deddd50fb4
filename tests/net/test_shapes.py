"""Shape inference against the shapes Caffe itself printed."""

from __future__ import annotations

import csv

import pytest

from nandoctor.config.net import load_net
from nandoctor.config.shapes import format_shape, infer_shapes, overrides_from_top_shapes, parse_shape
from nandoctor.config.textformat import parse_file, parse_text
from tests.conftest import CORPUS, caffe_runs, corpus_files, corpus_path
from tests.net.logshapes import caffe_top_shapes


@pytest.mark.parametrize(
    "shapes_file", corpus_files("zoo", "shapes", pattern="*.shapes.txt"), ids=lambda p: p.name[:50]
)
def test_zoo_shapes_match_caffe(shapes_file):
    net_file = CORPUS / "zoo" / shapes_file.name[: -len(".shapes.txt")]
    net = load_net(parse_file(net_file))
    layers = net.phase_layers("TEST")
    result = infer_shapes(layers, net.input_shapes())
    caffe = caffe_top_shapes(shapes_file.read_text(), first_net_only=False)
    compared = 0
    for layer in layers:
        if layer.name not in caffe:
            continue
        assert result.top_shapes(layer) == caffe[layer.name], layer.name
        compared += 1
    assert compared >= len(layers) - 1
    assert not result.problems


def _verdict_rows():
    path = CORPUS / "oracles" / "malformed" / "VERDICTS.tsv"
    if not path.is_file():
        return []
    rows = [r for r in csv.DictReader(path.open(), delimiter="\t") if r["top_shapes"]]
    return [pytest.param(r, id=r["file"]) for r in rows]


@pytest.mark.parametrize("row", _verdict_rows())
def test_malformed_oracle_shapes(row):
    net = load_net(parse_file(corpus_path("oracles", "malformed", row["file"])))
    layers = net.phase_layers("TEST")
    result = infer_shapes(layers, net.input_shapes())
    by_name = {layer.name: layer for layer in layers}
    for item in row["top_shapes"].split("; "):
        name, shape = item.split("=")
        layer = by_name[name]
        assert format_shape(result.top_shapes(layer)[0]) == shape, name


NET = """
input: "data" input_shape { dim: 2 dim: 3 dim: 32 dim: 32 }
layer { name: "c" type: "Convolution" bottom: "data" top: "c"
        convolution_param { num_output: 8 kernel_h: 3 kernel_w: 5 pad: 1 stride_h: 2 stride_w: 1 dilation: 2 group: 1 } }
layer { name: "d" type: "Deconvolution" bottom: "c" top: "d" convolution_param { num_output: 4 kernel_size: 4 stride: 2 pad: 1 } }
layer { name: "p" type: "Pooling" bottom: "d" top: "p" pooling_param { pool: AVE kernel_size: 3 stride: 2 round_mode: FLOOR } }
layer { name: "g" type: "Pooling" bottom: "d" top: "g" pooling_param { pool: AVE global_pooling: true } }
layer { name: "cat" type: "Concat" bottom: "p" bottom: "p" top: "cat" }
layer { name: "fl" type: "Flatten" bottom: "cat" top: "fl" }
layer { name: "ip" type: "InnerProduct" bottom: "fl" top: "ip" inner_product_param { num_output: 10 } }
layer { name: "rs" type: "Reshape" bottom: "ip" top: "rs" reshape_param { shape { dim: 0 dim: -1 dim: 5 } } }
layer { name: "sl" type: "Slice" bottom: "rs" top: "s1" top: "s2" slice_param { axis: 2 slice_point: 2 } }
layer { name: "el" type: "Eltwise" bottom: "g" bottom: "g" top: "el" }
layer { name: "cr" type: "Crop" bottom: "d" bottom: "p" top: "cr" }
layer { name: "red" type: "Reduction" bottom: "ip" top: "red" reduction_param { axis: 1 } }
layer { name: "am" type: "ArgMax" bottom: "ip" top: "am" argmax_param { top_k: 3 } }
layer { name: "tile" type: "Tile" bottom: "ip" top: "tile" tile_param { tiles: 3 } }
layer { name: "py" type: "Python" bottom: "ip" top: "py" }
layer { name: "after" type: "ReLU" bottom: "py" top: "after" }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" top: "prob" }
"""


def test_layer_shape_rules():
    net = load_net(parse_text(NET))
    result = infer_shapes(net.layers, net.input_shapes())
    got = {blob: format_shape(result.shape(blob)) for blob in result.shapes}
    assert got["c"] == "2x8x15x26"  # (32+2-5)/2+1, (32+2-9)/1+1
    assert got["d"] == "2x4x30x52"
    assert got["p"] == "2x4x14x25"
    assert got["g"] == "2x4x1x1"
    assert got["cat"] == "2x8x14x25"
    assert got["fl"] == "2x2800"
    assert got["ip"] == "2x10"
    assert got["rs"] == "2x2x5"
    assert (got["s1"], got["s2"]) == ("2x2x2", "2x2x3")
    assert got["el"] == "2x4x1x1"
    assert got["cr"] == "2x4x14x25"
    assert got["red"] == "2"
    assert got["am"] == "2x1x3"
    assert got["tile"] == "2x30"
    assert got["py"] == "?" and got["after"] == "?"
    assert got["loss"] == "" and got["prob"] == "2x10"
    assert [p.kind for p in result.problems] == ["missing_bottom"]  # "label" has no producer


def test_data_layers_from_params_and_overrides():
    text = """
    layer { name: "d" type: "Data" top: "data" top: "label" data_param { batch_size: 64 } transform_param { crop_size: 227 } }
    layer { name: "i" type: "ImageData" top: "img" top: "l2" image_data_param { batch_size: 8 new_height: 40 new_width: 50 is_color: false } }
    layer { name: "h" type: "HDF5Data" top: "x" top: "y" hdf5_data_param { batch_size: 4 } }
    layer { name: "m" type: "MemoryData" top: "m" top: "ml" memory_data_param { batch_size: 2 channels: 1 height: 5 width: 6 } }
    layer { name: "dd" type: "DummyData" top: "z" dummy_data_param { shape { dim: 3 dim: 4 } } }
    layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 96 kernel_size: 11 stride: 4 } }
    layer { name: "pool" type: "Pooling" bottom: "x" top: "pool" pooling_param { kernel_size: 2 stride: 2 } }
    """
    net = load_net(parse_text(text))
    res = infer_shapes(net.layers)
    assert format_shape(res.shape("data")) == "64x?x227x227"
    assert format_shape(res.shape("conv")) == "64x96x55x55"
    assert format_shape(res.shape("img")) == "8x1x40x50"
    assert res.shape("x") is None and res.shape("pool") is None
    assert format_shape(res.shape("m")) == "2x1x5x6"
    assert format_shape(res.shape("z")) == "3x4"
    res = infer_shapes(net.layers, overrides={"x": (4, 1, 9, 9), "data": (1, 3, 100, 100)})
    assert format_shape(res.shape("pool")) == "4x1x5x5"
    assert format_shape(res.shape("conv")) == "1x96x23x23"


def test_negative_and_pooling_problems():
    text = """
    input: "data" input_shape { dim: 1 dim: 1 dim: 4 dim: 4 }
    layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 2 kernel_size: 7 } }
    layer { name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param { kernel_size: 2 pad: 2 } }
    layer { name: "cat" type: "Concat" bottom: "data" bottom: "p" top: "cat" }
    """
    net = load_net(parse_text(text))
    res = infer_shapes(net.layers, net.input_shapes())
    kinds = [(p.layer, p.kind) for p in res.problems]
    assert ("c", "negative") in kinds and ("p", "pooling") in kinds
    assert "pad_h_ < kernel_h_ (2 vs. 2)" in next(p.message for p in res.problems if p.layer == "p")


def test_overrides_from_log_and_parse_shape():
    net = load_net(parse_text('layer { name: "d" type: "Data" top: "data" top: "label" }'))
    assert overrides_from_top_shapes(net.layers, {"d": [(5, 1, 2, 3), (5,)]}) == {"data": (5, 1, 2, 3), "label": (5,)}
    assert parse_shape("64,3,227,227") == (64, 3, 227, 227) == parse_shape("64x3x227x227")
    with pytest.raises(ValueError):
        parse_shape("a,b")


@pytest.mark.parametrize("folder", caffe_runs(), ids=lambda p: p.name)
def test_caffe_run_train_shapes_match_the_log(folder):
    """Data shapes from the log's source layers; every other top shape inferred must equal Caffe's."""
    net = load_net(parse_file(folder / "train_val.prototxt"))
    logged = caffe_top_shapes((folder / "train.log").read_text(errors="replace"))
    layers = net.phase_layers("TRAIN")
    overrides = overrides_from_top_shapes([x for x in layers if not x.bottoms], logged)
    result = infer_shapes(layers, net.input_shapes(), overrides)
    compared = [x for x in layers if x.name in logged and x.bottoms]
    assert compared
    for layer in compared:
        assert result.top_shapes(layer) == logged[layer.name], layer.name


def test_fork_layers_permute_and_roi_pooling():
    text = """
    input: "x" input_shape { dim: 2 dim: 8 dim: 5 dim: 6 }
    input: "rois" input_shape { dim: 7 dim: 5 }
    layer { name: "perm" type: "Permute" bottom: "x" top: "perm" permute_param { order: 0 order: 2 order: 3 order: 1 } }
    layer { name: "roi" type: "ROIPooling" bottom: "x" bottom: "rois" top: "roi" roi_pooling_param { pooled_h: 3 pooled_w: 4 } }
    layer { name: "norm" type: "Normalize" bottom: "x" top: "norm" }
    """
    net = load_net(parse_text(text))
    res = infer_shapes(net.layers, net.input_shapes())
    assert [format_shape(res.shape(b)) for b in ("perm", "roi", "norm")] == ["2x5x6x8", "7x8x3x4", "2x8x5x6"]
