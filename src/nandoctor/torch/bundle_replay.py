"""Replay a reproducer bundle's step: rebuild the model, load the bundle's state, run the step with hooks.

Apart from ``bundle`` (which the guard imports to write bundles) because replaying needs
the guard itself, for the closure and criterion handling the live loop used.
"""

from __future__ import annotations

from pathlib import Path

from nandoctor.core.types import Diagnosis
from nandoctor.torch.bundle import load_bundle
from nandoctor.torch.diagnosis import diagnose_facts
from nandoctor.torch.facts import TorchFacts


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
    run, partial = helper.replay_closure(batch)
    result = replay_step(model, run, batch, bundle.rng.get("torch") or None, None)
    facts = TorchFacts.from_dict(bundle.facts.to_dict())
    facts.replay = {k: result.get(k) for k in ("ran", "reproduced", "error")}
    facts.replay.update(partial=partial, source="replay_bundle")
    facts.forward = {**result["forward"], "module_producer": result.get("module")} if result.get("forward") else None
    facts.backward = result.get("backward")
    return diagnose_facts(facts, {"bundle": str(bundle.path), "replayed": True})
