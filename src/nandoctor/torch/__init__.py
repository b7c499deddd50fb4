"""nandoctor for PyTorch: a cheap always-on NaN guard for live training loops.

    from nandoctor.torch import NaNGuard

Importing this package does not import torch; ``NaNGuard`` does (install the
``nandoctor[torch]`` extra). ``diagnose_bundle`` needs no torch at all, so
``nandoctor diagnose BUNDLE`` works on any machine.
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
    "replay_bundle": "nandoctor.torch.bundle",
    "diagnose_bundle": "nandoctor.torch.bundle",
    "is_bundle": "nandoctor.torch.bundle",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'nandoctor.torch' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
