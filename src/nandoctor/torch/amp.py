"""What the guard needs from a GradScaler: its scale, whether gradients are still scaled, and a skip.

``scaler.unscale_(optimizer)`` (where the usual AMP recipe clips gradients) records
per device whether it saw inf/NaN, and ``scaler.step`` later trusts that record
instead of looking at the gradients again. So a guard that poisons gradients after
``unscale_`` must also write "found inf" into that record, or the scaler steps with
the poisoned gradients. Before ``unscale_`` NaN gradients are enough: ``unscale_``
will find them.
"""

from __future__ import annotations

from typing import Any

import torch


def enabled(scaler: Any) -> bool:
    return scaler is not None and bool(getattr(scaler, "is_enabled", lambda: False)())


def scale(scaler: Any) -> torch.Tensor | None:
    """The scaler's current scale as a tensor (no host sync), or None without an enabled scaler."""
    if not enabled(scaler):
        return None
    value = getattr(scaler, "_scale", None)
    return value if isinstance(value, torch.Tensor) else torch.tensor(scaler.get_scale())


def _state(scaler: Any, optimizer: Any) -> dict[str, Any] | None:
    states = getattr(scaler, "_per_optimizer_states", {})
    # wrappers (accelerate's AcceleratedOptimizer) register the inner optimizer with the scaler
    for opt in (optimizer, getattr(optimizer, "optimizer", None)):
        if opt is not None and id(opt) in states:
            return states[id(opt)]
    return None


def stage(scaler: Any, optimizer: Any) -> str:
    """ "READY" (gradients scaled), "UNSCALED" (after ``unscale_``) or "STEPPED"."""
    state = _state(scaler, optimizer)
    value = state.get("stage") if state else None
    return getattr(value, "name", "READY") if value is not None else "READY"


def grads_scaled(scaler: Any, optimizer: Any) -> bool:
    return stage(scaler, optimizer) == "READY"


def skip_step(scaler: Any, optimizer: Any, params: list[torch.nn.Parameter]) -> None:
    """Make the coming ``scaler.step(optimizer)`` skip, whether or not ``unscale_`` already ran.

    Gradients become NaN (created where a failed forward left them None, so that
    ``unscale_`` has something to inspect); after ``unscale_`` the scaler's per-device
    found-inf record is set too, since ``step`` reads only that record.
    """
    for p in params:
        if p.grad is None:
            p.grad = torch.full_like(p, float("nan"))
        else:
            p.grad.fill_(float("nan"))
    state = _state(scaler, optimizer)
    if state and stage(scaler, optimizer) == "UNSCALED":
        for found in state.get("found_inf_per_device", {}).values():
            found.fill_(1.0)
