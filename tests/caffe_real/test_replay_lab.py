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
