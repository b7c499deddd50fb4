"""Signals become scores, scores become a ranking and confidences.

Per cause, the strongest signal of each rule counts once and contradictions subtract. A
symptom of a step too large (a growing loss) counts little when the chain shows what made the
step so (an lr that grew first, an unbounded loss construct). The confidence of the top cause
is a logistic function of its lead over the runner-up, fitted on the lab's tuning runs
(``bench/calibrate.py``); the other causes share the rest in proportion to their scores.
"""

from __future__ import annotations

import math
from collections import defaultdict

from nandoctor.core.types import Cause
from nandoctor.core.votes import HINT, Signal

UNKNOWN_PRIOR = 1.0  # what "none of the five" scores before any evidence: it wins when nothing else is shown
DECIDED = 2.0  # support a cause needs to be named ahead of "unknown" when nothing went non-finite
EXPLAINED = 0.3  # a symptom's weight when the chain shows its cause upstream
# How often each cause is behind a NaN, to order causes the evidence cannot tell apart
BASE_RATE = {
    Cause.BAD_INPUT: 0.30,
    Cause.GRADIENT_EXPLOSION: 0.25,
    Cause.LOSS_FUNCTION: 0.20,
    Cause.LR_POLICY: 0.15,
    Cause.POOLING: 0.10,
    Cause.UNKNOWN: 0.0,
}
# p(top cause right) = 1 / (1 + exp(-(SLOPE * lead + OFFSET))), lead = top score - runner-up score
SLOPE = 0.6
OFFSET = -1.2


def score(signals: list[Signal], explained: bool = False) -> dict[Cause, float]:
    """Per cause: the strongest signal of each kind, summed (contradictions subtract)."""
    best: dict[tuple[Cause, str, bool], float] = {}
    for s in signals:
        w = s.weight * EXPLAINED if explained and s.symptom and s.weight > 0 else s.weight
        key = (s.cause, s.key, w >= 0)
        old = best.get(key)
        if old is None or abs(w) > abs(old):
            best[key] = w
    totals: dict[Cause, float] = defaultdict(float)
    for (cause, _key, _pos), w in best.items():
        totals[cause] += w
    totals[Cause.UNKNOWN] += UNKNOWN_PRIOR
    return dict(totals)


def order(totals: dict[Cause, float], supported: set[Cause], failed: bool) -> list[Cause]:
    """Causes with positive scores, best first. In a run that failed, any cause a finding
    supports with at least a hint outranks 'unknown' (thin evidence still points somewhere);
    otherwise a cause needs DECIDED to. Ties go to the more common cause."""

    def named(c: Cause) -> bool:
        if c is Cause.UNKNOWN:
            return False
        return totals[c] >= (HINT if failed else DECIDED) and c in supported

    ranked = sorted(
        (c for c, w in totals.items() if w > 0),
        key=lambda c: (-(1 if named(c) else 0), -totals[c], -BASE_RATE.get(c, 0.0)),
    )
    return ranked


def confidences(ranked: list[Cause], totals: dict[Cause, float]) -> dict[Cause, float]:
    if not ranked:
        return {}
    top = ranked[0]
    rest = ranked[1:]
    lead = totals[top] - (totals[rest[0]] if rest else 0.0)
    mass = sum(max(totals[c], 0.0) for c in ranked) or 1.0
    # never below the top's share of the scores: a tie of three is a third each, not less
    p = max(1.0 / (1.0 + math.exp(-(SLOPE * lead + OFFSET))), max(totals[top], 0.0) / mass)
    out = {top: p}
    rest_mass = sum(max(totals[c], 0.0) for c in rest) or 1.0
    for c in rest:
        out[c] = min(p, (1.0 - p) * max(totals[c], 0.0) / rest_mass)
    return out
