"""Reproducer bundles: everything needed to look at the poisoned step again, offline.

A bundle is a directory::

    manifest.json         format, version, torch version, model/optimizer class, file list
    findings.json         the TorchFacts and the Diagnosis (plain JSON; no torch needed)
    state/model.pt        state dict as it was before the step (buffers from before its forward)
    state/optimizer.pt    optimizer state dict (the step was not taken)
    state/scheduler.pt    scheduler state dict, when there is one and it can be saved
    state/batch.pt        the batch (tensors on the CPU)
    state/rng.pt          torch CPU/CUDA RNG states from before the forward, Python and NumPy states

Tensors are read back with ``torch.load(weights_only=True)``: a bundle is data, and
loading one never runs code from it. ``diagnose_bundle`` reads only the JSON files.
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
MANIFEST = "manifest.json"
FINDINGS = "findings.json"
STATE = "state"


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
    """A directory with a manifest.json and a state/ folder (what `nandoctor diagnose` looks for)."""
    path = Path(path)
    return (path / MANIFEST).is_file() and (path / STATE).is_dir()


MAX_JSON_BYTES = 64 << 20  # findings of one failure: kilobytes; more is no bundle nandoctor wrote


def _read_json(file: Path) -> Any:
    from nandoctor.core.safeio import read_input

    try:
        return json.loads(read_input(file, f"a bundle's {file.name}", MAX_JSON_BYTES).decode("utf-8"))
    except RecursionError:
        raise InputError(f"cannot read {file.name}: nested too deeply", str(file)) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read {file.name}: {exc}", str(file)) from None


def _read_findings(path: Path) -> dict[str, Any]:
    """manifest.json and findings.json of a bundle, merged, after checking the format."""
    if not (path / MANIFEST).is_file() or not (path / FINDINGS).is_file():
        raise InputError(f"not a nandoctor PyTorch bundle (needs {MANIFEST} and {FINDINGS})", str(path))
    manifest = _read_json(path / MANIFEST)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"{MANIFEST} is not a {FORMAT} manifest", str(path / MANIFEST))
    findings = _read_json(path / FINDINGS)
    if not isinstance(findings, dict) or not isinstance(findings.get("facts"), dict):
        raise InputError(f"{FINDINGS} holds no facts", str(path / FINDINGS))
    return {**manifest, **findings}


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
    # one bundle per rank under torch.distributed: the ranks write side by side into one folder
    rank = f"-rank{facts.distributed['rank']}" if facts.distributed else ""
    path = root / f"nan-step{facts.step}{rank}"
    n = 1
    while path.exists():
        n += 1
        path = root / f"nan-step{facts.step}{rank}-{n}"
    state_dir = path / STATE
    state_dir.mkdir(parents=True)
    from nandoctor.torch.sharded import local

    # FSDP2: the full weights gathered for the replay, else this rank's shards
    module = guard.replica if guard.replica is not None else guard.module
    state = {k: local(v).detach().cpu().clone() for k, v in module.state_dict().items()}
    for name, copy in guard.buffers.as_dict().items():
        if name in state:
            state[name] = copy.detach().cpu().clone()
    torch.save(state, state_dir / "model.pt")
    torch.save(_local_tensors(guard.optimizer.state_dict()), state_dir / "optimizer.pt")
    if guard.scheduler is not None and hasattr(guard.scheduler, "state_dict"):
        try:
            torch.save(guard.scheduler.state_dict(), state_dir / "scheduler.pt")
        except Exception:  # schedulers holding lambdas or objects that do not pickle
            facts.notes.append("scheduler state not saved")
    torch.save(detach_copy(batch), state_dir / "batch.pt")
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    rng = {
        "torch": dict(guard.rng or {}),
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(np.asarray(keys).astype(np.int64)), int(pos), int(has_gauss), float(cached)],
    }
    torch.save(rng, state_dir / "rng.pt")
    manifest = {
        "format": FORMAT,
        "version": 1,
        "torch_version": torch.__version__,
        "model": type(guard.model).__name__,
        "optimizer": type(guard.optimizer).__name__,
        "step": facts.step,
        "files": [*sorted(f"{STATE}/{p.name}" for p in state_dir.iterdir()), FINDINGS],
    }
    (path / FINDINGS).write_text(
        json.dumps({"facts": facts.to_dict(), "diagnosis": diagnosis.to_dict()}, indent=2), encoding="utf-8"
    )
    (path / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return path


def _local_tensors(obj: Any) -> Any:
    """An optimizer state dict with each DTensor (FSDP2) replaced by this rank's shard, which loads
    with weights_only=True."""
    if hasattr(obj, "placements") and hasattr(obj, "to_local"):
        return obj.to_local()
    if isinstance(obj, dict):
        return {k: _local_tensors(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_local_tensors(v) for v in obj]
    return obj


def refusal(exc: Exception) -> str:
    """torch.load's error in a sentence, without its advice to load the file with weights_only=False.

    That advice means unpickling, which runs whatever code the file holds: a bundle is data,
    so a refusal stays a refusal.
    """
    import pickle

    if isinstance(exc, pickle.UnpicklingError) or "weights_only" in str(exc):
        return (
            "it holds objects beyond tensors and plain containers, which only unpickling (running code "
            "from the file) could load; nandoctor never does that. Re-save the bundle with the current nandoctor"
        )
    lines = [ln for ln in str(exc).splitlines() if ln.strip() and "weights_only" not in ln]
    return lines[0] if lines else type(exc).__name__


def load_bundle(path: str | Path) -> Bundle:
    """Read a bundle back (tensors with weights_only=True), for inspection or replay."""
    import torch

    path = Path(path)
    data = _read_findings(path)

    def load(name: str, required: bool = True):
        file = path / STATE / name
        if not file.is_file():
            if required:
                raise InputError(f"bundle lacks {name}", str(path))
            return None
        try:
            return torch.load(file, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise InputError(f"cannot load {name}: {refusal(exc)}", str(file)) from None

    try:
        facts = TorchFacts.from_dict(data["facts"])
    except TypeError as exc:
        raise InputError(f"malformed facts in {FINDINGS}: {exc}", str(path / FINDINGS)) from None
    return Bundle(
        path=path,
        facts=facts,
        diagnosis=data.get("diagnosis", {}),
        meta={k: v for k, v in data.items() if k not in ("facts", "diagnosis")},
        state_dict=load("model.pt"),
        optimizer_state=load("optimizer.pt", required=False),
        scheduler_state=load("scheduler.pt", required=False),
        batch=load("batch.pt"),
        rng=load("rng.pt", required=False) or {},
    )
