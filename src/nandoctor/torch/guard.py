"""NaNGuard: watch a live PyTorch loop, stop the first NaN before it reaches the weights, name its cause.

    guard = NaNGuard(model, optimizer, scheduler, criterion=loss_fn, on_nan="skip")
    for batch in guard.track(loader):
        optimizer.zero_grad()
        loss = loss_fn(model(batch[0]), batch[1])
        if guard.check_loss(loss, batch):      # optional: a failed forward never reaches backward()
            loss.backward()
        if guard.check(loss, batch):           # after backward(), before optimizer.step()
            optimizer.step()
        scheduler.step()

Each step costs a few fused reductions and one host sync (monitor.py), or none with
``sync_every`` (device.py). On the first non-finite loss, gradient or lr the guard
replays the step with hooks (replay.py), builds TorchFacts (collect.py), ranks causes
with the NAN6xx rules and, if asked, writes a reproducer bundle. Then it skips the
step (gradients set to None, or made to trip a GradScaler whether or not ``unscale_``
already ran, so even an unconditional ``optimizer.step()``/``scaler.step()`` leaves
the weights alone), stops, or raises.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

import torch
from nandoctor.core.types import Diagnosis
from nandoctor.torch import amp
from nandoctor.torch import batch as batches
from nandoctor.torch.diagnosis import diagnose_facts, render_text
from nandoctor.torch.facts import TRIGGER_GRAD, TRIGGER_LOSS, TRIGGER_LR, TRIGGER_SCALE, TorchFacts
from nandoctor.torch.inputs import BatchHistory, float_tensors
from nandoctor.torch.monitor import StepMonitor, StepStats
from nandoctor.torch.replay import BufferSnapshot, capture_rng
from nandoctor.torch.sharded import is_sharded
from nandoctor.torch.wrappers import unwrap

ACTIONS = ("skip", "stop", "raise")


class NaNDetected(RuntimeError):
    """Raised by a guard with ``on_nan="raise"``; carries the diagnosis and the bundle path."""

    def __init__(self, diagnosis: Diagnosis, bundle: Path | None = None):
        super().__init__(render_text(diagnosis))
        self.diagnosis = diagnosis
        self.bundle = bundle


class NaNGuard:
    """Always-on NaN guard for one model/optimizer pair.

    closure(model, batch) -> loss re-runs a step for the replay; without it, a
    ``criterion`` and a batch ``(inputs, targets, ...)`` (or a dict with input/target
    keys) give ``criterion(model(inputs), targets)``; with neither, only the model's
    forward is replayed. The replay hands the closure the eager model (inside DDP or
    torch.compile), so a closure must use its ``model`` argument.

    ``scaler`` is a GradScaler: its normal inf-gradient skips are let through, a run of
    ``max_scaler_skips`` (or a scale below ``min_scale``) is reported; ``check`` may be
    called before or after ``scaler.unscale_``. ``autocast`` (torch.autocast keyword
    arguments) makes the replay run under the loop's mixed precision when the closure
    does not enter it itself. ``bundle_dir`` makes the guard write a reproducer bundle.

    Gradient accumulation: call ``check_loss(loss, micro_batch)`` for every micro-batch
    and ``check()`` once before each optimizer step; the guard scans and replays the
    micro-batches it saw. ``sync_every=N`` keeps the check on the device and reads its
    flag every N steps (see device.py). Under torch.distributed every rank makes the
    same decision in the same step (see distributed.py).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any = None,
        *,
        closure=None,
        criterion=None,
        scaler=None,
        autocast: dict[str, Any] | None = None,
        on_nan: str = "raise",
        bundle_dir: str | Path | None = None,
        history: int = 64,
        replay: bool = True,
        max_scaler_skips: int = 12,
        min_scale: float = 2.0**-8,
        sync_every: int | None = None,
        distributed: bool | None = None,
        verbose: bool = True,
    ):
        if on_nan not in ACTIONS:
            raise ValueError(f"on_nan must be one of {ACTIONS}, not {on_nan!r}")
        self.model = model
        self.module = unwrap(model)
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.criterion = criterion
        self.closure = closure
        self.scaler = scaler
        self.autocast = autocast
        self.on_nan = on_nan
        self.bundle_dir = Path(bundle_dir) if bundle_dir is not None else None
        self.replay = replay
        self.max_scaler_skips = max_scaler_skips
        self.min_scale = min_scale
        self.verbose = verbose
        named = [(n, p) for n, p in self.module.named_parameters() if p.requires_grad]
        self.monitor = StepMonitor(named, optimizer, history)
        self.inputs = BatchHistory(history)
        self.buffers = BufferSnapshot(self.module)
        self.rng: dict[str, Any] | None = None
        self._armed = True
        self._hook = model.register_forward_pre_hook(self._before_forward)
        self.iteration = 0  # number of checked steps so far; the current step's index
        self.events = 0
        self.skipped = 0
        self.scaler_skips = 0
        self._consecutive_skips = 0
        self._scales: list[float] = []
        self._micro: list[tuple[Any, Any, dict[str, Any] | None]] = []  # (batch, indices, rng) since the last check
        self._loss_failed = False
        self.should_stop = False
        self.facts: TorchFacts | None = None
        self.diagnosis: Diagnosis | None = None
        self.bundle: Path | None = None
        self.recorder: Any = None
        self.sharded = is_sharded(self.module)  # FSDP2: replayed on an eager replica (sharded.py)
        self.replica: torch.nn.Module | None = None
        self.dist = None
        if distributed is not False:
            from nandoctor.torch.distributed import DistributedCheck

            self.dist = DistributedCheck.create(self, required=bool(distributed))
        self.device_check = None
        if sync_every is not None:
            if amp.enabled(scaler):
                raise ValueError("sync_every: a GradScaler reads its own flag every step; use the default mode")
            from nandoctor.torch.device import DeviceCheck

            self.device_check = DeviceCheck(self, sync_every)

    # step boundaries -------------------------------------------------------------
    def _before_forward(self, module, args):
        if self._armed and torch.is_grad_enabled():
            self.snapshot()

    def snapshot(self) -> None:
        """Remember RNG (and, at a step's first forward, buffers) before a forward (done automatically)."""
        self.rng = capture_rng()
        if not self._micro:
            self.buffers.take()
        self._armed = False

    def track(self, loader):
        """Data set indices for each batch: wrap a DataLoader (same batches, same order) or, as
        before, a batch sampler to pass as ``DataLoader(ds, batch_sampler=guard.track(sampler))``."""
        from torch.utils.data import DataLoader

        if isinstance(loader, DataLoader):
            from nandoctor.torch.tracking import TrackedLoader

            self.recorder = TrackedLoader(loader)
        else:
            self.recorder = batches.IndexRecorder(loader)
        return self.recorder

    @contextlib.contextmanager
    def step(self, batch: Any = None, indices: Any = None):
        """``with guard.step(batch) as s: ...; loss.backward(); if s.check(loss): optimizer.step()``."""
        self.snapshot()
        handle = _Step(self, batch, indices)
        yield handle

    def close(self) -> None:
        """Remove the guard's forward pre-hook from the model (checks then no longer snapshot)."""
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def attach(self) -> None:
        """Re-install the forward pre-hook after ``close()``."""
        if self._hook is None:
            self._hook = self.model.register_forward_pre_hook(self._before_forward)
            self._armed = True

    def _indices(self, batch: Any, indices: Any) -> Any:
        if indices is not None or self.recorder is None:
            return indices
        if hasattr(self.recorder, "indices_of"):
            return self.recorder.indices_of(batch) if batch is not None else self.recorder.last()
        return self.recorder.pop()

    # the cheap check before backward() -------------------------------------------------------
    def check_loss(self, loss: torch.Tensor | float, batch: Any = None, *, indices: Any = None) -> bool:
        """Call after the forward and before ``loss.backward()``; False when the loss is NaN/inf.

        Costs one scalar read (the loop usually reads ``loss.item()`` anyway; under
        torch.distributed one all-reduce of one flag, so all ranks skip together). A
        False means: do not call backward() — a forward that made NaN/inf can make the
        backward crash (a pooling argmax out of range). The guard diagnoses the step
        and the following ``check()`` returns False too, so the optimizer step is skipped.
        With gradient accumulation call it for every micro-batch.
        """
        if not isinstance(loss, torch.Tensor):
            loss = torch.tensor(float(loss))
        indices = self._indices(batch, indices)
        self._micro.append((batch, indices, self.rng))
        self._armed = True
        if self.device_check is not None:
            self.device_check.fold_loss(loss)
            return True
        bad = not bool(torch.isfinite(loss.detach()).all())
        if self.dist is not None:
            bad = self.dist.any_rank(bad)
        if not bad:
            return True
        self._loss_failed = True
        stats = StepStats(float(loss.detach().reshape(-1)[0]), math.nan, self.monitor.current_lrs())
        return self._failure(self.iteration, TRIGGER_LOSS, stats, before_backward=True)

    # the per-step check --------------------------------------------------------------
    def check(
        self,
        loss: torch.Tensor | float | None = None,
        batch: Any = None,
        *,
        indices: Any = None,
        step: int | None = None,
    ) -> bool:
        """Call after ``backward()`` and before ``optimizer.step()``; True when the step is safe to take.

        ``batch`` enables the replay and the data check (with accumulation the
        micro-batches given to ``check_loss`` are used); ``indices`` are the data set
        indices of its rows (else those recorded by ``track``, else a dict batch's
        ``index``/``idx`` field or the last member of an ``(x, y, idx)`` tuple);
        ``step`` labels the step in reports (default: the number of checks so far).
        """
        step = self.iteration if step is None else step
        self.iteration += 1
        if loss is not None and not isinstance(loss, torch.Tensor):
            loss = torch.tensor(float(loss))
        if batch is not None and not any(b is batch for b, _, _ in self._micro):
            self._micro.append((batch, self._indices(batch, indices) if indices is None else indices, self.rng))
        elif indices is not None and self._micro:
            self._micro[-1] = (self._micro[-1][0], indices, self._micro[-1][2])
        self._armed = True
        try:
            if self._loss_failed:  # check_loss already diagnosed this step; keep the step skipped
                self.skipped += 1
                self._poison_step()
                return False
            if self.device_check is not None:
                return self.device_check.check(step, loss)
            return self._check(step, loss)
        finally:
            self._loss_failed = False
            self._micro = []

    def _check(self, step: int, loss: torch.Tensor | None) -> bool:
        scale = amp.scale(self.scaler)
        divisor = scale if scale is not None and amp.grads_scaled(self.scaler, self.optimizer) else None
        current = self._micro[-1][0] if self._micro else None
        inputs = [t for _, t in float_tensors(current)] if current is not None else []
        stats = self.monitor.measure(loss, divisor, inputs)
        lr_bad = any(not math.isfinite(lr) or lr < 0 for lr in stats.lrs)
        loss_bad = loss is not None and not math.isfinite(stats.loss)
        grad_bad = not math.isfinite(stats.total_norm)
        if self.dist is not None:
            lr_bad, loss_bad, grad_bad = self.dist.agree(lr_bad, loss_bad, grad_bad)
        if not (lr_bad or loss_bad or grad_bad):
            self.monitor.record(stats)
            self.monitor.record_step(step)
            if stats.batch_maxima is not None:
                self.inputs.record([p for p, _ in float_tensors(current)], stats.batch_maxima)
            self._consecutive_skips = 0
            return True
        if grad_bad and not (lr_bad or loss_bad) and scale is not None:
            # A GradScaler overflow: the scaler will skip this step and halve its scale. Normal.
            self.scaler_skips += 1
            self._consecutive_skips += 1
            self._scales = [*self._scales[-31:], float(scale)]
            if self._consecutive_skips < self.max_scaler_skips and float(scale) >= self.min_scale:
                return True
            return self._failure(step, TRIGGER_SCALE, stats)
        trigger = TRIGGER_LR if lr_bad else TRIGGER_LOSS if loss_bad else TRIGGER_GRAD
        return self._failure(step, trigger, stats)

    # the first failure ----------------------------------------------------------------
    def _failure(self, step: int, trigger: str, stats: StepStats, *, before_backward: bool = False, lag=None) -> bool:
        self.events += 1
        if self.diagnosis is None:
            from nandoctor.torch.collect import collect

            if self.sharded and self.replay:
                from nandoctor.torch.sharded import eager_replica

                self.replica = eager_replica(self.module)  # all ranks are here together: gather once
            self.facts = collect(self, step, trigger, stats, self._micro, before_backward=before_backward, lag=lag)
            self.diagnosis = diagnose_facts(self.facts)
            if self.bundle_dir is not None:
                from nandoctor.torch.bundle import write_bundle

                last = self._micro[-1][0] if self._micro else None
                self.bundle = write_bundle(self.bundle_dir, self, last, self.facts, self.diagnosis)
                self.diagnosis.inputs["bundle"] = str(self.bundle)
            if self.verbose and self.on_nan != "raise":
                print(f"nandoctor: non-finite {trigger} at step {step}\n{render_text(self.diagnosis)}")
        if trigger == TRIGGER_SCALE:
            self._consecutive_skips = 0
        if not before_backward:
            self.skipped += 1
            self._poison_step()
        if self.on_nan == "stop":
            self.should_stop = True
        elif self.on_nan == "raise":
            raise NaNDetected(self.diagnosis, self.bundle)
        return False

    def _poison_step(self) -> None:
        """Make the coming step a no-op for the weights, whatever the loop does next.

        Without a scaler the gradients become None, which every torch optimizer skips
        (no momentum or weight-decay update either). A GradScaler needs gradients to
        check, so they are filled with NaN, and after ``unscale_`` its found-inf record
        is set as well: ``scaler.step`` then skips the step.
        """
        if amp.enabled(self.scaler):
            amp.skip_step(self.scaler, self.optimizer, self.monitor.params)
            return
        for p in self.monitor.params:
            p.grad = None

    # what the replay runs ------------------------------------------------------------------
    def replay_closure(self, batch: Any, autocast: bool = True):
        """The function the replay calls, ``fn(model, batch) -> loss``, and whether it is partial
        (only the model's forward, when neither closure nor criterion says how to get the loss)."""
        closure, partial = self._base_closure(batch)
        if self.autocast is None or not autocast:
            return closure, partial
        settings = dict(self.autocast)

        def under_autocast(model, b):
            with torch.autocast(**settings):
                return closure(model, b)

        return under_autocast, partial

    _closure = replay_closure  # the name replay_bundle used

    def _base_closure(self, batch: Any):
        if self.closure is not None:
            return self.closure, False
        inputs, targets = _split(batch)
        if self.criterion is not None and targets is not None:
            criterion = self.criterion
            return (lambda model, b: criterion(model(_split(b)[0]), _split(b)[1])), False
        if isinstance(batch, dict) and inputs is None:
            return (lambda model, b: _hf_loss(model(**b))), False
        return (lambda model, b: model(_split(b)[0])), True


