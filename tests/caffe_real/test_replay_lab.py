"""`nandoctor replay RUN --run` against the real Caffe, on lab runs written whole (configs, seeded
data, the original log): the debug_info copy fails where the original did and names the layer; the
input probe names the bad batch. Skipped without a Caffe build."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from tools.lab import runner

pytestmark = pytest.mark.caffe


def _replay(caffe_env, run, out, *extra):
    done = subprocess.run(
        [sys.executable, "-m", "nandoctor", "replay", str(run), "--out", str(out), "--run", "--json", *extra],
        env={**caffe_env, "OPENBLAS_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)["run"]


def _lab_run(run_id, tmp_path):
    return runner.materialize(runner.RUNS / run_id, tmp_path / run_id)


def test_debug_replay_of_a_loss_layer_nan_names_the_layer(caffe_env, tmp_path):
    run = _lab_run("sqrt_of_error.d10.s6832", tmp_path)  # Power 0.5 of a signed error: NaN at iteration 0
    result = _replay(caffe_env, run, tmp_path / "out")
    assert result["status"] == "reproduced" and result["disagreement"] is None
    assert result["first_nonfinite_iteration"] == 0
    loc = result["localization"]
    assert (loc["layer"], loc["layer_type"], loc["phase"], loc["cause"]) == (
        "root_err",
        "Power",
        "forward",
        "loss_function",
    )


def test_debug_replay_of_an_explosion_fails_within_the_original_display_window(caffe_env, tmp_path):
    run = _lab_run("high_lr_regression.d10.s9291", tmp_path)
    expected = json.loads((run / "expected.json").read_text())
    result = _replay(caffe_env, run, tmp_path / "out")
    assert result["status"] == "reproduced" and result["disagreement"] is None
    # the original displays every 10 iterations; the replay displays every one
    assert expected["first_nan_iteration"] - 10 < result["first_nonfinite_iteration"] <= expected["first_nan_iteration"]


def test_input_probe_names_the_batch_with_the_nan_records(caffe_env, tmp_path):
    run = _lab_run("lmdb_nan_float_data.d10.s9907", tmp_path)  # NaN in records 170, 171, 185: batch 5 of 32 records
    result = _replay(caffe_env, run, tmp_path / "out", "--probe-input")
    hits = [(h["layer"], h["top"], h["phase"], h["iteration"]) for h in result["probe"]]
    assert ("data", "data", "train", 5) in hits


def _prompt(run_id, tmp_path):
    """What the lab stored about a run, and the run written whole."""
    run = _lab_run(run_id, tmp_path)
    return run, json.loads((run / "expected.json").read_text())


def test_a_stepped_pycaffe_run_replays_stepped(caffe_env, tmp_path):
    # train.py calls solver.step(40) on a poly solver without max_iter: only a stepped solver
    # divides by max_iter = 0 and prints lr = -nan from iteration 0 (caffe train would run 0 iterations)
    run, expected = _prompt("poly_without_max_iter.d10.s5292", tmp_path)
    assert "solver.step" in (run / "train.py").read_text()
    result = _replay(caffe_env, run, tmp_path / "out")
    plan = json.loads((tmp_path / "out" / "replay.json").read_text())
    # the lr line is non-finite from iteration 0, before the loss display at 10 shows it
    assert plan["first_nonfinite_iteration"] == 0 < expected["first_nan_iteration"]
    assert plan["steps"] == 0 + 5 and "max_iter" not in plan["changes"]
    assert result["status"] == "reproduced" and result["disagreement"] is None
    log = (tmp_path / "out" / "replay.log").read_text()
    assert "Iteration 0, lr = -nan" in log and "Solving" not in log
    script = (tmp_path / "out" / "replay.sh").read_text()
    assert "pycaffe_driver.py" in script and "--steps" in script


def _with_snapshots(run, every, caffe_env):
    """Train the run again as it was, but snapshotting every ``every`` iterations (a side effect
    that changes no number), so a replay has snapshots to resume from; returns the new log."""
    solver = run / "solver.prototxt"
    solver.write_text(solver.read_text() + f'snapshot: {every}\nsnapshot_prefix: "snaps/run"\n')
    (run / "snaps").mkdir()
    done = subprocess.run(
        [caffe_env["CAFFE_BIN"], "train", "--solver=solver.prototxt"], cwd=run, capture_output=True,
        env={**caffe_env, "OPENBLAS_NUM_THREADS": "1"}, timeout=600, check=False,
    )  # fmt: skip
    (run / "train.log").write_bytes(done.stderr)
    return done.stderr.decode()


def test_resuming_reproduces_an_lr_failure_from_the_snapshot(caffe_env, tmp_path):
    run, expected = _prompt("poly_negative_power.d10.s4128", tmp_path)
    _with_snapshots(run, 50, caffe_env)
    result = _replay(caffe_env, run, tmp_path / "out")
    plan = json.loads((tmp_path / "out" / "replay.json").read_text())
    # the lr is a function of the iteration alone: which batches the replay reads does not matter
    assert plan["start_iteration"] == 100 and plan["snapshot"].endswith("run_iter_100.solverstate")
    assert result["status"] == "reproduced" and result["disagreement"] is None
    assert expected["first_nan_iteration"] - 10 < result["first_nonfinite_iteration"] <= expected["first_nan_iteration"]


def test_resuming_says_plainly_why_a_one_batch_failure_is_not_reproduced(caffe_env, tmp_path):
    run, expected = _prompt("hdf5_nan_rows.d10.s6005", tmp_path)
    _with_snapshots(run, 10, caffe_env)
    resumed = _replay(caffe_env, run, tmp_path / "resumed")
    plan = json.loads((tmp_path / "resumed" / "replay.json").read_text())
    assert plan["start_iteration"] == 10 and plan["same_batches"] is False
    assert any("restarts at its first record" in n for n in plan["notes"])
    # the resumed readers start over at the first record: the bad rows come 10 iterations late
    assert result_disagrees(resumed, "--no-resume")
    again = _replay(caffe_env, run, tmp_path / "from0", "--no-resume")
    assert again["status"] == "reproduced" and again["disagreement"] is None
    assert expected["first_nan_iteration"] - 10 < again["first_nonfinite_iteration"] <= expected["first_nan_iteration"]


def result_disagrees(result, advice):
    return result["disagreement"] is not None and advice in result["disagreement"]
