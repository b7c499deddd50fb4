"""A Hugging Face ``transformers`` Trainer callback around NaNGuard (needs ``transformers``).

    trainer = Trainer(model=model, args=args, train_dataset=data, callbacks=[NaNGuardCallback()])

The Trainer does not pass the batch to callbacks, so this callback runs the always-on
checks (gradients, lr) before every optimizer step and stops training on the first
non-finite value with the guard's diagnosis; the cause is named from the gradient
and lr history. For a replay of the batch, wrap the loop with NaNGuard directly or
override ``Trainer.training_step`` to call ``guard.check(loss, inputs)``.
"""

from __future__ import annotations

try:
    from transformers import TrainerCallback
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError("nandoctor.torch.huggingface needs transformers: pip install transformers") from exc

from nandoctor.torch.guard import NaNGuard


class NaNGuardCallback(TrainerCallback):
    def __init__(self, **guard_kwargs):
        self.guard_kwargs = guard_kwargs
        self.guard: NaNGuard | None = None

    def on_pre_optimizer_step(self, args, state, control, model=None, optimizer=None, lr_scheduler=None, **kwargs):
        if self.guard is None and model is not None and optimizer is not None:
            # fp16 training: accelerate's optimizer wrapper holds the GradScaler, whose normal
            # overflow skips must not count as failures
            scaler = getattr(optimizer, "scaler", None)
            kwargs = {"on_nan": "skip", "scaler": scaler, **self.guard_kwargs}
            self.guard = NaNGuard(model, optimizer, lr_scheduler, **kwargs)
        if self.guard is not None and not self.guard.check(None, None, step=getattr(state, "global_step", None)):
            control.should_training_stop = True
        return control

    def on_train_end(self, args, state, control, **kwargs):
        if self.guard is not None:
            self.guard.close()
