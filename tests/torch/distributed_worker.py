"""One rank of a small torch.distributed training loop with the guard (run by test_distributed.py).

    python -m tests.torch.distributed_worker RANK WORLD INIT_FILE OUT_DIR

The ranks run three scenarios one after the other in one process group (a fresh model
and guard each): ``ddp-nan`` (DDP; rank 1 reads a NaN record at step 4), ``manual-nan``
(no DDP: gradients all-reduced by hand; the last rank's loss function divides by zero
at step 3) and ``ddp-loss-nan`` (DDP with ``check_loss``: rank 0's loss is NaN at step
2, so every rank must skip ``backward()`` together), then ``fsdp-nan`` and
``fsdp-loss-nan``, the first two again on a model sharded with FSDP2 ``fully_shard``. Each rank writes what its guards
decided to OUT_DIR/rank<R>.json; a rank that hangs is killed by the test's timeout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch.distributed as dist
import torch.nn.functional as F

import torch
from nandoctor.torch import NaNGuard
from nandoctor.torch.sharded import local
from torch import nn

STEPS = 8


def batches(rank: int, scenario: str):
    g = torch.Generator().manual_seed(100 + rank)
    w = torch.randn(6, 1, generator=torch.Generator().manual_seed(0))
    for step in range(STEPS):
        x = torch.randn(8, 6, generator=g)
        y = x @ w
        idx = torch.arange(step * 8, step * 8 + 8) + 1000 * rank
        if scenario in ("ddp-nan", "fsdp-nan") and rank == 1 and step == 4:
            x[3, 2] = float("nan")
        yield x, y, idx


SCENARIOS = ("ddp-nan", "manual-nan", "ddp-loss-nan", "fsdp-nan", "fsdp-loss-nan")


def main() -> None:
    rank, world, init, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world)
    reports = {s: run(rank, world, out / s, s) for s in SCENARIOS}
    (out / f"rank{rank}.json").write_text(json.dumps(reports, default=str))
    dist.barrier()
    dist.destroy_process_group()


def run(rank: int, world: int, out: Path, scenario: str) -> dict:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 1))
    ddp = scenario.startswith("ddp")
    net = nn.parallel.DistributedDataParallel(model) if ddp else model
    if scenario.startswith("fsdp"):  # FSDP2: each Linear sharded, then the root
        from torch.distributed.fsdp import fully_shard

        for layer in (model[0], model[2]):
            fully_shard(layer)
        fully_shard(model)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)

    def loss_fn(m, b):
        pred = m(b[0])
        if scenario in ("manual-nan", "fsdp-loss-nan") and rank == world - 1 and int(b[2][0]) % 1000 == 3 * 8:
            return F.mse_loss(pred, b[1], reduction="sum") / (b[1].sum() * 0)  # a count that is zero
        if scenario == "ddp-loss-nan" and rank == 0 and int(b[2][0]) == 2 * 8:
            return F.mse_loss(pred, b[1]) * torch.log(torch.tensor(-1.0))
        return F.mse_loss(pred, b[1])

    guard = NaNGuard(net, opt, closure=loss_fn, on_nan="skip", bundle_dir=out / "bundles", verbose=False)
    decisions, backward_ran = [], []
    for batch in batches(rank, scenario):
        opt.zero_grad()
        loss = loss_fn(net, batch)
        ran = True
        if scenario == "ddp-loss-nan":
            ran = guard.check_loss(loss, batch)
        if ran:
            loss.backward()
        if scenario == "manual-nan":  # gradients reduced by hand (FSDP reduce-scatters them itself)
            for p in model.parameters():
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad /= world
        backward_ran.append(ran)
        ok = guard.check(loss, batch)
        decisions.append(ok)
        opt.step()  # unconditional: the guard's skip must hold on every rank
    finite = all(bool(torch.isfinite(local(p)).all()) for p in model.parameters())
    d = guard.diagnosis
    return {
        "decisions": decisions,
        "backward_ran": backward_ran,
        "weights_finite": finite,
        "collectives": guard.dist.collectives if guard.dist else None,
        "comm_hook": guard.dist.hooked if guard.dist else None,
        "distributed": guard.facts.distributed if guard.facts else None,
        "causes": [(c.cause.value, c.culprit) for c in d.causes] if d else [],
        "codes": [f.code for f in d.findings] if d else [],
        "bundle": guard.bundle.name if guard.bundle else None,
        "replay": guard.facts.replay if guard.facts else None,
    }


if __name__ == "__main__":
    main()
