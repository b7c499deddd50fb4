"""A few stored lab runs made again under the real Caffe give the same losses, iteration by
iteration (skipped when the Caffe build is absent)."""

from __future__ import annotations

import gzip
import json
import re

import pytest
from tools.lab import matrix, runner

_DISPLAY = re.compile(r"Iteration (\d+) \([^)]*\), loss = (\S+)")


@pytest.fixture(scope="module")
def caffe():
    binary = runner.CAFFE_PREFIX / "bin" / "caffe"
    if not binary.exists():
        pytest.skip(f"no Caffe build at {binary} (../shared/tools/caffe/build.sh makes one)")
    return binary


@pytest.mark.parametrize(
    "run_id",
    [
        "lmdb_nan_float_data.d10.s9907",  # LMDB float_data, caffe train
        "python_loss_zero_count.d10.s2644",  # a Python loss layer in the embedded interpreter
        "poly_without_max_iter.d10.s5292",  # pycaffe solver.step(N)
        "step_without_stepsize.d10.s1595",  # a CHECK abort
    ],
)
def test_rerun_reproduces_the_stored_log(caffe, tmp_path, run_id):
    run = runner.RUNS / run_id
    spec = matrix.RunSpec(**json.loads((run / "spec.json").read_text()))
    outcome = runner.build_one(spec, tmp_path / "out", tmp_path / "work")
    assert outcome.kept, outcome.reason
    old = gzip.decompress((run / "train.log.gz").read_bytes()).decode()
    new = gzip.decompress((tmp_path / "out" / run_id / "train.log.gz").read_bytes()).decode()
    assert _DISPLAY.findall(new) == _DISPLAY.findall(old)
    expected = json.loads((run / "expected.json").read_text())
    again = json.loads((tmp_path / "out" / run_id / "expected.json").read_text())
    for key in ("first_nan_iteration", "first_nonfinite_test_iteration", "abort_message", "outcome"):
        assert again[key] == expected[key]