class _Step:
    """The handle of ``guard.step(batch)``: ``check(loss)`` and, afterwards, ``ok``."""

    def __init__(self, guard: NaNGuard, batch: Any, indices: Any):
        self.guard, self.batch, self.indices = guard, batch, indices
        self.ok: bool | None = None

    def check(self, loss: torch.Tensor | None = None) -> bool:
        self.ok = self.guard.check(loss, self.batch, indices=self.indices)
        return self.ok


INPUT_KEYS = ("input", "inputs", "x", "image", "images", "data", "features")
TARGET_KEYS = ("target", "targets", "y", "label", "labels")


def _split(batch: Any) -> tuple[Any, Any]:
    if isinstance(batch, torch.Tensor):
        return batch, None
    if isinstance(batch, list | tuple) and batch:
        return batch[0], (batch[1] if len(batch) > 1 else None)
    if isinstance(batch, dict):
        inputs = next((batch[k] for k in INPUT_KEYS if k in batch), None)
        targets = next((batch[k] for k in TARGET_KEYS if k in batch), None)
        return inputs, targets
    return batch, None


def _hf_loss(output: Any) -> Any:
    """Hugging Face models return an object (or dict) with a ``loss`` when labels are in the batch."""
    loss = getattr(output, "loss", None)
    if loss is None and isinstance(output, dict):
        loss = output.get("loss")
    return loss if loss is not None else output
