"""Diagnoses of real framework runs (tools/framework_lab/): one per shape of evidence."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nandoctor.core.types import Cause, Verdict
from nandoctor.runs import diagnose_run
from tests.runs.framework_fixtures import need

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "name,cause",
    [
        ("hf_explode_sgd", Cause.GRADIENT_EXPLOSION),
        ("pl_explode_sgd", Cause.GRADIENT_EXPLOSION),
        ("hf_lr_exp_growth", Cause.LR_POLICY),
        ("hf_lr_negative", Cause.LR_POLICY),
        ("pl_lr_cyclic", Cause.LR_POLICY),
        ("pl_bad_val_nan_gn", Cause.BAD_INPUT),
        ("pl_bad_inf_target_huber", Cause.BAD_INPUT),
        ("pl_loss_masked", Cause.LOSS_FUNCTION),
    ],
)
def test_top_cause(name, cause):
    d = diagnose_run(need(name))
    assert d.verdict in (Verdict.NAN, Verdict.DIVERGING)
    assert d.causes[0].cause is cause, d.causes


@pytest.mark.parametrize("name", ["hf_healthy_cls", "hf_healthy_accum_eval", "pl_healthy_adam", "tb_healthy_amp"])
def test_healthy_runs_are_healthy(name):
    assert diagnose_run(need(name)).verdict is Verdict.HEALTHY


def test_nan_filter_is_named_and_sets_the_onset():
    d = diagnose_run(need("hf_explode_sgd"))
    assert d.first_nonfinite_iteration == 13
    assert any(f.code == "NAN708" for f in d.findings)


def test_cli_recognises_a_trainer_folder():
    out = subprocess.run(
        [sys.executable, "-m", "nandoctor", "diagnose", str(need("hf_explode_sgd")), "--format", "json"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 1, out.stderr
    data = json.loads(out.stdout)
    assert data["inputs"]["source"] == "transformers" and data["causes"][0]["cause"] == "gradient_explosion"


def _codes(d):
    return {f.code for f in d.findings}


def test_a_loss_below_zero_names_the_loss_formula():
    # Lightning Gaussian NLL with a raw variance: negative losses, a NaN, then finite again
    d = diagnose_run(need("pl_loss_nll"))
    assert "NAN710" in _codes(d)
    assert d.causes[0].cause is Cause.LOSS_FUNCTION


def test_frequent_overflow_halvings_are_a_collapse_but_calibration_is_not():
    collapsed = diagnose_run(need("tb_amp_scale_collapse"))
    assert "NAN709" in _codes(collapsed)
    assert collapsed.verdict is Verdict.DIVERGING
    healthy = diagnose_run(need("tb_healthy_amp"))
    assert healthy.verdict is Verdict.HEALTHY and "NAN709" not in _codes(healthy)


def test_a_scale_collapse_after_a_growing_lr_is_the_schedule():
    d = diagnose_run(need("tb_lr_exponential_amp"))
    assert d.causes[0].cause is Cause.LR_POLICY


def test_the_filters_window_mean_counts_as_growth():
    # logging_steps=4 with accumulation: the exploding loss is logged at the masked onset itself
    d = diagnose_run(need("hf_explode_sgd_accum4"))
    assert d.causes[0].cause is Cause.GRADIENT_EXPLOSION
    assert "NAN703" in _codes(d)


def test_a_recovered_spike_is_a_record_not_growth():
    d = diagnose_run(need("pl_bad_huge_target_huber_late"))
    assert "NAN703" not in _codes(d)
    assert d.causes[0].cause is Cause.BAD_INPUT


def test_a_persistent_nan_from_nowhere_lists_a_bad_record_second():
    d = diagnose_run(need("pl_loss_masked"))
    assert [c.cause for c in d.causes[:2]] == [Cause.LOSS_FUNCTION, Cause.BAD_INPUT]
