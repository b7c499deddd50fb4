"""nandoctor for PyTorch: a cheap always-on NaN guard for live training loops.

    from nandoctor.torch import NaNGuard

    guard = NaNGuard(model, optimizer, scheduler, criterion=loss_fn,   # or closure=lambda m, b: loss
                     on_nan="stop",                                    # or "skip" / "raise"
                     bundle_dir="nan-bundles")                         # optional reproducer bundle
    for batch in guard.track(loader):         # optional: data set indices, same batches and order
        optimizer.zero_grad()
        loss = loss_fn(model(batch[0]), batch[1])
        loss.backward()
        if guard.check(loss, batch):          # before optimizer.step()
            optimizer.step()
        scheduler.step()
        if guard.should_stop:                 # set by on_nan="stop"; "raise" raises NaNDetected
            break
    print(guard.diagnosis.to_dict() if guard.diagnosis else "healthy")

docs/torch.md has the wiring for AMP, accumulation, Lightning, the HF Trainer, DDP and FSDP.

Each step costs a few fused reductions and one host sync (none with ``sync_every``). On the first
NaN/inf (loss, gradient, lr, or a GradScaler that keeps collapsing) the guard replays the
step with hooks, names the producer, ranks the five causes with the NAN6xx rules
(``nandoctor rules NAN6``) and skips, stops or raises ``NaNDetected``.

``load_bundle(path)``, ``replay_bundle(path, model_factory, closure=None, criterion=None)``
and ``diagnose_bundle(path)`` work on reproducer bundles; ``diagnose_bundle`` needs no torch,
so ``nandoctor diagnose BUNDLE`` works anywhere. Callbacks: ``nandoctor.torch.lightning``
and ``nandoctor.torch.huggingface`` (import only when those packages are installed).

Importing this package does not import torch; ``NaNGuard`` does (install the
``nandoctor[torch]`` extra).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "NaNGuard": "nandoctor.torch.guard",
    "NaNDetected": "nandoctor.torch.guard",
    "TorchFacts": "nandoctor.torch.facts",
    "diagnose_facts": "nandoctor.torch.diagnosis",
    "render_text": "nandoctor.torch.diagnosis",
    "load_bundle": "nandoctor.torch.bundle",
    "replay_bundle": "nandoctor.torch.bundle_replay",
    "diagnose_bundle": "nandoctor.torch.bundle",
    "is_bundle": "nandoctor.torch.bundle",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'nandoctor.torch' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
