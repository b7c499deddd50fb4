"""A PyTorch Lightning callback around NaNGuard (needs ``lightning`` or ``pytorch_lightning``).

    trainer = Trainer(callbacks=[NaNGuardCallback(on_nan="stop", bundle_dir="nan-bundles")])

The guard is created at fit start for the module and its first optimizer. Before each
optimizer step it checks gradients and lr (Lightning does not hand the loss to
callbacks; a NaN loss shows up as NaN gradients) and replays the batch through
``training_step`` to name the cause. "stop" ends the fit; "skip" only skips the step.
"""

from __future__ import annotations

try:
    import lightning.pytorch as pl
except ImportError:  # pragma: no cover - depends on what is installed
    try:
        import pytorch_lightning as pl
    except ImportError as exc:
        raise ImportError("nandoctor.torch.lightning needs PyTorch Lightning: pip install lightning") from exc

from nandoctor.torch.guard import NaNGuard


def training_step_loss(module, batch, batch_idx: int = 0):
    """The loss a LightningModule's training_step returns (a tensor or a dict with "loss")."""
    out = module.training_step(batch, batch_idx)
    return out["loss"] if isinstance(out, dict) else out


def _scaler(trainer):
    for owner in (
        getattr(trainer, "precision_plugin", None),
        getattr(getattr(trainer, "strategy", None), "precision_plugin", None),
    ):
        scaler = getattr(owner, "scaler", None)
        if scaler is not None:
            return scaler
    return None


class NaNGuardCallback(pl.Callback):
    def __init__(self, on_nan: str = "stop", **guard_kwargs):
        super().__init__()
        self.on_nan = on_nan
        self.guard_kwargs = guard_kwargs
        self.guard: NaNGuard | None = None
        self._batch = None
        self._batch_idx = 0

    def on_fit_start(self, trainer, pl_module):
        schedulers = getattr(trainer, "lr_scheduler_configs", None) or []
        kwargs = {
            "closure": lambda m, b: training_step_loss(m, b, self._batch_idx),
            "on_nan": "skip" if self.on_nan == "stop" else self.on_nan,
            "scaler": _scaler(trainer),  # 16-bit AMP: normal overflow skips are not failures
            **self.guard_kwargs,
        }
        self.guard = NaNGuard(
            pl_module, trainer.optimizers[0], schedulers[0].scheduler if schedulers else None, **kwargs
        )

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._batch, self._batch_idx = batch, batch_idx

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        step = getattr(trainer, "global_step", None)
        if self.guard is not None and not self.guard.check(None, self._batch, step=step) and self.on_nan == "stop":
            trainer.should_stop = True

    def on_fit_end(self, trainer, pl_module):
        if self.guard is not None:
            self.guard.close()
