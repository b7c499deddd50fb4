"""debug_info localisation: culprit layer and phase on the corpus debug logs, explosion path and loss head."""

from __future__ import annotations

import json
import math

import pytest

from nandoctor.config.net import load_net
from nandoctor.config.textformat import parse_file
from nandoctor.core.types import Cause
from nandoctor.log.debug_analysis import layer_matrix, localize
from nandoctor.log.symptoms import symptoms
from tests.conftest import caffe_runs
from tests.log.conftest import parse_text_log
from tests.replay.debuglog import DebugLog

DEBUG_RUNS = [r for r in caffe_runs() if (r / "train_debug.log").is_file()]
INPUT_TYPES = {"Data", "HDF5Data", "ImageData"}


def _net(run):
    return load_net(parse_file(run / "train_val.prototxt"))


def _expected_layer(run) -> tuple[str, str]:
    """(layer, cause) the debug log must name, read from expected.json and the net file."""
    exp = json.loads((run / "expected.json").read_text())
    net = _net(run)
    names = {ly.name for ly in net.layers}
    culprit = exp["culprit"]
    if exp["expected_cause"] == "bad_input":
        data = [ly.name for ly in net.phase_layers("TRAIN") if ly.type in INPUT_TYPES]
        return data[0], "bad_input"
    layer = culprit.split(".")[0]
    assert layer in names, f"{run.name}: culprit {culprit} names no layer"
    return layer, exp["expected_cause"]


@pytest.mark.parametrize("run", DEBUG_RUNS, ids=lambda r: r.name)
def test_corpus_debug_log_names_the_culprit_layer_and_phase(run):
    from nandoctor.log import parse_log

    layer, cause = _expected_layer(run)
    loc = localize(parse_log(run / "train_debug.log"))
    assert loc is not None
    assert loc.layer == layer
    assert loc.cause.value == cause
    # forward origins (data, pooling, loss construction) vs an explosion driven by a loss head's gradient
    assert loc.phase == ("backward" if cause == "gradient_explosion" else "forward")
    assert loc.explosion is (cause == "gradient_explosion")


def test_corpus_loss_head_explosion_path_runs_from_the_head_to_the_first_layer():
    from nandoctor.log import parse_log

    run = next((r for r in DEBUG_RUNS if r.name == "r63"), None)
    if run is None:
        pytest.skip("corpus not available")
    loc = localize(parse_log(run / "train_debug.log"))
    net = _net(run)
    by_name = {ly.name: ly for ly in net.layers}
    assert loc.loss_head == "loss_bbox" and loc.path[0] == "loss_bbox"
    assert by_name["loss_bbox"].loss_weights == [200.0]
    # the path follows bottoms towards the input and never visits the other head's branch
    first_conv = next(ly.name for ly in net.layers if ly.type == "Convolution")
    assert loc.path[-1] == first_conv
    assert not {"loss_cls", "cls_score"} & set(loc.path)
    for a, b in zip(loc.path, loc.path[1:], strict=False):
        if a in by_name and b in by_name:
            assert set(by_name[a].bottoms) & set(by_name[b].tops), (a, b)
    json.dumps(loc.to_dict(), allow_nan=False)  # standard JSON: inf/nan as text
    heads = {h["layer"]: h for h in loc.loss_heads}
    assert heads["loss_bbox"]["grew_at"] < heads["loss_cls"]["grew_at"]
    assert heads["loss_bbox"]["share"] > 0.99
    # the first non-finite value (bbox_pred inf) is only the end of that explosion
    origin = next(s for s in symptoms(parse_log(run / "train_debug.log")) if s.kind == "debug_forward_origin")
    assert origin.data["after_growth"] and origin.cause is Cause.GRADIENT_EXPLOSION
    assert origin.data["loss_head"] == "loss_bbox" and origin.data["growth_iteration"] < origin.iteration


@pytest.mark.parametrize("run", DEBUG_RUNS, ids=lambda r: r.name)
def test_corpus_findings_carry_the_contract_keys(run):
    from nandoctor.cli.log import log_findings
    from nandoctor.log import parse_log

    report = log_findings(parse_log(run / "train_debug.log"), select=["NAN50"])
    assert report.findings
    for f in report.findings:
        assert f.data["phase"] in ("forward", "backward", "update")
        assert isinstance(f.data["layer"], str) and isinstance(f.data["iteration"], int)
        json.dumps(f.to_dict())
    growth = [f for f in report.findings if f.code == "NAN503"]
    if run.name == "r63":
        assert growth[0].culprit == "loss_bbox" and growth[0].data["loss_head"] == "loss_bbox"
        assert len(growth[0].data["path"]) > 5


