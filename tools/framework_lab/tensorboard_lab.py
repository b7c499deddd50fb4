"""Ground truth for the TensorBoard reader and fp16 loss scaling: plain PyTorch loops on CPU.

    python3 tools/framework_lab/tensorboard_lab.py [CASE_ID ...]

Each case trains a small MLP (float16 autocast with a real GradScaler where the case says
so), writes its scalars with torch.utils.tensorboard.SummaryWriter under the tag names
the case picks, and keeps the event file and an expected.json in
tests/fixtures/frameworks/<id>/.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from torch.utils.tensorboard import SummaryWriter

import torch
from torch import nn

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "frameworks"

# the tag names the loops write, as common training scripts name them
HF_LIKE = {
    "loss": "train/loss",
    "lr": "train/learning_rate",
    "grad_norm": "train/grad_norm",
    "scale": "train/loss_scale",
}
PLAIN = {"loss": "loss", "lr": "lr", "grad_norm": "grad_norm", "scale": "amp/scale"}
TITLE = {"loss": "Loss/train", "lr": "LearningRate", "grad_norm": "Gradients/total_norm", "scale": "GradScaler/scale"}


def batches(seed: int, scale_x: float, bad_y: dict[int, float] | None):
    g = np.random.default_rng(seed)
    w = g.normal(size=8)
    step = 0
    while True:
        x = g.normal(size=(16, 8)).astype(np.float32) * scale_x
        y = (x @ w * 0.5 / scale_x).astype(np.float32)
        if bad_y and step in bad_y:
            y[3] = bad_y[step]
        yield torch.from_numpy(x), torch.from_numpy(y)
        step += 1


def loss_of(kind: str, out, y):
    mean = out[:, 0]
    if kind == "huber":
        return nn.functional.smooth_l1_loss(mean.float(), y)
    if kind == "logpos":
        return ((torch.log(torch.relu(mean.float() + 3.0)) - torch.log(torch.abs(y) + 3.0)) ** 2).mean()
    return nn.functional.mse_loss(mean.float(), y)


CASES: list[dict] = [
    dict(id="tb_healthy_plain", cause="healthy", split="tune", tags="plain", lr=1e-2, steps=80),
    dict(id="tb_healthy_amp", cause="healthy", split="tune", tags="hf", lr=1e-2, steps=80, amp=True),
    dict(
        id="tb_healthy_amp_sgd", cause="healthy", split="held", tags="title", lr=0.02, optim="sgd", steps=80, amp=True
    ),
    dict(
        id="tb_amp_scale_collapse",
        cause="gradient_explosion",
        split="tune",
        tags="hf",
        lr=1e-3,
        steps=60,
        amp=True,
        scale_x=1e4,
    ),
    dict(
        id="tb_amp_scale_collapse_late",
        cause="gradient_explosion",
        split="held",
        tags="plain",
        lr=0.5,
        optim="sgd",
        steps=80,
        amp=True,
    ),
    dict(
        id="tb_amp_scale_collapse_title",
        cause="gradient_explosion",
        split="held",
        tags="title",
        lr=1e-3,
        steps=60,
        amp=True,
        scale_x=3e3,
    ),
    dict(id="tb_explode_sgd", cause="gradient_explosion", split="tune", tags="title", lr=0.6, optim="sgd", steps=60),
    dict(
        id="tb_lr_exponential", cause="lr_policy", split="held", tags="hf", lr=1e-3, optim="sgd", steps=100, gamma=1.15
    ),
    dict(
        id="tb_lr_exponential_amp",
        cause="lr_policy",
        split="tune",
        tags="plain",
        lr=1e-3,
        optim="sgd",
        steps=100,
        gamma=1.15,
        amp=True,
    ),
    dict(id="tb_loss_logpos", cause="loss_function", split="tune", tags="plain", lr=3e-2, steps=150, loss="logpos"),
    dict(
        id="tb_loss_logpos_title", cause="loss_function", split="held", tags="title", lr=5e-2, steps=150, loss="logpos"
    ),
    dict(
        id="tb_bad_inf_target",
        cause="bad_input",
        split="held",
        tags="hf",
        lr=1e-2,
        steps=80,
        loss="huber",
        bad_y={40: math.inf},
    ),
]


# second round, all in the tune part
CASES += [
    dict(
        id="tb_amp_scale_collapse_plain",
        cause="gradient_explosion",
        split="tune",
        tags="plain",
        lr=1e-3,
        steps=60,
        amp=True,
        scale_x=5e3,
    ),
    dict(
        id="tb_amp_explode_sgd",
        cause="gradient_explosion",
        split="tune",
        tags="title",
        lr=0.7,
        optim="sgd",
        steps=60,
        amp=True,
    ),
    dict(
        id="tb_lr_exponential_title",
        cause="lr_policy",
        split="tune",
        tags="title",
        lr=1e-3,
        optim="sgd",
        steps=80,
        gamma=1.2,
    ),
    dict(
        id="tb_bad_inf_target_plain",
        cause="bad_input",
        split="tune",
        tags="plain",
        lr=1e-2,
        steps=60,
        loss="huber",
        bad_y={30: math.inf},
    ),
    dict(id="tb_loss_logpos_fast", cause="loss_function", split="tune", tags="hf", lr=0.1, steps=150, loss="logpos"),
    dict(id="tb_healthy_amp_title", cause="healthy", split="tune", tags="title", lr=3e-3, steps=80, amp=True),
    dict(id="tb_healthy_sgd_hf", cause="healthy", split="tune", tags="hf", lr=0.05, optim="sgd", steps=80),
]


def run_case(case: dict) -> None:
    dest = OUT / case["id"]
    if dest.exists():
        shutil.rmtree(dest)
    tags = {"hf": HF_LIKE, "plain": PLAIN, "title": TITLE}[case["tags"]]
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 1))
    opt = (torch.optim.SGD if case.get("optim") == "sgd" else torch.optim.Adam)(net.parameters(), lr=case["lr"])
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, case["gamma"]) if case.get("gamma") else None
    amp = case.get("amp", False)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16, growth_interval=20, enabled=amp)
    data = batches(1, case.get("scale_x", 1.0), case.get("bad_y"))
    with tempfile.TemporaryDirectory() as tmp:
        writer = SummaryWriter(log_dir=tmp)
        for step in range(case["steps"]):
            x, y = next(data)
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.float16, enabled=amp):
                out = net(x)
            loss = loss_of(case.get("loss", "mse"), out, y)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            norm = torch.nn.utils.clip_grad_norm_(net.parameters(), float("inf"))
            writer.add_scalar(tags["loss"], loss.item(), step)
            writer.add_scalar(tags["lr"], opt.param_groups[0]["lr"], step)
            writer.add_scalar(tags["grad_norm"], norm.item(), step)
            if amp:
                writer.add_scalar(tags["scale"], scaler.get_scale(), step)
            scaler.step(opt)
            scaler.update()
            if sched is not None:
                sched.step()
        writer.close()
        events = sorted(Path(tmp).glob("events.out.tfevents*"))
        (dest / "runs").mkdir(parents=True)
        shutil.copy2(events[0], dest / "runs" / "events.out.tfevents.loop")
    expected = {
        "cause": case["cause"],
        "split": case["split"],
        "library": "torch.utils.tensorboard",
        "case": _plain(case),
    }
    (dest / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")


def _plain(v):
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items() if k not in ("id", "cause", "split")}
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def main(argv: list[str]) -> int:
    wanted = set(argv)
    for case in CASES:
        if wanted and case["id"] not in wanted:
            continue
        print("==", case["id"], flush=True)
        run_case(case)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
