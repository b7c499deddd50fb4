"""`nandoctor replay`: the plan printed, --run end to end with the stand-in caffe, the probe, bundles, errors."""

from __future__ import annotations

import json
import sys

import pytest

from nandoctor.cli.main import main
from nandoctor.replay.runner import Caffe, pycaffe_command, run_caffe
from tests.conftest import corpus_path
from tests.replay.conftest import SRC, env_with
from tests.replay.test_runner import recording


def test_plan_only_prints_the_command_and_touches_nothing(run_dir, tmp_path, capsys):
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    code = main(["replay", str(run_dir), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 0
    assert f"cd {run_dir.resolve()} && caffe train --solver={(tmp_path / 'out').resolve()}" in out
    assert "max_iter: 200 -> 9" in out and "debug_info: (unset) -> true" in out
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before
    code = main(["replay", str(run_dir), "--out", str(tmp_path / "out"), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert data["plan"]["snapshot"].endswith("run_iter_2.solverstate") and data["missing_paths"] == []


def test_run_without_caffe_says_so(run_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CAFFE_BIN", raising=False)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if "caffe" not in p])
    code = main(["replay", str(run_dir), "--out", str(tmp_path / "out"), "--run"])
    out = capsys.readouterr().out
    assert code == 0 and "no Caffe found" in out and "caffe train --solver=" in out


def test_run_reproduces_and_names_the_loss_head(tmp_path, fake_caffe, capsys, monkeypatch):
    run = corpus_path("caffe-runs", "r63")
    monkeypatch.setenv("FAKE_RECORDING", str(run / "train_debug.log"))
    code = main(["replay", str(run), "--out", str(tmp_path / "out"), "--run", "--caffe", str(fake_caffe)])
    out = capsys.readouterr().out
    assert code == 1
    assert "the failure was reproduced" in out
    assert "culprit layer loss_bbox (backward, iteration 1, gradient_explosion); loss head loss_bbox" in out
    assert "NAN503" in out and (tmp_path / "out" / "debug_heatmap.png").read_bytes().startswith(b"\x89PNG")


def test_probe_run_names_the_bad_top(run_dir, tmp_path, fake_caffe, capsys, monkeypatch):
    p = "I1123 10:00:00.000000  1 "
    rec = "".join(
        f"{p}solver.cpp:239] Iteration {it} (1 iter/s, 1s/1 iters), loss = 0\n"
        f"{p}solver.cpp:258]     Train net output #0: probe_data = 12.5\n"
        f"{p}solver.cpp:258]     Train net output #1: probe_label = {'nan' if it == 3 else '4'}\n"
        for it in range(12)
    )
    (tmp_path / "probe.log").write_text(rec)
    monkeypatch.setenv("FAKE_RECORDING", str(tmp_path / "probe.log"))
    code = main(["replay", str(run_dir), "--out", str(tmp_path / "out"), "--probe-input", "--run", "--caffe",
                 str(fake_caffe), "--json"])  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert code == 1
    hits = data["run"]["probe"]
    assert [(h["layer"], h["top"], h["phase"], h["iteration"]) for h in hits] == [("data", "label", "train", 3)]


def test_pycaffe_driver_runs_a_solver_through_the_python_module(tmp_path):
    fake = tmp_path / "py" / "caffe"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "import sys\ncalls = []\n"
        "def set_mode_cpu(): sys.stderr.write('I1 caffe.cpp:1] Use CPU.\\n')\n"
        "class _S:\n"
        "    def __init__(self, path): self.path = path\n"
        "    def restore(self, x): sys.stderr.write(f'I1 caffe.cpp:235] Resuming from {x}\\n')\n"
        "    def solve(self):\n"
        "        for i in range(3): sys.stderr.write(f'I1 solver.cpp:239] Iteration {i}, loss = {\"nan\" if i else 1}\\n')\n"
        "def get_solver(path): return _S(path)\n"
    )
    caffe = Caffe("pycaffe", pycaffe_command([str(fake)]), "pycaffe")
    cmd = caffe.train_command(tmp_path / "s.prototxt", tmp_path / "x.solverstate")
    env = env_with()
    env["PYTHONPATH"] = f"{tmp_path / 'py'}:{SRC}"
    result = run_caffe(cmd, tmp_path, tmp_path / "log", env=env, stop_after=5)
    text = (tmp_path / "log").read_text()
    assert result.returncode == 0 and "Resuming from" in text and result.progress.first_nonfinite == 1


def _bundle(tmp_path):
    b = tmp_path / "bundle"
    (b / "state").mkdir(parents=True)
    (b / "manifest.json").write_text(json.dumps({"format": "nandoctor-torch-bundle", "version": 1}))
    facts = {"step": 5, "trigger": "loss", "loss": "nan", "lrs": [0.1], "grad_norms": [1.0, 1.1, 0.9]}
    (b / "findings.json").write_text(json.dumps({"facts": facts}))
    return b


def test_a_torch_bundle_is_handed_to_the_torch_side(tmp_path, capsys):
    b = _bundle(tmp_path)
    code = main(["replay", str(b), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1 and data["first_nonfinite_iteration"] == 5
    assert main(["replay", str(b), "--model-factory", "no_such_module_xyz:make"]) == 2
    err = capsys.readouterr().err
    assert "torch" in err or "no_such_module_xyz" in err
    assert main(["replay", str(b), "--model-factory", "nocolon"]) == 2


def test_bad_arguments_are_input_errors(run_dir, tmp_path, capsys):
    assert main(["replay", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert main(["replay", str(run_dir), "--out", str(tmp_path / "o"), "--horizon", "0"]) == 2
    assert main(["replay", str(run_dir), "--out", str(tmp_path / "o"), "--run", "--caffe", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("nandoctor: ") == 3


def test_healthy_replay_exits_zero(run_dir, tmp_path, fake_caffe, capsys, monkeypatch):
    # the recording explodes from iteration 3; a horizon of 2 stops the replay before that
    monkeypatch.setenv("FAKE_RECORDING", str(recording(tmp_path / "rec.log")))
    (run_dir / "train.log").unlink()
    code = main(["replay", str(run_dir), "--out", str(tmp_path / "out"), "--run", "--caffe", str(fake_caffe),
                 "--horizon", "2"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "Caffe finished without a non-finite value" in out


def test_a_caffe_that_cannot_start_is_an_input_error(run_dir, tmp_path, capsys):
    bogus = tmp_path / "caffe"
    bogus.write_bytes(b"\x00\x01not a program")
    bogus.chmod(0o755)
    assert main(["replay", str(run_dir), "--out", str(tmp_path / "o"), "--run", "--caffe", str(bogus)]) == 2
    err = capsys.readouterr().err
    assert "cannot start" in err and "Traceback" not in err


def test_run_ends_with_the_whole_diagnosis(tmp_path, fake_caffe, capsys, monkeypatch):
    pytest.importorskip("nandoctor.diagnose.engine")
    run = corpus_path("caffe-runs", "r63")
    monkeypatch.setenv("FAKE_RECORDING", str(run / "train_debug.log"))
    main(["replay", str(run), "--out", str(tmp_path / "out"), "--run", "--caffe", str(fake_caffe), "--json"])
    data = json.loads(capsys.readouterr().out)
    top = data["run"]["diagnosis"]["causes"][0]
    assert (top["cause"], top["culprit"]) == ("gradient_explosion", "loss_bbox.loss_weight")
