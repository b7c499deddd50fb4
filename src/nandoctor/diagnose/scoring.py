"""Signals become scores, scores become a ranking and confidences.

Per cause, the strongest signal of each rule counts once and contradictions subtract. A
symptom of a step too large (a growing loss) counts little when the chain shows what made the
step so (an lr that grew first, an unbounded loss construct). The confidence of the top cause
is a logistic function of its lead over the runner-up, how much of the log was read and whether
the configs were, fitted on the lab's tuning runs (``bench/calibrate.py``); the other causes
share the rest in proportion to their scores.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from nandoctor.core.types import Cause
from nandoctor.core.votes import HINT, PREDICTED, Signal

UNKNOWN_PRIOR = 1.0  # what "none of the five" scores before any evidence: it wins when nothing else is shown
UNKNOWN_CAP = 0.5  # the most "unknown" on top is given
HINTS_ONLY_CAP = 0.75  # the most a cause resting on hints alone is given (never a sure answer)
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
# p(top cause right) = 1 / (1 + exp(-(INTERCEPT + sum(COEF[k] * feature k)))), features in ``Strength``.
# Fitted by bench/calibrate.py: penalised logistic regression on the answers of the lab's tuning
# runs in four modes (folder, log, excerpt, a two-line paste), the penalty picked by
# leave-one-mechanism-out cross-validation; no held-out run took part.
INTERCEPT = -0.568
COEF = {"lead": 1.245, "displays": 0.010, "configs": 2.447}


@dataclass(frozen=True, slots=True)
class Strength:
    """How much stands behind the top cause: what its confidence is a function of."""

    lead: float  # its score minus the runner-up's ("unknown" counts, at its prior)
    displays: int  # training displays the log shows (0 without a log): two pasted lines are thin
    configs: bool  # the solver and net were read
    decisive: bool = True  # some vote for it is more than a hint (a config fact, a record, a chain link)

    def features(self) -> dict[str, float]:
        # sqrt: the first points of lead separate a tie from a decision more than the tenth does
        return {
            "lead": math.sqrt(max(self.lead, 0.0)),
            "displays": math.log1p(self.displays),
            "configs": 1.0 if self.configs else 0.0,
        }


def strength(
    top: Cause, ranked: list[Cause], totals: dict[Cause, float], displays: int, configs: bool, signals: list[Signal]
) -> Strength:
    runner = totals[ranked[1]] if len(ranked) > 1 else (UNKNOWN_PRIOR if top is not Cause.UNKNOWN else 0.0)
    decisive = any(s.weight >= PREDICTED for s in signals)
    return Strength(lead=totals[top] - runner, displays=displays, configs=configs, decisive=decisive)


def calibrated(power: Strength) -> float:
    z = INTERCEPT + sum(COEF[k] * v for k, v in power.features().items())
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


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


def confidences(ranked: list[Cause], totals: dict[Cause, float], power: Strength | None = None) -> dict[Cause, float]:
    """The top cause gets its calibrated probability of being right; the others share the rest
    in proportion to their scores. "unknown" on top is not calibrated (no lab run is unknown):
    it gets its share of the scores, at most UNKNOWN_CAP."""
    if not ranked:
        return {}
    top = ranked[0]
    rest = ranked[1:]
    mass = sum(max(totals[c], 0.0) for c in ranked) or 1.0
    # "none of the five" is no answer to be sure of: alone on the board it is still a coin toss
    uncalibrated = top is Cause.UNKNOWN or power is None
    p = min(UNKNOWN_CAP, max(totals[top], 0.0) / mass) if uncalibrated else calibrated(power)
    if power is not None and not power.decisive:
        # hints alone only break a tie between causes the evidence is consistent with; that the lab's
        # mechanisms make such tie-breaks lucky says nothing of a mechanism it lacks, so (by design,
        # not fitted) they are never given as sure
        p = min(p, HINTS_ONLY_CAP)
    # never below an even split: the top of three candidates is at least a third (a lone
    # candidate keeps its own figure: the rest is "something nandoctor did not see")
    if rest:
        p = max(p, 1.0 / len(ranked))
    out = {top: p}
    rest_mass = sum(max(totals[c], 0.0) for c in rest) or 1.0
    for c in rest:
        out[c] = min(p, (1.0 - p) * max(totals[c], 0.0) / rest_mass)
    return out
