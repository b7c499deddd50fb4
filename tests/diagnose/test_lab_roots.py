"""Root cause over symptom on real Caffe runs of the lab's tuning part: what made the step too large
is named, not the explosion it caused."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from tools.lab import runner

from nandoctor.core.types import Cause
from nandoctor.diagnose.engine import diagnose
from nandoctor.diagnose.inputs import discover

RUNS = runner.RUNS


def _folder(run_id: str, tmp_path: Path) -> Path:
    if not (RUNS / run_id).is_dir():
        pytest.skip(f"lab run {run_id} not stored")
    return runner.materialize(RUNS / run_id, tmp_path / run_id)


def _log(run_id: str, tmp_path: Path) -> Path:
    if not (RUNS / run_id).is_dir():
        pytest.skip(f"lab run {run_id} not stored")
    out = tmp_path / "train.log"
    out.write_bytes(gzip.decompress((RUNS / run_id / "train.log.gz").read_bytes()))
    return out


def test_probability_targets_of_255_are_bad_input_not_an_explosion(tmp_path):
    """SigmoidCrossEntropyLoss reads label 255 from eight LMDB records: the logit is pushed without
    bound and the loss explodes; the records are the cause."""
    d, _ = diagnose(discover(_folder("lmdb_label_255_sigmoid.d10.s8462", tmp_path)))
    top = d.causes[0]
    assert top.cause is Cause.BAD_INPUT
    assert "00000100" in (top.culprit or "")


def test_a_negative_lr_is_the_root_of_the_explosion_debug_info_shows(tmp_path):
    d, _ = diagnose(discover(_folder("negative_base_lr.debug.s5323", tmp_path)))
    assert d.causes[0].cause is Cause.LR_POLICY
    assert d.causes[0].culprit == "base_lr"


def test_a_sudden_nan_with_an_effective_step_of_200_is_an_explosion(tmp_path):
    """base_lr 20, momentum 0.9, display 10: finite at 0, NaN at 10 (then a heap-corruption abort)."""
    for target in (_folder("high_lr_classifier.d10.s9562", tmp_path), _log("high_lr_classifier.d10.s9562", tmp_path)):
        d, _ = diagnose(discover(target))
        assert d.causes[0].cause is Cause.GRADIENT_EXPLOSION, target
        assert d.causes[0].culprit == "base_lr"
