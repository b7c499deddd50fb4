"""The lab's runs: the counts and split the accuracy figures rest on, ground truth that agrees
with each stored log, and run folders that can be written again exactly from their spec."""

from __future__ import annotations

import gzip
import json
from collections import Counter

import pytest
from tools.lab import datasets, matrix, nets, protos, runner, truth
from tools.lab.mechanisms import REGISTRY

RUNS = runner.RUNS


def _expected() -> list[dict]:
    return [json.loads((p / "expected.json").read_text()) for p in sorted(RUNS.iterdir()) if p.is_dir()]


EXPECTED = _expected()


def _log(run_id: str) -> str:
    return gzip.decompress((RUNS / run_id / "train.log.gz").read_bytes()).decode()


def test_counts_and_split():
    assert len(EXPECTED) >= 300
    failing = {e["mechanism"] for e in EXPECTED if e["expected_cause"] != "healthy"}
    healthy = {e["healthy_kind"] for e in EXPECTED if e["expected_cause"] == "healthy"}
    assert len(failing) >= 30
    assert len(healthy) >= 10
    assert {e["expected_cause"] for e in EXPECTED} == {
        "gradient_explosion",
        "lr_policy",
        "loss_function",
        "bad_input",
        "pooling",
        "healthy",
    }
    parts = Counter(e["part"] for e in EXPECTED)
    assert parts["heldout"] * 3 >= len(EXPECTED)
    # held out by mechanism and by shape: some of each occur only in the held-out part
    by_part = {
        p: ({e["mechanism"] for e in EXPECTED if e["part"] == p}, {e["shape"] for e in EXPECTED if e["part"] == p})
        for p in ("tune", "heldout")
    }
    assert by_part["heldout"][0] - by_part["tune"][0]
    assert by_part["heldout"][1] - by_part["tune"][1]
    for e in EXPECTED:
        held = e["mechanism"] in matrix.HELD_OUT_MECHANISMS or e["shape"] in matrix.HELD_OUT_SHAPES
        assert e["part"] == ("heldout" if held else "tune"), e["id"]


def test_every_planned_run_is_kept_or_its_rejection_recorded():
    kept = {e["id"] for e in EXPECTED}
    rejected = {line.split("\t")[0] for line in (RUNS / "REJECTED.tsv").read_text().splitlines() if line}
    planned = {s.id for s in matrix.runs()}
    assert kept | rejected == planned
    assert not kept & rejected
    index = (RUNS / "INDEX.tsv").read_text().splitlines()[1:]
    assert sorted(line.split("\t")[0] for line in index) == sorted(kept)


def test_expected_agrees_with_each_log():
    for e in EXPECTED:
        t = truth.read(_log(e["id"]), e["caffe_exit_code"])
        assert t.outcome == e["outcome"], e["id"]
        assert t.first_nan_iteration == e["first_nan_iteration"], e["id"]
        assert t.first_nonfinite_test_iteration == e["first_nonfinite_test_iteration"], e["id"]
        assert t.abort_message == e["abort_message"], e["id"]
        if e["expected_cause"] == "healthy":
            assert t.outcome == "healthy" and e["caffe_exit_code"] == 0, e["id"]
        else:
            assert t.outcome in ("nonfinite", "abort"), e["id"]


def test_configs_regenerate_exactly_from_the_spec(tmp_path):
    for e in EXPECTED:
        spec = matrix.RunSpec(**json.loads((RUNS / e["id"] / "spec.json").read_text()))
        plan = runner.plan_for(spec)
        assert nets.solver_text(plan.solver) == (RUNS / e["id"] / "solver.prototxt").read_text(), e["id"]
        assert nets.net(plan.net_name, list(plan.layers)) == (RUNS / e["id"] / "train_val.prototxt").read_text()
        assert plan.cause == e["expected_cause"] and spec.mechanism == e["mechanism"]


@pytest.mark.parametrize("run_id", ["lmdb_nan_float_data.d10.s9907", "hdf5_nan_rows.d10.s6005"])
def test_materialized_data_is_the_seeded_data(tmp_path, run_id):
    folder = runner.materialize(RUNS / run_id, tmp_path / run_id)
    assert (folder / "train.log").read_text() == _log(run_id)
    spec = json.loads((RUNS / run_id / "spec.json").read_text())
    ds = runner.plan_for(matrix.RunSpec(**spec)).datasets[0]
    x, y = datasets.generate(ds, 1)
    if ds["backend"] == "lmdb":
        import lmdb

        env = lmdb.open(str(folder / ds["name"]), readonly=True, lock=False)
        with env.begin() as txn:
            values = [v for _, v in txn.cursor()]
        assert values == [protos.datum(x[i], int(y[i]), as_float=True) for i in range(len(x))]
    else:
        import h5py
        import numpy as np

        with h5py.File(folder / "data/train.h5", "r") as f:
            np.testing.assert_array_equal(f["data"][...], x)
        # the poisoned rows really are NaN, and no others
        bad = sorted(set(np.argwhere(np.isnan(x.reshape(len(x), -1)))[:, 0].tolist()))
        assert bad == [420, 421, 422]


def test_seeded_data_is_deterministic_and_seed_dependent():
    spec = {"name": "train", "backend": "lmdb", "n": 64, "shape": [1, 4, 4], "classes": 3, "seed": 5}
    a, la = datasets.generate(spec)
    b, lb = datasets.generate(spec)
    c, _ = datasets.generate(dict(spec, seed=6))
    assert (a == b).all() and (la == lb).all()
    assert not (a == c).all()
    test_x, _ = datasets.generate(spec, split=2)
    assert not (a == test_x).all()


def test_every_mechanism_names_its_culprit():
    for name, mech in REGISTRY.items():
        plan = mech.build(1)
        if mech.cause == "healthy":
            assert plan.culprit is None and plan.healthy_kind, name
        else:
            assert plan.culprit and plan.culprit_tokens, name
            assert plan.cause == mech.cause, name
