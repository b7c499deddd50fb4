"""A real Lightning run that `nandoctor watch` follows while it writes metrics.csv.

    python3 tools/framework_lab/live_watch.py

Plain SGD at lr 0.6 with CSVLogger flushing every step (a sleep per step stands in for a
real step's time); the watcher runs at the same time in a subprocess and must stop with
exit 1 at the first inf/NaN while the training is still running. Too slow for the test
suite on a shared CPU (Lightning's import and fit take 10-60 s), so it is run by hand.
"""

import logging
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset

import torch
from torch import nn

warnings.filterwarnings("ignore")
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)


class M(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 1))

    def training_step(self, batch, i):
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x)[:, 0], y)
        self.log("train_loss", loss, on_step=True)
        time.sleep(0.02)  # a step takes time in a real run: the watcher reads the file while it grows
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.6)


def train(root: str) -> None:
    torch.manual_seed(5)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(512, 8, generator=g)
    y = x @ torch.randn(8, generator=g) * 0.5
    trainer = pl.Trainer(
        max_steps=60,
        accelerator="cpu",
        logger=CSVLogger(root, name="lightning_logs", version=0, flush_logs_every_n_steps=1),
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(M(), DataLoader(TensorDataset(x, y), batch_size=16))


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--train":
        train(sys.argv[2])
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "lightning_logs" / "version_0" / "metrics.csv"
        trainer = subprocess.Popen([sys.executable, __file__, "--train", tmp])
        watch = subprocess.run(
            [sys.executable, "-m", "nandoctor", "watch", str(csv), "--interval", "0.2", "--timeout", "300"], check=False
        )
        still_training = trainer.poll() is None
        trainer.wait()
    print(f"watch exited {watch.returncode}; the training was {'still' if still_training else 'no longer'} running")
    return 0 if watch.returncode == 1 and still_training else 1


if __name__ == "__main__":
    sys.exit(main())
