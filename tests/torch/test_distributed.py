"""The guard under torch.distributed (DDP, gradients reduced by hand, FSDP2): a real gloo group of 3 CPU ranks.

The scenarios of distributed_worker.py run once, one after the other, in 3 fresh
processes; each test reads what every rank wrote. A guard that ran a collective on one
rank alone would hang its rank group until the timeout, and that fails the test.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
if not torch.distributed.is_available():  # pragma: no cover - builds without distributed
    pytest.skip("torch.distributed is not available", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
WORLD = 3


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    base = tmp_path_factory.mktemp("distributed")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]), "OMP_NUM_THREADS": "1"}
    procs = []
    for rank in range(WORLD):
        cmd = [sys.executable, "-m", "tests.torch.distributed_worker", str(rank), str(WORLD), str(base / "init"),
               str(base)]  # fmt: skip
        procs.append((rank, subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE)))
    failures = []
    for rank, proc in procs:
        try:
            _, err = proc.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        if proc.returncode:
            failures.append(f"rank {rank} exited {proc.returncode}: {err.decode()[-2000:]}")
    assert not failures, "\n".join(failures)
    reports = [json.loads((base / f"rank{r}.json").read_text()) for r in range(WORLD)]
    return {s: [r[s] for r in reports] for s in reports[0]} | {"base": base}


def test_ddp_nan_record_on_one_rank_skips_everywhere_and_names_that_rank(ranks):
    reports = ranks["ddp-nan"]
    for r in reports:
        assert r["decisions"] == [True] * 4 + [False] + [True] * 3  # the same step skipped on every rank
        assert r["weights_finite"] and r["comm_hook"]
        assert r["distributed"]["bad_ranks"] == [1] and r["distributed"]["checked_before_all_reduce"]
        # healthy steps cost no collective of the guard's own: both it made belong to the failure
        assert r["collectives"] == 2
    clean, bad = reports[0], reports[1]
    assert bad["causes"][0] == ["bad_input", "batch[0][3] = dataset[1035]"]  # from the (x, y, idx) batch
    assert clean["causes"][0] == ["bad_input", "rank 1: batch[0][3] = dataset[1035]"]
    assert "NAN670" not in clean["codes"]  # its own clean replay is expected, not a hardware fault
    assert sorted(p.name for p in (ranks["base"] / "ddp-nan" / "bundles").iterdir()) == [
        "nan-step4-rank0",
        "nan-step4-rank1",
        "nan-step4-rank2",
    ]


def test_gradients_reduced_by_hand_blame_the_rank_whose_loss_went_bad(ranks):
    reports = ranks["manual-nan"]
    for rank, r in enumerate(reports):
        assert r["decisions"] == [True] * 3 + [False] + [True] * 4
        assert r["weights_finite"] and not r["comm_hook"]
        assert r["distributed"]["bad_ranks"] == [2], rank
        assert r["collectives"] == 8 + 2  # one small all-reduce per check, two at the failure
        assert "NAN670" not in r["codes"]
    assert reports[2]["causes"][0] == ["loss_function", "loss_fn (Tensor.div)"]
    assert reports[0]["causes"][0] == ["loss_function", "rank 2: loss_fn (Tensor.div)"]


def test_check_loss_makes_every_rank_skip_backward_together(ranks):
    for r in ranks["ddp-loss-nan"]:
        assert r["backward_ran"] == [True, True, False] + [True] * 5
        assert r["decisions"] == [True, True, False] + [True] * 5
        assert r["weights_finite"]
        assert r["distributed"]["bad_ranks"] == [0]
    assert ranks["ddp-loss-nan"][0]["causes"][0] == ["loss_function", "loss_fn (torch.log)"]
    assert ranks["ddp-loss-nan"][1]["causes"][0] == ["loss_function", "rank 0: loss_fn (torch.log)"]


def test_fsdp_nan_record_on_one_rank_skips_everywhere_and_names_that_rank(ranks):
    reports = ranks["fsdp-nan"]
    for r in reports:
        assert r["decisions"] == [True] * 4 + [False] + [True] * 3
        assert r["weights_finite"] and not r["comm_hook"]
        assert r["distributed"]["bad_ranks"] == [1]
        assert r["collectives"] == 8 + 2  # one small all-reduce per check, two at the failure
    assert reports[1]["causes"][0] == ["bad_input", "batch[0][3] = dataset[1035]"]
    assert reports[0]["causes"][0] == ["bad_input", "rank 1: batch[0][3] = dataset[1035]"]
    assert reports[0]["replay"]["ran"] and not reports[0]["replay"]["reproduced"]  # on the eager replica
    bundles = sorted(p.name for p in (ranks["base"] / "fsdp-nan" / "bundles").iterdir())
    assert bundles == ["nan-step4-rank0", "nan-step4-rank1", "nan-step4-rank2"]


def test_fsdp_loss_function_on_one_rank_is_replayed_on_the_gathered_weights(ranks):
    reports = ranks["fsdp-loss-nan"]
    for r in reports:
        assert r["decisions"] == [True] * 3 + [False] + [True] * 4
        assert r["weights_finite"]
        assert r["distributed"]["bad_ranks"] == [2]
    bad = reports[2]
    assert bad["replay"]["ran"] and bad["replay"]["reproduced"], bad["replay"]
    assert bad["causes"][0] == ["loss_function", "loss_fn (Tensor.div)"]
    assert reports[0]["causes"][0] == ["loss_function", "rank 2: loss_fn (Tensor.div)"]