def _two_heads(weight_b: float, grow_b: bool) -> str:
    log = DebugLog(loss_weights={"loss_a": 1, "loss_b": weight_b})
    for it in range(4):
        big = 1e4**it if grow_b else 1.0
        log.fwd("data", 0.5).fwd("fc", 0.3 * (big if it > 0 else 1)).param("fc", 0, 0.1)
        log.fwd("fc_split", 0.3, "fc_split_0").fwd("fc_split", 0.3, "fc_split_1")
        log.fwd("loss_a", 2.3).fwd("pred_b", 0.2 * big).fwd("loss_b", 5.0 * big)
        log.back("loss_b", "pred_b", 0.5 * big).back("pred_b", "fc_split_1", 0.2 * big)
        log.back("loss_a", "fc_split_0", 0.01).back("fc_split", "fc", 0.2 * big).pdiff("fc", 0, 0.4 * big)
        log.end(it)
    return log.text()


def test_loss_head_that_grows_first_is_named_with_its_path():
    loc = localize(parse_text_log(_two_heads(100, grow_b=True)))
    assert (loc.layer, loc.phase, loc.loss_head, loc.iteration) == ("loss_b", "backward", "loss_b", 1)
    assert loc.path == ["loss_b", "pred_b", "fc_split", "fc"]
    assert loc.cause is Cause.GRADIENT_EXPLOSION


def test_no_growth_no_explosion():
    assert localize(parse_text_log(_two_heads(100, grow_b=False))) is None


def test_single_head_with_weight_one_is_not_a_loss_head_problem():
    log = DebugLog(loss_weights={"loss": 1})
    for it, scale in enumerate((1, 1e4, 1e8)):
        log.fwd("ip", 0.2 * scale).param("ip", 0, 0.1).fwd("loss", 2.0 * scale)
        log.back("loss", "ip", 0.1 * scale).back("ip", "data", 0.05 * scale).pdiff("ip", 0, 0.3 * scale)
        log.end(it)
    loc = localize(parse_text_log(log.text()))
    assert loc.loss_head is None and loc.explosion
    assert [h["layer"] for h in loc.loss_heads] == ["loss"]


def test_weights_that_jump_first_point_at_the_update():
    log = DebugLog()
    for it, w in enumerate((0.1, 0.1, 500.0)):
        log.fwd("data", 0.5).fwd("conv1", 0.2).param("conv1", 0, 0.1).fwd("conv2", 0.3 if it < 2 else 5e3)
        log.param("conv2", 0, w).back("conv2", "conv1", 0.01).end(it)
    loc = localize(parse_text_log(log.text()))
    assert (loc.layer, loc.phase, loc.iteration) == ("conv2", "update", 2)


def test_input_that_jumps_is_bad_input_not_an_explosion():
    log = DebugLog(types={"data": "HDF5Data", "ip": "InnerProduct"})
    for it, x in enumerate((0.5, 0.5, 1e30)):
        log.fwd("data", x).fwd("ip", x).end(it)
    trace = parse_text_log(log.text())
    loc = localize(trace)
    assert (loc.layer, loc.phase, loc.cause, loc.explosion) == ("data", "forward", Cause.BAD_INPUT, False)
    growth = next(s for s in symptoms(trace) if s.kind == "debug_growth")
    assert growth.cause is Cause.BAD_INPUT and growth.culprit == "data" and growth.data["phase"] == "forward"


def test_backward_origin_and_update_phases():
    log = DebugLog()
    log.fwd("ip", 0.2).back("loss", "ip", "inf").end(0)
    loc = localize(parse_text_log(log.text()))
    assert (loc.layer, loc.phase) == ("loss", "backward")
    log = DebugLog()
    log.fwd("ip", 0.2).param("ip", 0, 0.1).end(0).fwd("ip", 0.2).param("ip", 0, "nan").end(1)
    loc = localize(parse_text_log(log.text()))
    assert (loc.layer, loc.phase, loc.iteration) == ("ip", "update", 1)


def test_layer_matrix_keeps_order_and_nonfinite_cells():
    log = DebugLog()
    log.fwd("data", 0.5).fwd("conv1", 0.2).back("conv1", "data", 0.01).end(0)
    log.fwd("data", 0.5).fwd("conv1", "nan").end(1)
    seg = parse_text_log(log.text()).segments[0]
    names, its, cells = layer_matrix(seg, "forward")
    assert names == ["data", "conv1"] and its == [0, 1]
    assert cells[0] == [0.5, 0.5] and cells[1][0] == 0.2 and math.isnan(cells[1][1])
    names, its, cells = layer_matrix(seg, "backward")
    assert names == ["conv1"] and cells == [[0.01, None]]
