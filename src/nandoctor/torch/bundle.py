"""Reproducer bundles: everything needed to look at the poisoned step again, offline.

A bundle is a directory::

    findings.json   the TorchFacts and the Diagnosis (plain JSON; no torch needed)
    model.pt        state dict as it was before the step (buffers from before its forward)
    optimizer.pt    optimizer state dict (the step was not taken)
    scheduler.pt    scheduler state dict, when there is one and it can be saved
    batch.pt        the batch (tensors on the CPU)
    rng.pt          torch CPU/CUDA RNG states from before the forward, Python and NumPy states

Tensors are read back with ``torch.load(weights_only=True)``: a bundle is data, and
loading one never runs code from it. ``diagnose_bundle`` reads only findings.json.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nandoctor.core.types import Diagnosis, InputError
from nandoctor.torch.diagnosis import diagnose_facts
from nandoctor.torch.facts import TorchFacts

FORMAT = "nandoctor-torch-bundle"
FINDINGS = "findings.json"


@dataclass
class Bundle:
    path: Path
    facts: TorchFacts
    diagnosis: dict[str, Any]
    meta: dict[str, Any]
    state_dict: dict[str, Any]
    optimizer_state: dict[str, Any] | None
    scheduler_state: dict[str, Any] | None
    batch: Any
    rng: dict[str, Any]


def is_bundle(path: str | Path) -> bool:
    return (Path(path) / FINDINGS).is_file()


def _read_findings(path: Path) -> dict[str, Any]:
    file = path / FINDINGS
    if not file.is_file():
        raise InputError(f"not a nandoctor PyTorch bundle (no {FINDINGS})", str(path))
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read bundle findings: {exc}", str(file)) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("facts"), dict):
        raise InputError(f"{FINDINGS} is not a {FORMAT} file", str(file))
    return data


def diagnose_bundle(path: str | Path) -> Diagnosis:
    """The diagnosis of a bundle, recomputed from its findings.json with the current rules (no torch)."""
    path = Path(path)
    data = _read_findings(path)
    try:
        facts = TorchFacts.from_dict(data["facts"])
    except TypeError as exc:
        raise InputError(f"malformed facts in {FINDINGS}: {exc}", str(path / FINDINGS)) from None
    return diagnose_facts(facts, {"bundle": str(path), "torch_version": data.get("torch_version")})


def write_bundle(root: str | Path, guard, batch: Any, facts: TorchFacts, diagnosis: Diagnosis) -> Path:
    """Write the bundle of a guard's first failure below ``root``; returns its directory."""
    import numpy as np

    import torch
    from nandoctor.torch.batch import detach_copy

    root = Path(root)
    path = root / f"nan-step{facts.step}"
    n = 1
    while path.exists():
        n += 1
        path = root / f"nan-step{facts.step}-{n}"
    path.mkdir(parents=True)
    state = {k: v.detach().cpu().clone() for k, v in guard.model.state_dict().items()}
    for name, copy in guard.buffers.as_dict().items():
        if name in state:
            state[name] = copy.detach().cpu().clone()
    torch.save(state, path / "model.pt")
    torch.save(guard.optimizer.state_dict(), path / "optimizer.pt")
    if guard.scheduler is not None and hasattr(guard.scheduler, "state_dict"):
        try:
            torch.save(guard.scheduler.state_dict(), path / "scheduler.pt")
        except Exception:  # schedulers holding lambdas or objects that do not pickle
            facts.notes.append("scheduler state not saved")
    torch.save(detach_copy(batch), path / "batch.pt")
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    rng = {
        "torch": dict(guard.rng or {}),
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(np.asarray(keys).astype(np.int64)), int(pos), int(has_gauss), float(cached)],
    }
    torch.save(rng, path / "rng.pt")
    meta = {
        "format": FORMAT,
        "version": 1,
        "torch_version": torch.__version__,
        "model": type(guard.model).__name__,
        "optimizer": type(guard.optimizer).__name__,
        "facts": facts.to_dict(),
        "diagnosis": diagnosis.to_dict(),
    }
    (path / FINDINGS).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return path


def load_bundle(path: str | Path) -> Bundle:
    """Read a bundle back (tensors with weights_only=True), for inspection or replay."""
    import torch

    path = Path(path)
    data = _read_findings(path)

    def load(name: str, required: bool = True):
        file = path / name
        if not file.is_file():
            if required:
                raise InputError(f"bundle lacks {name}", str(path))
            return None
        try:
            return torch.load(file, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise InputError(f"cannot load {name}: {exc}", str(file)) from None

    return Bundle(
        path=path,
        facts=TorchFacts.from_dict(data["facts"]),
        diagnosis=data.get("diagnosis", {}),
        meta={k: v for k, v in data.items() if k not in ("facts", "diagnosis")},
        state_dict=load("model.pt"),
        optimizer_state=load("optimizer.pt", required=False),
        scheduler_state=load("scheduler.pt", required=False),
        batch=load("batch.pt"),
        rng=load("rng.pt", required=False) or {},
    )


def replay_bundle(path: str | Path, model_factory, closure=None, criterion=None, device: str = "cpu") -> Diagnosis:
    """Rebuild the model with ``model_factory()``, load the bundle's state and replay its step.

    ``closure(model, batch) -> loss`` (or ``criterion``) recomputes the loss as the loop
    did; the result is a fresh Diagnosis whose facts come from this replay, with
    the bundle's gradient and lr history.
    """
    import torch
    from nandoctor.torch.batch import to_device
    from nandoctor.torch.guard import NaNGuard
    from nandoctor.torch.replay import replay_step

    bundle = load_bundle(path)
    model = model_factory().to(device)
    model.load_state_dict(bundle.state_dict)
    model.train()
    batch = to_device(bundle.batch, torch.device(device))
    helper = NaNGuard(model, torch.optim.SGD(model.parameters(), lr=0.0), closure=closure, criterion=criterion)
    helper.close()
    run, partial = helper._closure(batch)
    result = replay_step(model, run, batch, bundle.rng.get("torch") or None, None)
    facts = TorchFacts.from_dict(bundle.facts.to_dict())
    facts.replay = {k: result.get(k) for k in ("ran", "reproduced", "error")}
    facts.replay.update(partial=partial, source="replay_bundle")
    facts.forward = {**result["forward"], "module_producer": result.get("module")} if result.get("forward") else None
    facts.backward = result.get("backward")
    return diagnose_facts(facts, {"bundle": str(bundle.path), "replayed": True})
