"""Shared judgement for the NAN6xx rules: what counts as sane, exploding or a pooling op."""

from __future__ import annotations

from typing import Any

from nandoctor.core.types import Evidence

# Activations above this are the aftermath of an explosion, not a healthy input to an op.
SANE_MAGNITUDE = 1e6
# Two orders of magnitude of growth of the total gradient norm over the ring buffer.
EXPLOSION_GROWTH = 100.0
# A schedule that multiplied the lr by this much within the ring buffer is suspect.
LR_GROWTH = 10.0


def confidence(finding) -> float:
    return float(finding.data.get("confidence", 0.5))


def exploding(facts) -> bool:
    return facts.growth is not None and facts.growth >= EXPLOSION_GROWTH


def sane_inputs(producer: dict[str, Any] | None) -> bool:
    return producer is not None and float(producer.get("input_absmax", 0.0)) < SANE_MAGNITUDE


def is_pooling(producer: dict[str, Any] | None) -> bool:
    if not producer:
        return False
    names = [producer.get("op") or "", producer.get("module_type") or ""]
    names += [t for _, t in producer.get("stack", [])]
    module = producer.get("module_producer") or {}
    names.append(module.get("module_type") or "")
    return any("pool" in n.lower() for n in names)


def pooling_module(producer: dict[str, Any]) -> tuple[str | None, str | None]:
    """Name and type of the innermost pooling module involved in a producer record."""
    module = producer.get("module_producer") or {}
    if "pool" in (module.get("module_type") or "").lower():
        return module.get("module"), module.get("module_type")
    for name, kind in reversed(producer.get("stack", [])):
        if "pool" in kind.lower():
            return name, kind
    return producer.get("module"), producer.get("module_type")


def producer_evidence(producer: dict[str, Any], label: str = "replay") -> list[Evidence]:
    where = {"model": "inside the model", "loss": "in the loss computation", "input": "before the model ran"}
    out = [
        Evidence(
            f"{label}: first non-finite value made by {producer.get('op', '?')} "
            f"(module {producer.get('module') or '-'}, {where.get(producer.get('where', ''), '?')}) "
            f"from {'finite' if producer.get('inputs_finite', True) else 'NaN-free (some ±inf written on purpose)'} "
            f"inputs (max finite |input| {float(producer.get('input_absmax', 0.0)):.3g}); "
            f"output has {producer.get('output_nan', 0)} NaN and {producer.get('output_inf', 0)} inf"
        )
    ]
    if producer.get("zero_divisor"):
        out.append(Evidence(f"{label}: the divisor of {producer.get('op')} contains zeros (x / 0)"))
    if producer.get("zero_argument"):
        out.append(Evidence(f"{label}: the argument of {producer.get('op')} contains zeros (log(0) = -inf)"))
    module = producer.get("module_producer")
    if module:
        out.append(
            Evidence(
                f"{label}: first module with finite inputs and non-finite output: "
                f"{module.get('module')} ({module.get('module_type')}), input shape {module.get('input_shape')}"
            )
        )
    return out
