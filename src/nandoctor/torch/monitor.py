"""The always-on part of the guard: a few fused reductions and one host sync per step.

Per step we compute every parameter's gradient norm with one multi-tensor kernel
(``torch._foreach_norm``), their total with one more, and read the loss and the total
to the host together. Per-parameter norms stay on the device in a ring buffer and are
only read when something went wrong, so a healthy step costs a handful of kernels.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import torch


@dataclass(slots=True)
class StepStats:
    loss: float  # NaN when no loss was given and grads are non-finite
    total_norm: float
    lrs: list[float]


class StepMonitor:
    def __init__(self, named_params: list[tuple[str, torch.nn.Parameter]], optimizer, history: int = 64):
        self.names = [n for n, _ in named_params]
        self.params = [p for _, p in named_params]
        self.optimizer = optimizer
        self.totals: deque[float] = deque(maxlen=history)
        self.per_param: deque[tuple[tuple[int, ...], torch.Tensor]] = deque(maxlen=history)
        self.lrs: deque[list[float]] = deque(maxlen=history)
        self.last_per_param: tuple[tuple[int, ...], torch.Tensor] | None = None

    def current_lrs(self) -> list[float]:
        return [float(g.get("lr", math.nan)) for g in self.optimizer.param_groups]

    def measure(self, loss: torch.Tensor | None, grad_divisor: torch.Tensor | None = None) -> StepStats:
        """Norms of this step's gradients and the loss, with one device-to-host copy."""
        index = tuple(i for i, p in enumerate(self.params) if p.grad is not None)
        grads = [self.params[i].grad for i in index]
        scalars = []
        if loss is not None:
            scalars.append(loss.detach().reshape(-1)[0].float())
        if grads:
            norms = _norms(grads)
            if grad_divisor is not None:
                norms = norms / grad_divisor.to(norms.device)
            self.last_per_param = (index, norms)
            scalars.append(torch.linalg.vector_norm(norms).to(scalars[0].device if scalars else norms.device))
        else:
            self.last_per_param = None
        values = torch.stack(scalars).tolist() if scalars else []  # the one synchronisation
        loss_value = values.pop(0) if loss is not None else 0.0
        total = values[0] if values else 0.0
        if math.isinf(total):
            total = self._recheck_overflow(grads, index, grad_divisor, total)
        return StepStats(loss_value, total, self.current_lrs())

    def _recheck_overflow(self, grads, index, grad_divisor, total: float) -> float:
        """An inf float32 norm of finite gradients is an overflow of the sum of squares, not a
        non-finite gradient: redo the norms in float64 (rare path) so the history stays true."""
        if not all(bool(torch.isfinite(g).all()) for g in grads):
            return total
        norms = torch.stack([torch.linalg.vector_norm(g, dtype=torch.float64).to(grads[0].device) for g in grads])
        if grad_divisor is not None:
            norms = norms / grad_divisor.to(norms.device, torch.float64)
        self.last_per_param = (index, norms)
        return float(torch.linalg.vector_norm(norms))

    def record(self, stats: StepStats) -> None:
        """Keep a healthy step's figures in the ring buffers."""
        self.totals.append(stats.total_norm)
        self.lrs.append(stats.lrs)
        if self.last_per_param is not None:
            self.per_param.append(self.last_per_param)

    def named_norms(self, entry: tuple[tuple[int, ...], torch.Tensor]) -> dict[str, float]:
        index, norms = entry
        return dict(zip((self.names[i] for i in index), norms.tolist(), strict=True))

    def nonfinite_grads(self) -> list[str]:
        if self.last_per_param is None:
            return []
        return [n for n, v in self.named_norms(self.last_per_param).items() if not math.isfinite(v)]

    def nonfinite_params(self) -> list[str]:
        if not self.params:
            return []
        norms = _norms([p.detach() for p in self.params]).tolist()
        return [n for n, v in zip(self.names, norms, strict=True) if not math.isfinite(v)]


def _norms(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Per-tensor 2-norms in float32, one fused kernel per device."""
    devices = {t.device for t in tensors}
    if len(devices) == 1:
        return torch.stack(torch._foreach_norm(tensors, 2, dtype=torch.float32))
    first = tensors[0].device
    return torch.stack([torch.linalg.vector_norm(t, dtype=torch.float32).to(first) for t in tensors])
