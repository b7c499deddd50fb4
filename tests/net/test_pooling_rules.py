"""NAN101-NAN103 on minimal fixtures and on real Caffe runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from nandoctor.config.edits import apply_edits
from nandoctor.config.net import load_net
from nandoctor.config.pooling import PoolParams, pool_geometry
from nandoctor.config.textformat import parse_file, parse_text
from nandoctor.core.registry import Facts
from nandoctor.core.types import Cause, Severity
from nandoctor.rules.net.pooling import EmptyPoolingWindow, PoolingRejectedByCaffe, PoolingSkipsInputs
from tests.conftest import corpus_path
from tests.net.logshapes import caffe_top_shapes

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "net"


def run(rule, net, **options):
    return list(rule().check(Facts(net=net, options=options)))


def fixture_net(name):
    return load_net(parse_file(FIXTURES / name))


def _recheck(net, finding):
    """Apply the finding's edits to the file text and recompute the layer's geometry."""
    fixed = load_net(parse_text(apply_edits(net.doc.text, list(finding.fix.edits)), net.doc.path))
    return run(EmptyPoolingWindow, fixed)


def test_seed_25x25_is_an_ave_nan_error_with_a_verified_fix():
    net = fixture_net("seed_pool_25.prototxt")
    [f] = run(EmptyPoolingWindow, net)
    assert (f.code, f.severity, f.cause, f.culprit) == ("NAN101", Severity.ERROR, Cause.POOLING, "faulty_pooling")
    assert "25x25" in f.message and "6x6" in f.message and "11 of 36" in f.message
    assert "cell (0, 5)" in f.message and "columns [25, 28)" in f.message
    assert f.location.line == 16  # the stride field
    assert f.data["first_cell"] == [0, 5]
    # pad 1 keeps the 6x6 output, so it is preferred; the edit is an insertion after kernel_size
    assert "pad: 1" in f.fix.description and f.fix.safe
    [edit] = f.fix.edits
    assert edit.old == "" and edit.new == "\n    pad: 1"
    assert _recheck(net, f) == []


def test_seed_26x26_has_no_empty_window_but_skips_inputs():
    net = fixture_net("seed_pool_26.prototxt")
    assert run(EmptyPoolingWindow, net) == []
    [info] = run(PoolingSkipsInputs, net)
    assert info.severity == Severity.INFO and "2 of every 5 rows" in info.message
    assert 25 in info.data["risky_sizes"] and 26 not in info.data["risky_sizes"]


def test_max_empty_window_is_an_error_and_fix_is_verified():
    net = fixture_net("max_pool_empty.prototxt")
    [f] = run(EmptyPoolingWindow, net)
    assert f.severity == Severity.ERROR and "-FLT_MAX" in f.message and "5 of 9" in f.message
    assert _recheck(net, f) == []
    # single-line layout: the inserted field stays on the line
    assert all("\n" not in e.new for e in f.fix.edits)


def test_negative_divisor_is_a_warning():
    net = fixture_net("ave_pool_negative_divisor.prototxt")
    [f] = run(EmptyPoolingWindow, net)
    assert f.severity == Severity.WARNING and "silently 0" in f.message
    assert _recheck(net, f) == []


def test_unknown_input_size_gives_only_the_info():
    net = load_net(parse_text('layer { name: "d" type: "Data" top: "data" data_param { batch_size: 4 } }\n'
                              'layer { name: "p" type: "Pooling" bottom: "data" top: "p" '
                              'pooling_param { pool: AVE kernel_size: 3 stride: 5 } }'))  # fmt: skip
    assert run(EmptyPoolingWindow, net) == []
    [info] = run(PoolingSkipsInputs, net)
    assert "unknown" in info.message
    # the same net with --input-shape becomes exact
    [f] = run(EmptyPoolingWindow, net, input_shapes={"data": (4, 1, 25, 25)})
    assert f.severity == Severity.ERROR


def test_rejected_geometry():
    net = load_net(parse_text('input: "x" input_shape { dim: 1 dim: 1 dim: 8 dim: 8 }\n'
                              'layer { name: "p" type: "Pooling" bottom: "x" top: "p" pooling_param { kernel_size: 2 pad: 2 } }'))  # fmt: skip
    [f] = run(PoolingRejectedByCaffe, net)
    assert "pad_h_ < kernel_h_ (2 vs. 2)" in f.message
    assert run(EmptyPoolingWindow, net) == []


def test_good_pooling_is_silent():
    net = load_net(parse_text('input: "x" input_shape { dim: 1 dim: 1 dim: 24 dim: 24 }\n'
                              'layer { name: "p" type: "Pooling" bottom: "x" top: "p" pooling_param { kernel_size: 3 stride: 2 } }'))  # fmt: skip
    for rule in (EmptyPoolingWindow, PoolingSkipsInputs, PoolingRejectedByCaffe):
        assert run(rule, net) == []


def _run_folder(run_id):
    folder = corpus_path("caffe-runs", run_id)
    net = load_net(parse_file(folder / "train_val.prototxt"))
    top_shapes = caffe_top_shapes((folder / "train.log").read_text(errors="replace"))
    return net, top_shapes


@pytest.mark.parametrize(("run_id", "size"), [("r03", "10x10"), ("r60", "20x26")])
def test_caffe_runs_with_nan_pooling_are_flagged(run_id, size):
    net, top_shapes = _run_folder(run_id)
    [f] = run(EmptyPoolingWindow, net, top_shapes=top_shapes)
    assert f.culprit == "pool1" and f.severity == Severity.ERROR and f.cause == Cause.POOLING
    assert size in f.message and "NaN" in f.message
    assert f.fix is not None and f.fix.edits
    assert _recheck(net, f) == [] or all(x.culprit != "pool1" for x in _recheck(net, f))


def test_caffe_run_r01_is_not_an_error():
    net, top_shapes = _run_folder("r01")
    assert run(EmptyPoolingWindow, net, top_shapes=top_shapes) == []
    [info] = run(PoolingSkipsInputs, net, top_shapes=top_shapes)
    assert info.culprit == "pool1" and "26x26" in info.message


def test_r60_fix_keeps_phase_shapes_valid():
    net, top_shapes = _run_folder("r60")
    [f] = run(EmptyPoolingWindow, net, top_shapes=top_shapes)
    fixed = load_net(parse_text(apply_edits(net.doc.text, list(f.fix.edits))))
    pool = next(x for x in fixed.layers if x.name == "pool1")
    geo = pool_geometry(PoolParams.from_message(pool.param("pooling_param")), 20, 26)
    assert geo.ok and not geo.has_empty_window


@pytest.mark.parametrize(("name", "kind"), [("v0_pool_empty.prototxt", "NaN"), ("v1_pool_empty.prototxt", "-FLT_MAX")])
def test_old_syntax_is_checked_and_fixed_in_place(name, kind):
    net = fixture_net(name)
    [f] = run(EmptyPoolingWindow, net)
    assert kind in f.message and f.culprit == "pool"
    assert _recheck(net, f) == []
    if net.version == "v0":  # V0 has no round_mode field: never offered
        assert not any("round_mode" in o for o in f.data["fix_options"])


def test_trace_top_shapes_are_used():
    parser = pytest.importorskip("nandoctor.log.parser")
    folder = corpus_path("caffe-runs", "r03")
    net = load_net(parse_file(folder / "train_val.prototxt"))
    trace = parser.parse_log(str(folder / "train.log"))
    [f] = list(EmptyPoolingWindow().check(Facts(net=net, trace=trace)))
    assert f.culprit == "pool1" and "10x10" in f.message


def test_net_embedded_in_a_solver_gets_edits_in_the_solver_file():
    from nandoctor.config.net import load_net_message

    text = (FIXTURES / "seed_pool_25.prototxt").read_text()
    solver_text = 'base_lr: 0.01\nlr_policy: "fixed"\nnet_param {\n' + text + "}\nmax_iter: 10\n"
    doc = parse_text(solver_text, "solver.prototxt")
    net = load_net_message(doc.root.get("net_param"), doc)
    [f] = run(EmptyPoolingWindow, net)
    assert f.location.path == "solver.prototxt" and f.location.line == 19
    fixed = parse_text(apply_edits(solver_text, list(f.fix.edits)), "solver.prototxt")
    assert run(EmptyPoolingWindow, load_net_message(fixed.root.get("net_param"), fixed)) == []


def test_setup_rejections_need_no_input_size():
    net = load_net(parse_text('layer { name: "d" type: "Data" top: "data" }\n'
                              'layer { name: "g" type: "Pooling" bottom: "data" top: "g" pooling_param { global_pooling: true kernel_size: 3 } }\n'
                              'layer { name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param { kernel_size: 3 pad: 3 } }\n'
                              'layer { name: "ok" type: "Pooling" bottom: "data" top: "ok" pooling_param { kernel_size: 3 stride: 2 } }'))  # fmt: skip
    found = run(PoolingRejectedByCaffe, net)
    assert [f.culprit for f in found] == ["g", "p"]
    assert "Filter size cannot specified" in found[0].message and "pad_h_ < kernel_h_ (3 vs. 3)" in found[1].message


def test_each_phase_size_is_reported_and_the_fix_covers_both():
    net = fixture_net("pool_two_phases.prototxt")
    found = run(EmptyPoolingWindow, net)
    assert [(f.data["input_hw"], f.data["phases"]) for f in found] == [([25, 25], ["TRAIN"]), ([30, 30], ["TEST"])]
    assert found[0].fix.edits == found[1].fix.edits
    assert _recheck(net, found[0]) == []
