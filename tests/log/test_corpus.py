"""Every real Caffe run of ../shared/corpus/caffe-runs against its expected.json."""

from __future__ import annotations

import json
import math
import re

import pytest

from nandoctor.log.parser import parse_log
from nandoctor.log.reconstruct import compare_net, compare_solver
from nandoctor.log.symptoms import first_nonfinite_iteration, symptoms
from tests.conftest import caffe_runs

RUNS = caffe_runs()
LOGS = [(run, name) for run in RUNS for name in ("train.log", "train_debug.log") if (run / name).is_file()]
# runs whose culprit is a layer the debug log must point at (expected.json "culprit"), and bad-input runs
LAYER_CULPRITS = {"r04": "sqrt_err", "r60": "pool1", "r61": "norm", "r62": "log_var"}
INPUT_RUNS = {"r02", "r56", "r64"}


def _expected(run):
    return json.loads((run / "expected.json").read_text())


@pytest.mark.parametrize("run", RUNS, ids=[r.name for r in RUNS])
def test_first_nonfinite_iteration_matches(run):
    exp = _expected(run)
    trace = parse_log(run / "train.log")
    assert first_nonfinite_iteration(trace) == exp["first_nan_iteration"]
    if "first_nonfinite_test_iteration" in exp:
        bad_tests = [t.iteration for t in trace.tests if any(not math.isfinite(o.value) for o in t.outputs)]
        assert (bad_tests[0] if bad_tests else None) == exp["first_nonfinite_test_iteration"]


@pytest.mark.parametrize(("run", "name"), LOGS, ids=[f"{r.name}/{n}" for r, n in LOGS])
def test_solver_and_nets_reconstructed_field_by_field(run, name):
    trace = parse_log(run / name)
    solver_file = run / ("solver_debug.prototxt" if name == "train_debug.log" else "solver.prototxt")
    assert compare_solver(trace.solver, solver_file) == []
    net_file = run / trace.solver.root.get("net")
    assert trace.nets, "the log has net dumps"
    for net in trace.nets:
        assert compare_net(net, net_file) == []
    # one train net, and one test net per test_iter entry
    assert [n.role for n in trace.nets] == ["train"] + ["test"] * len(trace.solver.root.get_all("test_iter"))


@pytest.mark.parametrize(("run", "name"), LOGS, ids=[f"{r.name}/{n}" for r, n in LOGS])
def test_every_lr_and_loss_line_is_matched(run, name):
    text = (run / name).read_text(errors="replace")
    trace = parse_log(run / name)
    lr_lines = [i + 1 for i, line in enumerate(text.splitlines()) if re.search(r"Iteration \d+, lr = ", line)]
    assert [p.line for p in trace.lr] == lr_lines
    loss_lines = [i + 1 for i, line in enumerate(text.splitlines()) if re.search(r"Iteration \d+.*, loss = ", line)]
    assert [p.line for p in trace.train] == loss_lines
    outputs = sum(1 for line in text.splitlines() if "Train net output #" in line)
    assert sum(len(p.outputs) for p in trace.train) == outputs
    assert trace.stats["lines"] == len(text.splitlines())


@pytest.mark.parametrize("run", [r for r in RUNS if (r / "train_debug.log").is_file()], ids=lambda r: r.name)
def test_debug_log_points_at_the_culprit_layer(run):
    trace = parse_log(run / "train_debug.log")
    origin = [s for s in symptoms(trace) if s.kind.startswith("debug_") and s.kind != "debug_growth"]
    if run.name in LAYER_CULPRITS:
        assert origin[0].culprit == LAYER_CULPRITS[run.name]
        assert origin[0].data["phase"] == "forward"
        assert origin[0].cause.value == _expected(run)["expected_cause"]
    elif run.name in INPUT_RUNS:
        assert origin[0].culprit == "data" and origin[0].data["role"] == "top"
        assert origin[0].cause.value == "bad_input"


def test_crash_and_check_failed_runs():
    by_name = {r.name: r for r in RUNS}
    if "r11" not in by_name:
        pytest.skip("corpus not available")
    kinds = [s.kind for s in symptoms(parse_log(by_name["r11"] / "train.log"))]
    assert kinds == ["check_failed"]
    sym = [s for s in symptoms(parse_log(by_name["r21"] / "train.log")) if s.kind == "crash"]
    assert sym and sym[0].data["double_free"] and sym[0].data["after_nonfinite"]


def test_healthy_runs_have_no_symptoms():
    healthy = [r for r in RUNS if _expected(r)["expected_cause"] == "healthy"]
    if not healthy:
        pytest.skip("corpus not available")
    for run in healthy:
        assert symptoms(parse_log(run / "train.log")) == [], run.name
