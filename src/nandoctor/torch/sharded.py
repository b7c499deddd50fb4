"""The guard on a model sharded with FSDP2 (``torch.distributed.fsdp.fully_shard``).

After ``fully_shard`` a module's parameters and gradients are DTensors: each rank
holds one shard, and the module's forward all-gathers the full weights (a collective).
Two consequences for the guard:

- the always-on check reads each rank's local shards (``to_local()``, no collective);
  a NaN made on one rank reaches, after the reduce-scatter, only the ranks holding
  those shards, so the ranks agree through the guard's one small all-reduce per step;
- a replay through the sharded module on one rank alone would start all-gathers the
  other ranks never join. So on the first failure, with every rank in the failure
  together, the full weights are gathered once (the same collectives on every rank,
  in the same order) into a plain eager replica of the module tree, and each rank
  replays its own batch on that replica — forward and backward, no collective.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch

HOOK_DICTS = (
    "_forward_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called", "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs", "_backward_hooks", "_backward_pre_hooks", "_state_dict_hooks",
    "_state_dict_pre_hooks", "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks",
)  # fmt: skip


def local(t: torch.Tensor) -> torch.Tensor:
    """A DTensor's local shard (no collective); any other tensor as it is."""
    to_local = getattr(t, "to_local", None)
    return to_local() if to_local is not None and hasattr(t, "placements") else t


def is_sharded(model: torch.nn.Module) -> bool:
    """Whether ``fully_shard`` was applied somewhere in the module tree."""
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # pragma: no cover - builds without distributed
        return False
    return any(isinstance(m, FSDPModule) for m in model.modules())


def _eager_class(module: torch.nn.Module) -> type:
    """The class ``fully_shard`` replaced (it makes ``FSDP<Class>(FSDPModule, Class)``)."""
    from torch.distributed.fsdp import FSDPModule

    cls = type(module)
    if not issubclass(cls, FSDPModule):
        return cls
    return next(c for c in cls.__mro__[1:] if issubclass(c, torch.nn.Module) and not issubclass(c, FSDPModule))


def eager_replica(model: torch.nn.Module) -> torch.nn.Module:
    """A plain copy of a sharded module tree with full weights: a collective on every rank.

    Every module is copied shallowly into its eager class without hooks; parameters
    are gathered (``full_tensor()``, in ``named_parameters`` order on every rank) into
    new leaf parameters; buffers, which FSDP2 does not shard, are shared with the
    original so that the replay's buffer snapshot restores both.
    """
    full: dict[int, torch.nn.Parameter] = {}  # by the original's identity, so tied weights stay tied
    for _, p in model.named_parameters():
        gathered = p.full_tensor() if hasattr(p, "full_tensor") else p
        full[id(p)] = torch.nn.Parameter(gathered.detach().clone(), requires_grad=p.requires_grad)
    return _copy(model, full)


def _copy(module: torch.nn.Module, full: dict[int, torch.nn.Parameter]) -> torch.nn.Module:
    replica = object.__new__(_eager_class(module))
    state: dict[str, Any] = dict(module.__dict__)
    for key in HOOK_DICTS:
        if key in state:
            state[key] = OrderedDict()
    state["_parameters"] = {k: (full[id(v)] if v is not None else None) for k, v in module._parameters.items()}
    state["_buffers"] = dict(module._buffers)
    state["_modules"] = {k: (_copy(m, full) if m is not None else None) for k, m in module._modules.items()}
    replica.__dict__.update(state)
    return replica
