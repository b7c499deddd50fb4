"""Root cause over symptom, on small real-Caffe runs (tests/fixtures/diagnose/chains, made by
make.py there): the earliest departure that explains the rest is named, with its culprit,
from the run folder and from the log alone; runs that did not fail but are not well are
healthy with a warning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nandoctor.core.registry import all_rules
from nandoctor.core.types import Cause, Verdict
from nandoctor.diagnose.engine import diagnose
from nandoctor.diagnose.inputs import discover

CHAINS = Path(__file__).resolve().parents[1] / "fixtures" / "diagnose" / "chains"
FAILED = ["lr_step_gamma10", "momentum_above_one", "head_loss_weight"]
WARNED = {"clip_holds": "clipping", "lr_to_zero": "lr reached 0"}


def _expected(name: str) -> dict:
    return json.loads((CHAINS / name / "expected.json").read_text())


@pytest.mark.parametrize("mode", ["folder", "log"])
@pytest.mark.parametrize("name", FAILED)
def test_the_root_cause_and_its_culprit_are_named(name, mode):
    run = CHAINS / name
    d, _g = diagnose(discover(run if mode == "folder" else run / "train.log"))
    want = _expected(name)
    assert d.verdict is Verdict.NAN
    assert d.causes[0].cause.value == want["cause"]
    assert d.causes[0].culprit == want["culprit"]


def test_an_lr_that_grows_first_is_the_cause_not_the_explosion_it_makes():
    d, _g = diagnose(discover(CHAINS / "lr_step_gamma10" / "train.log"))
    top = d.causes[0]
    assert top.cause is Cause.LR_POLICY and top.confidence >= 0.8
    # the chain of events, in order, with the log lines of each link
    text = top.explanation
    assert text.index("lr x10 at 30, 60") < text.index("loss x") < text.index("-nan at 70")
    lines = [ev.location.line for ev in top.evidence[:3] if ev.location is not None]
    assert lines == sorted(lines) and len(lines) == 3
    explosion = next(c for c in d.causes if c.cause is Cause.GRADIENT_EXPLOSION)
    assert explosion.confidence < 0.1


@pytest.mark.parametrize("name", sorted(WARNED))
def test_a_run_held_back_or_stalled_is_healthy_with_a_warning(name):
    for inputs in (CHAINS / name, CHAINS / name / "train.log"):
        d, _g = diagnose(discover(inputs))
        assert d.verdict is Verdict.HEALTHY and not d.causes
        assert any(WARNED[name] in w for w in d.warnings), d.warnings


def test_a_plain_healthy_run_has_no_warning():
    d, _g = diagnose(discover(Path(__file__).resolve().parents[1] / "fixtures" / "diagnose" / "excerpt_healthy.txt"))
    assert d.verdict is Verdict.HEALTHY and d.warnings == []


def test_a_loss_pinned_at_minus_ln_flt_min_is_a_warning_not_fine(tmp_path):
    log = tmp_path / "pasted.txt"
    log.write_text("".join(f"Iteration {i}, loss = {2.3 if i == 0 else 87.3365}\n" for i in range(0, 500, 50)))
    d, _g = diagnose(discover(log))
    assert d.verdict is Verdict.HEALTHY
    assert any("87.3365" in w and "saturated" in w for w in d.warnings)


def test_every_rule_with_a_cause_declares_how_it_bears_on_the_diagnosis():
    missing = [r.code for r in all_rules() if r.cause is not Cause.UNKNOWN and r.bears is None]
    assert missing == []
    # and a symptom rule whose findings name their own cause at run time declares it too
    assert all(r.bears is not None for r in all_rules() if r.code.startswith(("NAN3", "NAN5")))
