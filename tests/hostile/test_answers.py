"""Audit rows on answers from valid or empty input: booleans as protobuf reads them, a verdict
never milder than its worst finding, "nothing to diagnose" (exit 2) for a log without training."""

from __future__ import annotations

import json
import re

import pytest

from tests.hostile.helpers import assert_input_error, cli, copy_run


def _diagnosis(run) -> dict:
    r = cli("diagnose", run, "--format", "json")
    assert r.code in (0, 1), r.err
    return json.loads(r.out)


def _with_shuffle(run, literal: str | None):
    net = run / "train_val.prototxt"
    text = re.sub(r"\n    shuffle: .*", "", net.read_text())
    if literal is not None:
        text = text.replace("    batch_size: 35\n", f"    batch_size: 35\n    shuffle: {literal}\n", 1)
    net.write_text(text)


@pytest.mark.parametrize(
    ("literal", "shuffled"),
    [("false", False), ("False", False), ("f", False), ("0", False), ("true", True), ("True", True), ("t", True), ("1", True)],
)  # fmt: skip
def test_shuffle_false_is_false(tmp_path, literal, shuffled):
    """r21: a bad HDF5 row read just before the NaN; with shuffling the read order is unknown."""
    run = copy_run("r21", tmp_path / "run")
    _with_shuffle(run, None)
    base = _diagnosis(run)["causes"][0]
    _with_shuffle(run, literal)
    got = _diagnosis(run)["causes"][0]
    assert got["cause"] == "bad_input"
    if shuffled:
        assert got["confidence"] < base["confidence"] and "read at 12" not in got["explanation"]
    else:
        assert got == base and "read at 12" in got["explanation"]


def test_max_iter_caffe_cannot_parse_is_not_healthy(tmp_path):
    run = copy_run("r01", tmp_path / "run")
    solver = run / "solver.prototxt"
    solver.write_text(re.sub(r"max_iter: \d+", "max_iter: 99999999999999999999", solver.read_text()))
    r = cli("diagnose", run, "--no-data")
    assert r.code == 1, r.out
    assert "healthy" not in r.out.splitlines()[0]
    assert "NAN007" in r.out and "max_iter" in r.out, "the error is shown without --all"


def test_log_cut_after_initializing_solver(tmp_path):
    log = copy_run("r01", tmp_path / "run") / "train.log"
    lines = log.read_text().splitlines(keepends=True)
    cut = next(i for i, ln in enumerate(lines) if "Initializing solver from parameters:" in ln)
    excerpt = tmp_path / "cut.log"
    excerpt.write_text("".join(lines[: cut + 1]))
    r = cli("diagnose", excerpt)
    assert_input_error(r, excerpt, "nothing to diagnose")
    assert "lr_policy" not in r.out + r.err


@pytest.mark.parametrize("kind", ["empty", "garbage", "training-free"])
def test_log_without_training_is_nothing_to_diagnose(tmp_path, kind):
    source = copy_run("r01", tmp_path / "run") / "train.log"
    log = tmp_path / f"{kind}.log"
    if kind == "empty":
        log.write_bytes(b"")
    elif kind == "garbage":
        log.write_bytes(bytes(range(256)) * 40)
    else:
        log.write_text("".join(ln for ln in source.read_text().splitlines(True) if "Iteration" not in ln))
    r = cli("diagnose", log)
    assert_input_error(r, log, "nothing to diagnose")
    if kind == "training-free":  # beside the run's own configs too: no run shown is no health shown
        source.write_text(log.read_text())
        r = cli("diagnose", source.parent, "--no-data")
        assert_input_error(r, source, "nothing to diagnose")
