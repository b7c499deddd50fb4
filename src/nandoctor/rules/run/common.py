"""Shared judgement for the NAN7xx rules: growth, the lr's share in it, evidence lines."""

from __future__ import annotations

import math

from nandoctor.core.types import Evidence
from nandoctor.runs.record import Point
from nandoctor.runs.timeline import RunTimeline, ok

LR_GROWTH = 10.0  # the lr grew this much before the failure: the schedule is suspect
LR_PRECEDES = 5.0  # the lr had grown this much when the loss began to grow: the lr drove it
LOSS_GROWTH = 10.0
GRAD_GROWTH = 100.0
STRONG = 5.0
HINT = 1.0


def fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def point_evidence(p: Point, label: str = "") -> Evidence:
    parts = [f"step {p.step}"]
    for name in ("loss", "grad_norm", "lr", "loss_scale"):
        v = getattr(p, name)
        if v is not None:
            parts.append(f"{name} {fmt(v)}")
    text = (label + ": " if label else "") + ", ".join(parts)
    return Evidence(text, p.where, "log")


def divergence_start(tl: RunTimeline) -> Point | None:
    """The first point before the onset whose loss is 3x the baseline: where the growth began."""
    base = tl.baseline_loss()
    if base is None or base <= 0:
        return None
    return next((p for p in tl.before if ok(p.loss) and p.loss >= 3 * base), None)


def lr_driven(tl: RunTimeline) -> str | None:
    """Why the lr explains a growing loss (it had grown, or turned negative, first), or None."""
    start = divergence_start(tl) or tl.onset
    if start is None:
        return None
    if tl.first_negative_lr is not None and tl.first_negative_lr.step <= start.step:
        return f"the lr was already negative at step {tl.first_negative_lr.step}"
    lrs = [p.lr for p in tl.lrs() if p.step <= start.step and ok(p.lr) and p.lr > 0]
    if len(lrs) >= 2 and lrs[-1] / min(lrs) >= LR_PRECEDES and lrs[-1] >= max(lrs) * 0.999:
        return f"the lr had grown {lrs[-1] / min(lrs):.3g}x by step {start.step}, where the loss began to grow"
    configured = tl.run.configured_lr()
    if configured and lrs and lrs[-1] >= 2 * configured:
        return f"the lr was {lrs[-1] / configured:.3g}x the configured {configured:g} by step {start.step}"
    return None


def growth_weight(growth: float, floor: float) -> float:
    return 2.0 + min(3.0, math.log10(max(growth / floor, 1.0)) + 0.5)
