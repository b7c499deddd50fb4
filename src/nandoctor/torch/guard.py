"""NaNGuard: watch a live PyTorch loop, stop the first NaN before it reaches the weights, name its cause.

    guard = NaNGuard(model, optimizer, scheduler, criterion=loss_fn, on_nan="skip")
    for batch in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(batch[0]), batch[1])
        loss.backward()
        if guard.check(loss, batch):
            optimizer.step()
        scheduler.step()

Each step costs two fused reductions and one host sync (see monitor.py). On the first
non-finite loss, gradient or lr the guard replays the step with hooks (replay.py),
builds TorchFacts, ranks causes with the NAN6xx rules and, if asked, writes a
reproducer bundle. Then it skips the step (gradients set to None, or to NaN under a
GradScaler, so even an unconditional ``optimizer.step()``/``scaler.step()`` leaves
the weights alone), stops, or raises.
"""

from __future__ import annotations

import contextlib
import math
import statistics
from pathlib import Path
from typing import Any

import torch
from nandoctor.core.types import Diagnosis
from nandoctor.torch import batch as batches
from nandoctor.torch.diagnosis import diagnose_facts, render_text
from nandoctor.torch.facts import TRIGGER_GRAD, TRIGGER_LOSS, TRIGGER_LR, TRIGGER_SCALE, TorchFacts, num
from nandoctor.torch.monitor import StepMonitor, StepStats
from nandoctor.torch.replay import BufferSnapshot, capture_rng, replay_step

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
    forward is replayed. ``scaler`` is a GradScaler: its normal inf-gradient skips are
    let through, a run of ``max_scaler_skips`` (or a scale below ``min_scale``) is
    reported; ``autocast`` (torch.autocast keyword arguments, e.g.
    ``{"device_type": "cuda", "dtype": torch.float16}``) makes the replay run under the
    same mixed precision as the loop when the closure does not enter it itself.
    ``bundle_dir`` makes the guard write a reproducer bundle there.

    With gradient accumulation, call ``check`` once per optimizer step with the last
    micro-batch: the replay covers that micro-batch.
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
        verbose: bool = True,
    ):
        if on_nan not in ACTIONS:
            raise ValueError(f"on_nan must be one of {ACTIONS}, not {on_nan!r}")
        self.model = model
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
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.monitor = StepMonitor(named, optimizer, history)
        self.buffers = BufferSnapshot(model)
        self.rng: dict[str, Any] | None = None
        self._armed = True
        self._hook = model.register_forward_pre_hook(self._before_forward)
        self.iteration = 0  # number of checked steps so far; the current step's index
        self.events = 0
        self.skipped = 0
        self.scaler_skips = 0
        self._consecutive_skips = 0
        self._scales: list[float] = []
        self.should_stop = False
        self.facts: TorchFacts | None = None
        self.diagnosis: Diagnosis | None = None
        self.bundle: Path | None = None
        self.recorder: batches.IndexRecorder | None = None

    # step boundaries -------------------------------------------------------------
    def _before_forward(self, module, args):
        if self._armed and torch.is_grad_enabled():
            self.snapshot()

    def snapshot(self) -> None:
        """Remember RNG and buffers as they are before this step's forward (done automatically)."""
        self.rng = capture_rng()
        self.buffers.take()
        self._armed = False

    def track(self, batch_sampler) -> batches.IndexRecorder:
        """Wrap a DataLoader's batch sampler so each check knows its batch's data set indices."""
        self.recorder = batches.IndexRecorder(batch_sampler)
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

        ``batch`` enables the replay and the data check; ``indices`` are the data set indices
        of its rows (else those recorded by ``track``, else a dict batch's ``index``/``idx``
        field); ``step`` labels the
        step in reports (default: the number of checks so far).
        """
        step = self.iteration if step is None else step
        self.iteration += 1
        if loss is not None and not isinstance(loss, torch.Tensor):
            loss = torch.tensor(float(loss))
        if self.recorder is not None:
            recorded = self.recorder.pop()
            indices = recorded if indices is None else indices
        self._armed = True
        scale = self._scaler_scale()
        stats = self.monitor.measure(loss, scale if scale is not None and self._grads_scaled() else None)
        lr_bad = any(not math.isfinite(lr) or lr < 0 for lr in stats.lrs)
        loss_bad = loss is not None and not math.isfinite(stats.loss)
        grad_bad = not math.isfinite(stats.total_norm)
        if not (lr_bad or loss_bad or grad_bad):
            self.monitor.record(stats)
            self._consecutive_skips = 0
            return True
        if grad_bad and not (lr_bad or loss_bad) and scale is not None:
            # A GradScaler overflow: the scaler will skip this step and halve its scale. Normal.
            self.scaler_skips += 1
            self._consecutive_skips += 1
            self._scales = [*self._scales[-31:], float(scale)]
            if self._consecutive_skips < self.max_scaler_skips and float(scale) >= self.min_scale:
                return True
            return self._failure(step, TRIGGER_SCALE, stats, batch, indices)
        trigger = TRIGGER_LR if lr_bad else TRIGGER_LOSS if loss_bad else TRIGGER_GRAD
        return self._failure(step, trigger, stats, batch, indices)

    # mixed precision ----------------------------------------------------------------
    def _scaler_scale(self) -> torch.Tensor | None:
        scaler = self.scaler
        if scaler is None or not getattr(scaler, "is_enabled", lambda: False)():
            return None
        scale = getattr(scaler, "_scale", None)
        return scale if isinstance(scale, torch.Tensor) else torch.tensor(scaler.get_scale())

    def _grads_scaled(self) -> bool:
        states = getattr(self.scaler, "_per_optimizer_states", {})
        # wrappers (accelerate's AcceleratedOptimizer) register the inner optimizer with the scaler
        for opt in (self.optimizer, getattr(self.optimizer, "optimizer", None)):
            stage = states.get(id(opt), {}).get("stage") if opt is not None else None
            if stage is not None:
                return getattr(stage, "name", "") != "UNSCALED"
        return True

    # the first failure ----------------------------------------------------------------
    def _failure(self, step: int, trigger: str, stats: StepStats, batch: Any, indices: Any) -> bool:
        self.events += 1
        if self.diagnosis is None:
            self.facts = self._collect(step, trigger, stats, batch, indices)
            self.diagnosis = diagnose_facts(self.facts)
            if self.bundle_dir is not None:
                from nandoctor.torch.bundle import write_bundle

                self.bundle = write_bundle(self.bundle_dir, self, batch, self.facts, self.diagnosis)
                self.diagnosis.inputs["bundle"] = str(self.bundle)
            if self.verbose and self.on_nan != "raise":
                print(f"nandoctor: non-finite {trigger} at step {step}\n{render_text(self.diagnosis)}")
        if trigger == TRIGGER_SCALE:
            self._consecutive_skips = 0
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
        check, so they are filled with NaN instead: ``scaler.step`` then skips the step.
        """
        scaled = self._scaler_scale() is not None
        for p in self.monitor.params:
            if not scaled:
                p.grad = None
            elif p.grad is not None:
                p.grad.fill_(float("nan"))

    def _collect(self, step: int, trigger: str, stats: StepStats, batch: Any, indices: Any) -> TorchFacts:
        m = self.monitor
        facts = TorchFacts(
            step=step,
            trigger=trigger,
            loss=num(stats.loss) if stats.has_loss else None,
            model=type(self.model).__name__,
            lrs=[num(x) for x in stats.lrs],
            lr_history=[[num(x) for x in row] for row in [*list(m.lrs)[-16:], stats.lrs]],
            scheduler=type(self.scheduler).__name__ if self.scheduler is not None else None,
            grad_norms=[num(x) for x in list(m.totals)[-16:]],
        )
        facts.nonfinite_grads = m.nonfinite_grads()
        facts.nonfinite_params = m.nonfinite_params()
        facts.optimizer = _optimizer_summary(self.optimizer)
        self._growth(facts)
        if self._scales:
            facts.scaler = {
                "scale": self._scales[-1],
                "consecutive_skips": self._consecutive_skips,
                "skips": self.scaler_skips,
                "scale_history": list(self._scales),
            }
        if batch is not None:
            facts.batch = batches.scan(batch, indices)
        if trigger == TRIGGER_LR:
            facts.replay = {"ran": False, "reason": "the lr was non-finite; nothing to replay"}
        elif batch is None or not self.replay:
            facts.replay = {"ran": False, "reason": "no batch given to check()" if batch is None else "replay=False"}
        elif facts.batch:
            facts.replay = {"ran": False, "reason": "the batch itself is non-finite"}
        else:
            closure, partial = self._closure(batch)
            result = replay_step(self.model, closure, batch, self.rng, self.buffers)
            facts.replay = {k: result.get(k) for k in ("ran", "reproduced", "error")}
            facts.replay["partial"] = partial
            if result.get("forward"):
                facts.forward = {**result["forward"], "module_producer": result.get("module")}
            facts.backward = result.get("backward")
            if result.get("error"):
                facts.replay["reason"] = result["error"]
        return facts

    def _closure(self, batch: Any):
        closure, partial = self._base_closure(batch)
        if self.autocast is None:
            return closure, partial
        settings = dict(self.autocast)

        def under_autocast(model, b):
            with torch.autocast(**settings):
                return closure(model, b)

        return under_autocast, partial

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

    def _growth(self, facts: TorchFacts) -> None:
        """Growth of the total and per-parameter gradient norms over the ring buffer."""
        totals = [t for t in self.monitor.totals if math.isfinite(t)]
        if len(totals) < 4:
            return
        k = max(2, len(totals) // 4)
        baseline = statistics.median(totals[:k])
        if baseline <= 0:
            return
        facts.growth = totals[-1] / baseline
        healthy = sorted(t for t in totals if t <= 10 * baseline)
        if healthy:
            p90 = healthy[min(len(healthy) - 1, int(0.9 * len(healthy)))]
            facts.suggested_max_norm = float(f"{max(p90, 1e-12):.2g}")
        entries = list(self.monitor.per_param)
        if len(entries) >= 4:
            early = [self.monitor.named_norms(e) for e in entries[:k]]
            late = self.monitor.named_norms(entries[-1])
            rows = []
            for name, norm in late.items():
                base = statistics.median([e[name] for e in early if name in e] or [0.0])
                if base > 0 and math.isfinite(norm):
                    rows.append({"name": name, "growth": norm / base, "norm": norm, "baseline": base})
            rows.sort(key=lambda r: -r["growth"])
            facts.top_params = rows[:5]


HYPERPARAMETERS = ("lr", "eps", "weight_decay", "momentum", "betas", "alpha", "rho", "lr_decay")


def _optimizer_summary(optimizer) -> dict[str, Any]:
    """The optimizer's type and the numeric hyperparameters of each param group, for the report."""
    groups = []
    for group in getattr(optimizer, "param_groups", []):
        row = {}
        for key in HYPERPARAMETERS:
            v = group.get(key)
            if isinstance(v, int | float) and not isinstance(v, bool):
                row[key] = num(v)
            elif isinstance(v, tuple | list) and all(isinstance(x, int | float) for x in v):
                row[key] = [num(x) for x in v]
        groups.append(row)
    inner = getattr(optimizer, "optimizer", None)  # wrappers such as accelerate's
    kind = type(inner if isinstance(inner, torch.optim.Optimizer) else optimizer).__name__
    return {"type": kind, "groups": groups}


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
