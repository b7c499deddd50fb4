"""Any subset of the inputs: configs alone (pre-flight), a pasted excerpt, stdin, a bare log."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from nandoctor.cli.main import main
from tests.conftest import corpus_path
from tests.diagnose.helpers import diagnose_json

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "diagnose"


# ---------------------------------------------------------------- configs alone: a pre-flight verdict
@pytest.mark.parametrize(
    ("run", "cause", "culprit", "iteration"),
    [
        ("r03", "pooling", "pool1", 0),
        ("r60", "pooling", "pool1", 0),
        ("r11", "lr_policy", "stepsize", 0),
        ("r55", "lr_policy", "gamma", None),
        ("r21", "bad_input", "data/train.h5:data[420:423]", 12),
    ],
)
def test_configs_alone_predict_the_failure(capsys, run, cause, culprit, iteration):
    folder = corpus_path("caffe-runs", run)
    code, report = diagnose_json(capsys, "--solver", str(folder / "solver.prototxt"))
    assert code == 1
    assert report["verdict"] == "will_fail"
    assert report["inputs"]["log"] is None
    top = report["causes"][0]
    assert (top["cause"], top["culprit"]) == (cause, culprit)
    assert report["first_nonfinite_iteration"] == iteration
    assert any("training log" in s for s in report["next_steps"])


def test_configs_alone_healthy_run(capsys):
    folder = corpus_path("caffe-runs", "r14")
    code, report = diagnose_json(capsys, str(folder / "solver.prototxt"))
    assert (code, report["verdict"], report["causes"]) == (0, "healthy", [])


def test_configs_alone_with_a_risk_but_no_certainty_are_inconclusive(capsys):
    """r62's net takes the log of an unconstrained InnerProduct: a risk, not a certainty."""
    folder = corpus_path("caffe-runs", "r62")
    code, report = diagnose_json(capsys, str(folder / "solver.prototxt"))
    assert code == 1
    assert report["verdict"] == "inconclusive"
    risks = {c["cause"]: c["culprit"] for c in report["causes"]}
    assert risks["loss_function"] == "log_var"


def test_solver_step_horizon_makes_a_pre_flight_verdict_exact(capsys):
    """r24 ran solver.step(130) past max_iter 100: poly's lr turns NaN at 101 only then."""
    folder = corpus_path("caffe-runs", "r24")
    _code, report = diagnose_json(capsys, str(folder / "solver.prototxt"))
    assert report["verdict"] == "healthy"
    code, report = diagnose_json(capsys, str(folder / "solver.prototxt"), "--iters", "130")
    assert code == 1
    assert report["verdict"] == "will_fail"
    assert (report["causes"][0]["cause"], report["causes"][0]["culprit"]) == ("lr_policy", "max_iter")
    assert report["first_nonfinite_iteration"] == 101


# ---------------------------------------------------------------- pasted excerpts (no glog prefix, no header)
def test_excerpt_with_a_climbing_loss_is_an_explosion(capsys):
    code, report = diagnose_json(capsys, "--log", str(FIXTURES / "excerpt_explosion.txt"))
    assert code == 1
    assert report["verdict"] == "nan"
    top = report["causes"][0]
    assert (top["cause"], top["culprit"]) == ("gradient_explosion", "base_lr")
    assert report["first_nonfinite_iteration"] == 600
    assert any(ev.get("location", {}).get("line") for ev in top["evidence"]), "log lines carry line numbers"
    assert any("--solver" in s for s in report["next_steps"]), "says which input would make the fix exact"


def test_excerpt_with_a_nan_lr_is_the_lr_policy(capsys):
    _code, report = diagnose_json(capsys, "--log", str(FIXTURES / "excerpt_lr.txt"))
    assert report["verdict"] == "nan"
    assert report["causes"][0]["cause"] == "lr_policy"


def test_excerpt_with_a_sudden_nan_names_the_likely_cause_without_certainty(capsys):
    _code, report = diagnose_json(capsys, "--log", str(FIXTURES / "excerpt_sudden.txt"))
    assert report["verdict"] == "nan"
    top = report["causes"][0]
    # a sudden NaN after a falling loss: a bad record or a loss layer, and the log cannot tell which
    assert top["cause"] in ("bad_input", "loss_function")
    # the calibrated map: hints and a pasted excerpt never make a sure answer (>= 0.8)
    assert top["confidence"] < 0.8
    named = {c["cause"] for c in report["causes"]}
    assert {"bad_input", "loss_function"} <= named
    steps = " ".join(report["next_steps"])
    assert "data" in steps and "debug_info" in steps


def test_healthy_excerpt(capsys):
    code, report = diagnose_json(capsys, "--log", str(FIXTURES / "excerpt_healthy.txt"))
    assert (code, report["verdict"]) == (0, "healthy")


def test_excerpt_from_stdin(capsys, monkeypatch):
    text = (FIXTURES / "excerpt_explosion.txt").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text)))
    capsys.readouterr()
    code = main(["diagnose", "--log", "-", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert report["causes"][0]["cause"] == "gradient_explosion"


# ---------------------------------------------------------------- bad input: exit 2 with a clear message
def test_missing_input_is_exit_2(capsys, tmp_path):
    code = main(["diagnose", str(tmp_path / "nope")])
    err = capsys.readouterr().err
    assert code == 2
    assert "no such file" in err


def test_folder_without_anything_is_exit_2(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    code = main(["diagnose", str(tmp_path)])
    assert code == 2
    assert "found no log" in capsys.readouterr().err


def test_broken_solver_is_exit_2_or_findings_never_a_traceback(capsys, tmp_path):
    (tmp_path / "solver.prototxt").write_text('net: "train_val.prototxt"\nbase_lr: 0.01\nlr_policy: "step\n')
    code = main(["diagnose", str(tmp_path / "solver.prototxt")])
    captured = capsys.readouterr()
    assert code in (1, 2)
    assert "Traceback" not in captured.err
    assert "solver.prototxt:3" in captured.out + captured.err


# ---------------------------------------------------------------- inputs that say little
def test_a_log_without_training_lines_is_nothing_to_diagnose_not_healthy(capsys, tmp_path):
    for name, content in (("empty.log", b""), ("binary.log", bytes(range(256)) * 64)):
        path = tmp_path / name
        path.write_bytes(content)
        code = main(["diagnose", str(path), "--format", "json"])
        err = capsys.readouterr().err
        assert code == 2
        assert f"{path}: nothing to diagnose: no training iteration line" in err


def test_a_folder_with_only_a_net_gets_its_pre_flight(capsys, tmp_path):
    run = corpus_path("caffe-runs", "r03")
    (tmp_path / "train_val.prototxt").write_bytes((run / "train_val.prototxt").read_bytes())
    code, report = diagnose_json(capsys, str(tmp_path))
    assert report["inputs"]["nets"] == [str(tmp_path / "train_val.prototxt")]
    # its data is elsewhere: said, and not mistaken for bad input
    assert (code, report["verdict"]) == (0, "healthy")
    assert any("Data sources not found" in s and "--data-root" in s for s in report["next_steps"])
    code, report = diagnose_json(capsys, str(tmp_path), "--data-root", str(run))
    assert (code, report["verdict"]) == (1, "will_fail")
    assert (report["causes"][0]["cause"], report["causes"][0]["culprit"]) == ("pooling", "pool1")
