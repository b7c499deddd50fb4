"""Diagnoses of real framework runs (tools/framework_lab/): one per shape of evidence."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nandoctor.core.types import Cause, Verdict
from nandoctor.runs import diagnose_run

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "frameworks"
ROOT = Path(__file__).resolve().parents[2]


def need(name: str) -> Path:
    p = FIX / name
    if not (p / "expected.json").is_file():
        pytest.skip(f"fixture {name} not generated")
    return p


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
