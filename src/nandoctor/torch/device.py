"""The guard without a host sync per step (``NaNGuard(..., sync_every=N)``), for GPUs.

The finite check, the skip and the history stay on the device: per step the gradient
norms (one fused kernel) and the loss make a "bad" flag; the update is masked with it
on the device (a fused optimizer — ``fused=True`` — reads it as ``found_inf`` and skips
the step exactly, as under a GradScaler; any other optimizer gets zeroed gradients, so
momentum and weight decay still act but no NaN reaches the weights); norms and loss go
into a ring buffer on the device; the first bad step is remembered there.

The host reads that one number every N steps (a sync every N steps), and on CUDA also
copies it asynchronously into pinned memory each step and looks at the copy when it has
arrived. So the report comes up to N - 1 steps late (one step on CUDA, usually) and
says by how much; the batches of the last N steps are kept for the replay, which runs
on the weights of the step that read the flag (the masked steps did not change them,
the good steps in between did).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import torch
from nandoctor.torch.facts import TRIGGER_GRAD, TRIGGER_LOSS, TRIGGER_LR
from nandoctor.torch.monitor import StepStats


class DeviceCheck:
    def __init__(self, guard, every: int):
        self.guard = guard
        self.every = max(1, int(every))
        params = guard.monitor.params
        self.device = params[0].device if params else torch.device("cpu")
        dev = self.device
        self.first_bad = torch.full((), -1, dtype=torch.int64, device=dev)
        self.bad_steps = torch.zeros((), dtype=torch.int64, device=dev)
        self.step_on_device = torch.zeros((), dtype=torch.int64, device=dev)
        self.loss_bad = torch.zeros((), dtype=torch.bool, device=dev)
        self.history = guard.monitor.totals.maxlen or 64
        self.ring = torch.zeros(self.history, len(params) + 2, dtype=torch.float32, device=dev)
        self.zero = torch.zeros((), dtype=params[0].dtype if params else torch.float32, device=dev)
        self.recent: deque[tuple[int, list, list[float]]] = deque(maxlen=self.every + 1)
        opt = guard.optimizer
        self.fused = bool(getattr(opt, "_step_supports_amp_scaling", False))
        self.async_copy = dev.type == "cuda"
        self.pinned = torch.full((), -1, dtype=torch.int64).pin_memory() if self.async_copy else None
        self.event = None
        self.reads = 0  # host syncs so far
        self.reported = False

    def fold_loss(self, loss: torch.Tensor) -> None:
        self.loss_bad.logical_or_(torch.isfinite(loss.detach()).all().logical_not().to(self.device))

    def check(self, step: int, loss: torch.Tensor | None) -> bool:
        guard = self.guard
        lrs = guard.monitor.current_lrs()
        if any(not math.isfinite(lr) or lr < 0 for lr in lrs):  # the lr lives on the host: no sync needed
            self._mask(torch.ones((), dtype=torch.bool, device=self.device), [])
            return guard._failure(step, TRIGGER_LR, StepStats(math.nan, math.nan, lrs, loss is not None))
        grads = [g if g is not None else self.zero for g in guard.monitor.grads()]
        norms = torch.stack(torch._foreach_norm(grads, 2, dtype=torch.float32)) if grads else self.zero[None]
        total = norms.square().sum().sqrt()
        value = loss.detach().float().sum().to(self.device) if loss is not None else self.zero.float()
        bad = torch.isfinite(total).logical_not() | torch.isfinite(value).logical_not() | self.loss_bad
        self.ring[step % self.history].copy_(torch.cat([norms, total[None], value[None]]))
        self.first_bad.copy_(torch.where(bad & (self.first_bad < 0), self.step_on_device, self.first_bad))
        self.step_on_device.add_(1)
        self.bad_steps.add_(bad.long())
        self.loss_bad.zero_()
        self._mask(bad, [g for g in guard.monitor.grads() if g is not None])
        self.recent.append((step, list(guard._micro), lrs))
        guard.monitor.lrs.append(lrs)
        guard.monitor.steps.append(step)
        first = self._read(step)
        if first is None or first < 0 or self.reported:
            return True
        self.reported = True
        return self._report(first, step, loss)

    def _mask(self, bad: torch.Tensor, grads: list[torch.Tensor]) -> None:
        if self.fused:
            # fused optimizers skip the whole update (step count, momentum, decay) on found_inf
            self.guard.optimizer.found_inf = bad.float()
            self.guard.optimizer.grad_scale = None
            return
        if grads:
            torch._foreach_mul_(grads, bad.logical_not().to(grads[0].dtype))
            for g in grads:
                g.nan_to_num_(0.0, 0.0, 0.0)  # 0 * NaN is NaN: a masked gradient must be exactly 0

    def _read(self, step: int) -> int | None:
        if self.async_copy:
            if self.event is not None and self.event.query():
                value = int(self.pinned)
                if value >= 0:
                    return value
            self.pinned.copy_(self.first_bad, non_blocking=True)
            self.event = torch.cuda.Event()
            self.event.record()
        if (step + 1) % self.every == 0:
            self.reads += 1
            return int(self.first_bad)  # the one sync every N steps
        return None

    def _report(self, first: int, step: int, loss) -> bool:
        """The host learned that step ``first`` went bad: rebuild its figures from the device ring."""
        guard = self.guard
        m = guard.monitor
        rows = self.ring.tolist()
        start = max(0, first - self.history + 1)
        for s in range(start, first):
            r = rows[s % self.history]
            m.totals.append(r[-2])
            m.per_param.append((m.all_index, r[:-2]))
        failing = rows[first % self.history]
        m.last_per_param = (m.all_index, failing[:-2])
        kept = {s: (micro, lrs) for s, micro, lrs in self.recent}
        micro, lrs = kept.get(first, ([], m.current_lrs()))
        lag = {
            "first_bad_step": first,
            "detected_step": step,
            "late_by": step - first,
            "max_late": 1 if self.async_copy else self.every - 1,
            "read_every": self.every,
            "bad_steps": int(self.bad_steps),
            "exact_skip": self.fused,
            "batch_kept": first in kept,
        }
        loss_bad = not math.isfinite(failing[-1])
        stats = StepStats(failing[-1], failing[-2], lrs, loss is not None)
        guard._micro = micro
        trigger = TRIGGER_LOSS if loss_bad else TRIGGER_GRAD
        return guard._failure(first, trigger, stats, lag=lag)

    def summary(self) -> dict[str, Any]:
        return {"reads": self.reads, "bad_steps": int(self.bad_steps), "read_every": self.every}
