"""The wrappers around an eager model: DistributedDataParallel, DataParallel, torch.compile.

The guard hooks the eager module inside them, and its replay must not run through them
(a DDP wrapper's forward would start collectives that the other ranks never join).
"""

from __future__ import annotations

import torch

WRAPPERS = {"OptimizedModule": "_orig_mod", "DistributedDataParallel": "module", "DataParallel": "module"}


def wrappers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The DistributedDataParallel / DataParallel / torch.compile wrappers around the eager model."""
    out = []
    while type(model).__name__ in WRAPPERS:
        inner = getattr(model, WRAPPERS[type(model).__name__], None)
        if not isinstance(inner, torch.nn.Module):
            break
        out.append(model)
        model = inner
    return out


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The eager module inside DistributedDataParallel / torch.compile wrappers."""
    for wrapper in wrappers(model):
        model = getattr(wrapper, WRAPPERS[type(wrapper).__name__])
    return model
