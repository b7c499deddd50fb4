"""Reproducer bundles: written on failure, read offline without torch, replayed in a fresh process."""

import pytest

torch = pytest.importorskip("torch")

import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import textwrap  # noqa: E402
from pathlib import Path  # noqa: E402

import torch.nn.functional as F  # noqa: E402

from nandoctor.core.types import Cause, InputError  # noqa: E402
from nandoctor.torch import diagnose_bundle, is_bundle, load_bundle, replay_bundle  # noqa: E402
from tests.torch.loops import CaffeAvgPool2d, Images, SmallCNN, image_batches, label_frequency_loss, run  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)
    torch.manual_seed(0)


def loss_bundle(tmp_path):
    data = Images(n=48)
    data.y = torch.arange(48) % 3
    data.y[30:36] = torch.tensor([0, 0, 1, 1, 0, 1])
    model = SmallCNN()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    guard = run(model, opt, image_batches(data, 6), label_frequency_loss, guard_kwargs={"bundle_dir": tmp_path})
    return guard


def test_bundle_holds_pre_step_state_batch_and_findings(tmp_path):
    guard = loss_bundle(tmp_path)
    path = guard.bundle
    assert path is not None and is_bundle(path)
    assert sorted(p.name for p in path.iterdir()) == ["findings.json", "manifest.json", "state"]
    assert sorted(p.name for p in (path / "state").iterdir()) == ["batch.pt", "model.pt", "optimizer.pt", "rng.pt"]
    bundle = load_bundle(path)
    assert bundle.facts.step == 5 and bundle.meta["torch_version"] == torch.__version__
    # weights are those the poisoned step started from (the guard skipped the step)
    for name, p in guard.model.named_parameters():
        assert torch.equal(bundle.state_dict[name], p.detach())
    # buffers are those from before the step's forward, not after it
    assert int(bundle.state_dict["bn.num_batches_tracked"]) == 5
    assert int(guard.model.bn.num_batches_tracked) == 6
    assert torch.equal(bundle.batch[1], torch.tensor([0, 0, 1, 1, 0, 1]))
    assert bundle.optimizer_state["state"], "momentum buffers missing"
    assert "cpu" in bundle.rng["torch"]


def test_diagnose_bundle_reads_only_json_and_matches_the_guard(tmp_path):
    guard = loss_bundle(tmp_path)
    diagnosis = diagnose_bundle(guard.bundle)
    assert diagnosis.causes[0].cause is Cause.LOSS_FUNCTION
    assert diagnosis.causes[0].culprit == guard.diagnosis.causes[0].culprit
    assert diagnosis.first_nonfinite_iteration == 5
    stored = json.loads((guard.bundle / "findings.json").read_text())["diagnosis"]
    assert stored["causes"] == diagnosis.to_dict()["causes"]
    # the same in a process where torch cannot be imported at all
    code = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None
        from nandoctor.torch import diagnose_bundle
        d = diagnose_bundle({str(guard.bundle)!r})
        print(d.causes[0].cause.value, d.causes[0].culprit)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[0] == "loss_function"


def test_replay_bundle_in_a_fresh_process(tmp_path):
    model = SmallCNN(pool=CaffeAvgPool2d(2, 3))
    guard = run(model, torch.optim.SGD(model.parameters(), 0.1), image_batches(Images()), F.cross_entropy,
                guard_kwargs={"bundle_dir": tmp_path})  # fmt: skip
    code = textwrap.dedent(f"""
        import torch, torch.nn.functional as F
        from nandoctor.torch import replay_bundle
        from tests.torch.loops import CaffeAvgPool2d, SmallCNN
        d = replay_bundle({str(guard.bundle)!r}, lambda: SmallCNN(pool=CaffeAvgPool2d(2, 3)), criterion=F.cross_entropy)
        print(d.causes[0].cause.value, d.causes[0].culprit, d.inputs["replayed"])
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["pooling", "pool", "True"]


def test_replay_bundle_with_closure_in_process(tmp_path):
    guard = loss_bundle(tmp_path)
    diagnosis = replay_bundle(guard.bundle, SmallCNN, closure=lambda m, b: label_frequency_loss(m(b[0]), b[1]))
    assert diagnosis.causes[0].cause is Cause.LOSS_FUNCTION
    codes = {f.code for f in diagnosis.findings}
    assert "NAN620" in codes


def test_bad_input_bundle_keeps_the_poisoned_batch(tmp_path):
    data = Images(poison={13: float("nan")}, as_dict=True)
    model = SmallCNN()
    guard = run(model, torch.optim.SGD(model.parameters(), 0.1), image_batches(data, 4), None,
                forward=lambda m, b: F.cross_entropy(m(b["x"]), b["y"]), guard_kwargs={"bundle_dir": tmp_path})  # fmt: skip
    bundle = load_bundle(guard.bundle)
    assert torch.isnan(bundle.batch["x"][1]).any()
    assert bundle.batch["index"].tolist() == [12, 13, 14, 15]
    assert diagnose_bundle(guard.bundle).causes[0].culprit == "batch['x'][1] = dataset[13]"


def test_not_a_bundle_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="not a nandoctor PyTorch bundle"):
        diagnose_bundle(tmp_path)
    (tmp_path / "findings.json").write_text(json.dumps({"facts": {"step": 1, "trigger": "loss"}}))
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(InputError, match="cannot read manifest"):
        diagnose_bundle(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(InputError, match="is not a"):
        load_bundle(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "nandoctor-torch-bundle"}))
    (tmp_path / "findings.json").write_text(json.dumps({"facts": {"trigger": "loss"}}))
    with pytest.raises(InputError, match="malformed facts"):
        diagnose_bundle(tmp_path)


def test_the_cli_diagnoses_a_bundle(tmp_path, capsys):
    cli = pytest.importorskip("nandoctor.cli.diagnose")
    guard = loss_bundle(tmp_path)
    from nandoctor.cli.main import main

    code = main(["diagnose", str(guard.bundle), "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and cli is not None
    assert out["causes"][0]["cause"] == "loss_function"
    assert out["first_nonfinite_iteration"] == 5


def test_bundle_missing_tensors_is_an_input_error(tmp_path):
    guard = loss_bundle(tmp_path)
    (guard.bundle / "state" / "batch.pt").unlink()
    with pytest.raises(InputError, match=r"lacks batch\.pt"):
        load_bundle(guard.bundle)
    (guard.bundle / "state" / "model.pt").write_bytes(b"garbage")
    with pytest.raises(InputError, match=r"cannot load model\.pt"):
        load_bundle(guard.bundle)
