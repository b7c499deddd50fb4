"""Ground truth from real Lightning runs: a 2-layer MLP regressor on CPU, one per case.

    python3 tools/framework_lab/lightning_lab.py [CASE_ID ...]

Each case injects one cause (or none) and logs with CSVLogger (metrics.csv, hparams.yaml)
and, where the case says so, TensorBoardLogger too. Only those small files and an
expected.json are kept, in tests/fixtures/frameworks/<id>/.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities import grad_norm
from torch.utils.data import DataLoader, TensorDataset

import torch
from torch import nn

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "frameworks"
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
warnings.filterwarnings("ignore")


def data(n: int, seed: int, bad_y: dict[int, float] | None = None, bad_x: dict[int, float] | None = None):
    g = np.random.default_rng(seed)
    x = g.normal(size=(n, 8)).astype(np.float32)
    y = (x @ g.normal(size=8) * 0.5 + 0.1 * g.normal(size=n)).astype(np.float32)
    for i, v in (bad_y or {}).items():
        y[i] = v
    for i, v in (bad_x or {}).items():
        x[i, 0] = v
    return TensorDataset(torch.from_numpy(x), torch.from_numpy(y))


class Regressor(pl.LightningModule):
    def __init__(
        self,
        lr: float = 1e-3,
        optim: str = "adam",
        loss: str = "mse",
        sched: str = "none",
        sched_arg: float = 0.0,
        log_grad_norm: bool = False,
        hidden: int = 32,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(8, hidden), nn.Tanh(), nn.Linear(hidden, 2))

    def _loss(self, batch):
        x, y = batch
        out = self.net(x)
        mean = out[:, 0]
        kind = self.hparams.loss
        if kind == "huber":
            return nn.functional.smooth_l1_loss(mean, y)
        if kind == "nll":
            var = out[:, 1]  # the variance taken raw from the head: log of a negative number
            return (torch.log(var + 1.0) + (y - mean) ** 2 / (var + 1.0)).mean()
        if kind == "logpos":
            # a log-space target fitted through log(relu): log(0) once a prediction crosses zero
            return ((torch.log(torch.relu(mean + 3.0)) - torch.log(torch.abs(y) + 3.0)) ** 2).mean()
        if kind == "masked":
            mask = (y > 1.0).float()  # mean over the large targets only: 0/0 in a batch without one
            return (((mean - y) ** 2) * mask).sum() / mask.sum()
        return nn.functional.mse_loss(mean, y)

    def training_step(self, batch, batch_idx):
        loss = self._loss(batch)
        self.log("train_loss", loss, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self._loss(batch), on_epoch=True, prog_bar=True)

    def on_before_optimizer_step(self, optimizer):
        if self.hparams.log_grad_norm:
            self.log("grad_2.0_norm_total", grad_norm(self, norm_type=2)["grad_2.0_norm_total"], on_step=True)

    def configure_optimizers(self):
        hp = self.hparams
        opt = (
            torch.optim.SGD(self.parameters(), lr=hp.lr)
            if hp.optim == "sgd"
            else torch.optim.Adam(self.parameters(), lr=hp.lr)
        )
        if hp.sched == "none":
            return opt
        if hp.sched == "exp":
            sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=hp.sched_arg)
        elif hp.sched == "neg":
            steps = hp.sched_arg
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / steps)
        elif hp.sched == "step":
            sched = torch.optim.lr_scheduler.StepLR(opt, step_size=int(hp.sched_arg), gamma=0.5)
        elif hp.sched == "cosine":
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=int(hp.sched_arg))
        elif hp.sched == "cyclic":
            sched = torch.optim.lr_scheduler.CyclicLR(opt, base_lr=hp.lr, max_lr=hp.lr * 400, step_size_up=30)
        else:
            raise ValueError(hp.sched)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


CASES: list[dict] = [
    # healthy controls
    dict(id="pl_healthy_adam", cause="healthy", split="tune", model=dict(lr=1e-2), steps=80, log=1),
    dict(
        id="pl_healthy_sgd_step",
        cause="healthy",
        split="held",
        model=dict(lr=0.05, optim="sgd", sched="step", sched_arg=30),
        steps=90,
        log=2,
    ),
    dict(
        id="pl_healthy_val_tb",
        cause="healthy",
        split="tune",
        model=dict(lr=1e-2, log_grad_norm=True),
        steps=80,
        log=1,
        val=True,
        tb=True,
    ),
    dict(
        id="pl_healthy_accum",
        cause="healthy",
        split="held",
        model=dict(lr=1e-2, sched="cosine", sched_arg=40),
        steps=40,
        log=1,
        accum=4,
    ),
    dict(
        id="pl_healthy_bf16",
        cause="healthy",
        split="tune",
        model=dict(lr=1e-2, log_grad_norm=True),
        steps=60,
        log=2,
        precision="bf16-mixed",
    ),
    dict(
        id="pl_healthy_huber_resumed",
        cause="healthy",
        split="held",
        model=dict(lr=1e-2, loss="huber"),
        steps=80,
        log=1,
        resume=40,
    ),
    dict(
        id="pl_healthy_tb_only",
        cause="healthy",
        split="held",
        model=dict(lr=3e-3, log_grad_norm=True),
        steps=60,
        log=1,
        tb=True,
        csv=False,
    ),
    # the learning rate schedule
    dict(
        id="pl_lr_exponential",
        cause="lr_policy",
        split="tune",
        model=dict(lr=1e-3, optim="sgd", sched="exp", sched_arg=1.15),
        steps=100,
        log=1,
    ),
    dict(
        id="pl_lr_exponential_tb",
        cause="lr_policy",
        split="held",
        model=dict(lr=1e-3, optim="sgd", sched="exp", sched_arg=1.12, log_grad_norm=True),
        steps=120,
        log=2,
        tb=True,
        csv=False,
    ),
    dict(
        id="pl_lr_negative",
        cause="lr_policy",
        split="tune",
        model=dict(lr=0.05, optim="sgd", sched="neg", sched_arg=30),
        steps=120,
        log=1,
    ),
    dict(
        id="pl_lr_negative_adam",
        cause="lr_policy",
        split="held",
        model=dict(lr=0.01, sched="neg", sched_arg=25),
        steps=150,
        log=3,
    ),
    dict(
        id="pl_lr_cyclic",
        cause="lr_policy",
        split="tune",
        model=dict(lr=1e-3, optim="sgd", sched="cyclic"),
        steps=90,
        log=1,
        val=True,
    ),
    # gradient explosion
    dict(
        id="pl_explode_sgd", cause="gradient_explosion", split="tune", model=dict(lr=0.6, optim="sgd"), steps=60, log=1
    ),
    dict(
        id="pl_explode_sgd_gn",
        cause="gradient_explosion",
        split="held",
        model=dict(lr=0.5, optim="sgd", log_grad_norm=True),
        steps=80,
        log=1,
        tb=True,
    ),
    dict(
        id="pl_explode_sgd_val",
        cause="gradient_explosion",
        split="tune",
        model=dict(lr=0.55, optim="sgd", log_grad_norm=True),
        steps=80,
        log=2,
        val=True,
    ),
    dict(
        id="pl_explode_wide",
        cause="gradient_explosion",
        split="held",
        model=dict(lr=0.3, optim="sgd", hidden=256),
        steps=80,
        log=1,
    ),
    # the loss computes NaN from finite values
    dict(id="pl_loss_nll", cause="loss_function", split="tune", model=dict(lr=1e-2, loss="nll"), steps=150, log=1),
    dict(
        id="pl_loss_logpos", cause="loss_function", split="held", model=dict(lr=3e-2, loss="logpos"), steps=150, log=1
    ),
    dict(
        id="pl_loss_masked",
        cause="loss_function",
        split="tune",
        model=dict(lr=1e-2, loss="masked", log_grad_norm=True),
        steps=100,
        log=1,
        batch=8,
    ),
    dict(
        id="pl_loss_nll_tb",
        cause="loss_function",
        split="held",
        model=dict(lr=1e-2, loss="nll", log_grad_norm=True),
        steps=150,
        log=2,
        tb=True,
        csv=False,
    ),
    # bad input: a record with an inf target (a robust loss keeps the weights finite) or a NaN
    dict(
        id="pl_bad_inf_target_huber",
        cause="bad_input",
        split="tune",
        model=dict(lr=1e-2, loss="huber"),
        steps=80,
        log=1,
        bad_y={100: math.inf},
    ),
    dict(
        id="pl_bad_val_nan",
        cause="bad_input",
        split="held",
        model=dict(lr=1e-2),
        steps=80,
        log=1,
        val=True,
        bad_val={5: math.nan},
    ),
    dict(
        id="pl_bad_val_nan_gn",
        cause="bad_input",
        split="tune",
        model=dict(lr=1e-2, log_grad_norm=True),
        steps=80,
        log=2,
        val=True,
        bad_val={9: math.nan},
    ),
    dict(
        id="pl_bad_huge_target_huber",
        cause="bad_input",
        split="held",
        model=dict(lr=1e-2, loss="huber", log_grad_norm=True),
        steps=80,
        log=1,
        bad_y={200: 1e38, 201: 1e38},
    ),
    dict(
        id="pl_bad_nan_feature",
        cause="bad_input",
        split="tune",
        model=dict(lr=1e-2),
        steps=80,
        log=1,
        bad_x={300: math.nan},
    ),
]


# second round, all in the tune part: accumulation, bf16, logging intervals, validation and resumed runs
CASES += [
    dict(
        id="pl_lr_exponential_accum",
        cause="lr_policy",
        split="tune",
        model=dict(lr=1e-3, optim="sgd", sched="exp", sched_arg=1.15),
        steps=100,
        log=2,
        accum=2,
    ),
    dict(
        id="pl_lr_exponential_val_gn",
        cause="lr_policy",
        split="tune",
        model=dict(lr=1e-3, optim="sgd", sched="exp", sched_arg=1.12, log_grad_norm=True),
        steps=120,
        log=1,
        val=True,
    ),
    dict(
        id="pl_lr_negative_gn",
        cause="lr_policy",
        split="tune",
        model=dict(lr=0.05, optim="sgd", sched="neg", sched_arg=30, log_grad_norm=True),
        steps=120,
        log=2,
    ),
    dict(
        id="pl_explode_sgd_accum",
        cause="gradient_explosion",
        split="tune",
        model=dict(lr=0.6, optim="sgd"),
        steps=60,
        log=1,
        accum=2,
    ),
    dict(
        id="pl_explode_bf16",
        cause="gradient_explosion",
        split="tune",
        model=dict(lr=0.6, optim="sgd", log_grad_norm=True),
        steps=60,
        log=1,
        precision="bf16-mixed",
    ),
    dict(
        id="pl_explode_sgd_log5",
        cause="gradient_explosion",
        split="tune",
        model=dict(lr=0.55, optim="sgd"),
        steps=80,
        log=5,
    ),
    dict(
        id="pl_loss_nll_val",
        cause="loss_function",
        split="tune",
        model=dict(lr=1e-2, loss="nll"),
        steps=150,
        log=1,
        val=True,
    ),
    dict(
        id="pl_loss_nll_gn",
        cause="loss_function",
        split="tune",
        model=dict(lr=1e-2, loss="nll", log_grad_norm=True),
        steps=150,
        log=2,
    ),
    dict(
        id="pl_loss_masked_accum",
        cause="loss_function",
        split="tune",
        model=dict(lr=1e-2, loss="masked"),
        steps=100,
        log=1,
        batch=8,
        accum=2,
    ),
    dict(
        id="pl_loss_logpos_fast",
        cause="loss_function",
        split="tune",
        model=dict(lr=0.1, loss="logpos"),
        steps=150,
        log=1,
    ),
    dict(
        id="pl_bad_inf_target_huber_gn",
        cause="bad_input",
        split="tune",
        model=dict(lr=0.01, loss="huber", log_grad_norm=True),
        steps=80,
        log=1,
        bad_y={300: math.inf},
    ),
    dict(
        id="pl_bad_val_inf",
        cause="bad_input",
        split="tune",
        model=dict(lr=0.01),
        steps=80,
        log=1,
        val=True,
        bad_val={3: math.inf},
    ),
    dict(
        id="pl_bad_huge_target_huber_late",
        cause="bad_input",
        split="tune",
        model=dict(lr=0.01, loss="huber"),
        steps=80,
        log=1,
        bad_y={400: 1e38},
    ),
    dict(
        id="pl_bad_nan_target",
        cause="bad_input",
        split="tune",
        model=dict(lr=0.01),
        steps=80,
        log=1,
        bad_y={200: math.nan},
    ),
    dict(
        id="pl_healthy_sgd_gn_val",
        cause="healthy",
        split="tune",
        model=dict(lr=0.05, optim="sgd", log_grad_norm=True),
        steps=80,
        log=1,
        val=True,
    ),
    dict(
        id="pl_healthy_bf16_accum",
        cause="healthy",
        split="tune",
        model=dict(lr=0.01),
        steps=40,
        log=1,
        accum=2,
        precision="bf16-mixed",
    ),
    dict(id="pl_healthy_nll", cause="healthy", split="tune", model=dict(lr=1e-3, loss="nll"), steps=60, log=1),
    dict(
        id="pl_healthy_exp_decay",
        cause="healthy",
        split="tune",
        model=dict(lr=0.05, optim="sgd", sched="exp", sched_arg=0.97),
        steps=80,
        log=1,
    ),
    dict(
        id="pl_healthy_resumed_val",
        cause="healthy",
        split="tune",
        model=dict(lr=0.01),
        steps=80,
        log=1,
        val=True,
        resume=40,
    ),
]


def run_case(case: dict) -> None:
    dest = OUT / case["id"]
    if dest.exists():
        shutil.rmtree(dest)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        batch = case.get("batch", 16)
        train = DataLoader(data(512, 1, case.get("bad_y"), case.get("bad_x")), batch_size=batch, shuffle=False)
        val = DataLoader(data(64, 2, case.get("bad_val")), batch_size=16) if case.get("val") else None

        def fit(steps, ckpt=None, version=0):
            torch.manual_seed(5)
            loggers = []
            if case.get("csv", True):
                loggers.append(CSVLogger(root, name="lightning_logs", version=version))
            if case.get("tb"):
                loggers.append(TensorBoardLogger(root, name="tb_logs", version=version, default_hp_metric=False))
            trainer = pl.Trainer(
                max_steps=steps,
                accelerator="cpu",
                devices=1,
                logger=loggers,
                log_every_n_steps=case.get("log", 1),
                accumulate_grad_batches=case.get("accum", 1),
                precision=case.get("precision", "32-true"),
                callbacks=[LearningRateMonitor(logging_interval="step")],
                val_check_interval=20 if val is not None else None,
                limit_val_batches=None if val is not None else 0,
                enable_progress_bar=False,
                enable_model_summary=False,
                enable_checkpointing=False,
                default_root_dir=root,
            )
            module = Regressor(**case["model"])
            trainer.fit(module, train, val, ckpt_path=ckpt)
            return trainer

        if case.get("resume"):
            t = fit(case["resume"])
            t.save_checkpoint(root / "half.ckpt")
            fit(case["steps"], str(root / "half.ckpt"), version=1)
        else:
            fit(case["steps"])
        for p in sorted(root.rglob("*")):
            if p.is_file() and (p.name in ("metrics.csv", "hparams.yaml") or p.name.startswith("events.out.tfevents")):
                rel = p.relative_to(root)
                if p.name.startswith("events.out.tfevents"):
                    rel = rel.parent / "events.out.tfevents.pl"
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(p, dest / rel)
    expected = {"cause": case["cause"], "split": case["split"], "library": "lightning", "case": _plain(case)}
    (dest / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")


def _plain(v):
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items() if k not in ("id", "cause", "split")}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
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
