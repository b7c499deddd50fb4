"""The lr engine against what real Caffe printed: the lr oracle and the caffe-runs logs."""

from __future__ import annotations

import collections
import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from nandoctor.config import lr
from nandoctor.config.solver import load_solver
from nandoctor.config.textformat import parse_file
from nandoctor.core.registry import Facts, run_rules, select_rules
from tests.conftest import CORPUS, caffe_runs

ORACLE = CORPUS / "oracles" / "lr"
LR_LINE = re.compile(r"\] Iteration (\d+), lr = (\S+)")
MULTISTEP_LINE = re.compile(r"MultiStep Status: Iteration (\d+), step = (\d+)")


def _index() -> list[dict]:
    if not (ORACLE / "INDEX.tsv").is_file():
        return []
    with (ORACLE / "INDEX.tsv").open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _printed() -> dict[str, list[tuple[int, str]]]:
    out: dict[str, list[tuple[int, str]]] = collections.defaultdict(list)
    if (ORACLE / "lr.csv").is_file():
        with (ORACLE / "lr.csv").open(newline="") as fh:
            for row in csv.DictReader(fh):
                out[row["config"]].append((int(row["iteration"]), row["lr_printed"]))
    return out


INDEX = _index()
PRINTED = _printed()


def _horizon(solver, row) -> lr.Horizon:
    n = int(row["command"].split()[-1]) if row["runner"] == "step" else None
    return lr.horizon(lr.LrParams.from_solver(solver), n)


@pytest.mark.parametrize("row", INDEX, ids=lambda r: r["config"])
def test_oracle_config(row):
    solver = load_solver(parse_file(ORACLE / f"{row['config']}.prototxt"))
    h = _horizon(solver, row)
    if row["fatal_message"]:
        abort = lr.caffe_abort(solver)
        assert abort is not None
        # INDEX.tsv strips the trailing blank of glog lines; Caffe's own message may end in one.
        assert abort.text.rstrip() == row["fatal_message"]
        with pytest.raises(lr.LrAbort):
            lr.schedule(solver, h.stop)
        (finding,) = [f for f in run_rules(Facts(solver=solver), select_rules(["NAN200"]))]
        assert finding.data["fatal"].rstrip() == row["fatal_message"]
        assert row["fatal_message"] in finding.message
        return
    assert lr.caffe_abort(solver) is None
    rates = lr.schedule(solver, h.stop)
    printed = PRINTED[row["config"]]
    assert len(printed) == int(row["lr_lines"])
    got = [(it, lr.format_lr(rates[it])) for it, _ in printed]
    assert got == printed
    # Caffe prints exactly at the display points of the iterations that run.
    assert lr.display_points(solver, h.stop).tolist() == [it for it, _ in printed]


@pytest.mark.parametrize("row", [r for r in INDEX if r["lr_policy"] == "multistep"], ids=lambda r: r["config"])
def test_oracle_multistep_status_lines(row):
    log = (ORACLE / f"{row['config']}.lr.log").read_text()
    logged = [(int(a), int(b)) for a, b in MULTISTEP_LINE.findall(log)]
    solver = load_solver(parse_file(ORACLE / f"{row['config']}.prototxt"))
    p = lr.LrParams.from_solver(solver)
    stop = _horizon(solver, row).stop
    ours = [(at, k + 1) for k, at in enumerate(lr.multistep_advances(p.stepvalues)) if at < stop]
    assert ours == logged


def test_oracle_prints_negative_nan_for_invalid_operations():
    # 0/0 (poly without max_iter) and powf(negative, 0.9) both print "-nan" on x86.
    if not INDEX:
        pytest.skip("corpus not available")
    assert PRINTED["11_poly_no_max_iter"][0] == (0, "-nan")
    assert PRINTED["16_poly_past_max_iter"][-1] == (109, "-nan")


RUNS = [r for r in caffe_runs() if LR_LINE.search((r / "train.log").read_text(errors="replace"))]


@pytest.mark.parametrize("run", RUNS, ids=lambda p: p.name)
def test_caffe_run_lr_lines(run):
    expected = json.loads((run / "expected.json").read_text())
    printed = [(int(a), b) for a, b in LR_LINE.findall((run / "train.log").read_text(errors="replace"))]
    iters = None
    if expected["driver"] == "step":
        iters = int(re.search(r"step_driver \S+ (\d+)", expected["command"]).group(1))
    solver = load_solver(parse_file(run / "solver.prototxt"))
    h = lr.horizon(solver, iters)
    rates = lr.schedule(solver, h.stop)
    assert [(it, lr.format_lr(rates[it])) for it, _ in printed] == printed


def test_schedule_of_iteration_subsets_matches_full_range():
    if not INDEX:
        pytest.skip("corpus not available")
    for row in INDEX:
        if row["fatal_message"]:
            continue
        solver = load_solver(parse_file(ORACLE / f"{row['config']}.prototxt"))
        stop = _horizon(solver, row).stop
        full = lr.schedule(solver, stop)
        picks = np.arange(stop)[::7][::-1]
        assert np.array_equal(lr.schedule(solver, picks).view(np.uint32), full[picks].view(np.uint32))


# --- policies no caffe-runs log prints ------------------------------------------------------------


def test_runs_print_every_policy_but_sigmoid():
    """Keeps the fixture below honest: if a run ever prints sigmoid, the real log replaces it."""
    if not RUNS:
        pytest.skip("corpus not available")
    policies = {load_solver(parse_file(r / "solver.prototxt")).value("lr_policy") for r in RUNS}
    assert set(lr.POLICIES) - policies == {"sigmoid"}


def test_sigmoid_fixture_against_the_formula():
    """Values worked out by hand from lr = base_lr / (1 + e^(-gamma (iter - stepsize))), base_lr 0.01,
    gamma 0.05, stepsize 100 (e.g. iter 0: 0.01 / (1 + e^5) = 0.01 / 149.413159 = 6.69285e-05)."""
    path = Path(__file__).resolve().parents[1] / "fixtures" / "solver" / "lr_sigmoid.prototxt"
    solver = load_solver(parse_file(path))
    h = lr.horizon(solver)
    assert (h.stop, h.runner) == (301, "train")
    points = lr.display_points(solver, h.stop).tolist()
    assert points == [0, 50, 100, 150, 200, 250, 300]
    by_hand = [6.69285e-05, 0.000758582, 0.005, 0.00924142, 0.00993307, 0.00999447, 0.00999955]
    rates = lr.schedule(solver, h.stop)
    for it, want in zip(points, by_hand, strict=True):
        got = float(rates[it])
        assert abs(got - want) <= 1e-6 * want, (it, got, want)  # float32 arithmetic, 6 printed digits
    assert lr.format_lr(rates[100]) == "0.005"
    assert not [f for f in run_rules(Facts(solver=solver), select_rules(["NAN2"])) if f.severity.value != "info"]
