"""The always-on part of the guard: a few fused reductions and one host sync per step.

Per step we compute every parameter's gradient norm with one multi-tensor kernel
(``torch._foreach_norm``), stack them with the loss and read that one small vector
to the host: the only synchronisation of the step. The total norm is summed on the
host; the per-parameter norms go to a ring buffer of plain floats, so a healthy step
costs three small kernels and no device memory.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import torch
from nandoctor.torch.sharded import local


@dataclass(slots=True)
class StepStats:
    loss: float  # 0.0 when no loss was given
    total_norm: float
    lrs: list[float]
    has_loss: bool = True
    batch_maxima: list[float] | None = None  # largest |value| of each floating batch tensor


class StepMonitor:
    def __init__(self, named_params: list[tuple[str, torch.nn.Parameter]], optimizer, history: int = 64):
        self.names = [n for n, _ in named_params]
        self.params = [p for _, p in named_params]
        self.all_index = tuple(range(len(self.params)))
        self.optimizer = optimizer
        self.totals: deque[float] = deque(maxlen=history)
        self.per_param: deque[tuple[tuple[int, ...], list[float]]] = deque(maxlen=history)
        self.lrs: deque[list[float]] = deque(maxlen=history)
        self.steps: deque[int] = deque(maxlen=history)  # the step each lrs/totals entry belongs to
        self.last_per_param: tuple[tuple[int, ...], list[float]] | None = None
        # FSDP2: parameters and gradients are DTensors; the check reads each rank's own shard
        self.sharded = any(hasattr(p, "placements") for p in self.params)

    def grads(self) -> list[torch.Tensor | None]:
        """The gradients as the check reads them (local shards under FSDP2)."""
        if self.sharded:
            return [local(p.grad) if p.grad is not None else None for p in self.params]
        return [p.grad for p in self.params]

    def current_lrs(self) -> list[float]:
        return [float(g.get("lr", math.nan)) for g in self.optimizer.param_groups]

    def measure(
        self,
        loss: torch.Tensor | None,
        grad_divisor: torch.Tensor | None = None,
        batch_tensors: list[torch.Tensor] | None = None,
    ) -> StepStats:
        """Norms of this step's gradients, the loss and the batch maxima, with one device-to-host copy.

        The per-parameter norms (one fused kernel), the largest |value| of each batch
        tensor (another) and the loss are stacked and read together; the total norm is
        summed on the host from those few floats, which is cheaper than another kernel
        launch on the device.
        """
        grads = self.grads()
        if any(g is None for g in grads):
            index = tuple(i for i, g in enumerate(grads) if g is not None)
            grads = [grads[i] for i in index]
        else:
            index = self.all_index
        scalars = _norms(grads) if grads else []
        if grad_divisor is not None and scalars:
            scalars = torch._foreach_div(scalars, grad_divisor.to(scalars[0].device, torch.float32))
        maxima_count = 0
        if batch_tensors:
            device = scalars[0].device if scalars else batch_tensors[0].device
            maxima = _norms(batch_tensors, math.inf)
            maxima_count = len(maxima)
            scalars = [*scalars, *(m.to(device) for m in maxima)]
        if loss is not None:
            value = loss.detach()
            value = value.reshape(()) if value.numel() == 1 else value.sum()
            device = scalars[0].device if scalars else value.device
            scalars = [*scalars, value.to(device, torch.float32)]
        values = torch.stack(scalars).tolist() if scalars else []  # the one synchronisation
        loss_value = values.pop() if loss is not None else 0.0
        batch_maxima = None
        if maxima_count:
            batch_maxima = values[-maxima_count:]
            del values[-maxima_count:]
        self.last_per_param = (index, values) if grads else None
        try:
            total = math.sqrt(math.fsum(v * v for v in values))
        except OverflowError:
            total = math.inf
        if math.isinf(total) or math.isnan(total):
            total = self._recheck_overflow(grads, index, grad_divisor, total)
        return StepStats(loss_value, total, self.current_lrs(), loss is not None, batch_maxima)

    def _recheck_overflow(self, grads, index, grad_divisor, total: float) -> float:
        """An inf float32 norm of finite gradients is an overflow of the sum of squares, not a
        non-finite gradient: redo the norms in float64 (rare path) so the history stays true."""
        if not grads or not all(bool(torch.isfinite(g).all()) for g in grads):
            return total
        norms = torch.stack([torch.linalg.vector_norm(g, dtype=torch.float64).to(grads[0].device) for g in grads])
        if grad_divisor is not None:
            norms = norms / grad_divisor.to(norms.device, torch.float64)
        values = norms.tolist()
        self.last_per_param = (index, values)
        return math.sqrt(math.fsum(v * v for v in values))

    def record(self, stats: StepStats) -> None:
        """Keep a healthy step's figures in the ring buffers."""
        self.totals.append(stats.total_norm)
        self.lrs.append(stats.lrs)
        if self.last_per_param is not None:
            self.per_param.append(self.last_per_param)

    def record_step(self, step: int) -> None:
        self.steps.append(step)

    def named_norms(self, entry: tuple[tuple[int, ...], list[float]]) -> dict[str, float]:
        index, norms = entry
        return dict(zip((self.names[i] for i in index), norms, strict=True))

    def nonfinite_grads(self) -> list[str]:
        if self.last_per_param is None:
            return []
        return [n for n, v in self.named_norms(self.last_per_param).items() if not math.isfinite(v)]

    def nonfinite_params(self) -> list[str]:
        if not self.params:
            return []
        return [
            n for n, p in zip(self.names, self.params, strict=True) if not bool(torch.isfinite(local(p.detach())).all())
        ]


def _norms(tensors: list[torch.Tensor], order: float = 2) -> list[torch.Tensor]:
    """Per-tensor norms in float32: one fused kernel when all tensors share a device."""
    first = tensors[0].device
    if all(t.device == first for t in tensors):
        return list(torch._foreach_norm(tensors, order, dtype=torch.float32))
    return [torch.linalg.vector_norm(t, order, dtype=torch.float32).to(first) for t in tensors]
