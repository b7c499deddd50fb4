"""Turn findings into weighted votes for causes, checked against the timeline.

A ``Signal`` is one reason to believe (positive weight) or doubt (negative weight) a
cause, tied to the finding that shows it. The weights encode the seed's discriminating
signals: the lr itself going bad outweighs a growing loss; a bad record read in the
window before the first NaN outweighs a generic "sudden NaN"; debug_info naming the
first non-finite layer outweighs everything a log without it can say. Signals of the
same rule code count once per cause (the strongest), so three bad records or a debug
log repeating the main log's symptoms do not triple the vote.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass

from nandoctor.core.types import Cause, Evidence, Finding, Location, Severity
from nandoctor.diagnose.timeline import Timeline

STRONG = 5.0  # the log or debug_info shows the cause directly
MATCH = 6.0  # a bad record read exactly in the window before the first NaN
PREDICTED = 3.0  # a config error that makes this cause certain when the run reaches it
HINT = 1.0  # consistent with the cause, not specific to it
DIVERGING_GROWTH = 100.0  # a finite loss this many times its first value: the run is diverging

UNSAFE_RISK = {"log": 3.0, "sqrt": 3.0, "pow_negative_base": 3.0, "reciprocal": 2.0}


@dataclass(frozen=True, slots=True)
class Signal:
    cause: Cause
    weight: float
    reason: str
    finding: Finding | None = None
    culprit: str | None = None
    culprit_rank: float = 0.0  # the highest-ranked culprit of a cause is the one named
    evidence: tuple[Evidence, ...] = ()  # for signals that no single finding carries

    @property
    def key(self) -> str:
        return self.finding.code if self.finding is not None else self.reason


def _candidates(f: Finding) -> list[Cause]:
    out = []
    for c in f.data.get("candidates", []) or []:
        try:
            out.append(Cause(c))
        except ValueError:
            continue
    return out


def _loss_weight_culprit(f: Finding, heads: dict[str, str]) -> str | None:
    """``<loss layer>.loss_weight`` for a finding naming a loss output (top) or a loss layer."""
    name = f.data.get("loss_head") or f.data.get("output") or f.data.get("layer") or f.culprit
    if not name:
        return None
    return f"{heads.get(name, name)}.loss_weight"


def _unsafe_risk(f: Finding) -> float:
    """How surely an unsafe math layer makes NaN: log/sqrt of a possibly negative input always
    can; a reciprocal only at exactly zero (a count of zero is the classic case)."""
    if f.code == "NAN120":
        return UNSAFE_RISK["log"]
    power = f.data.get("power")
    if isinstance(power, (int, float)):
        if power < 0:
            return UNSAFE_RISK["reciprocal"]
        if power != int(power):
            return UNSAFE_RISK["sqrt"] if f.data.get("base_sign") in ("any", "negative") else 1.0
    return 1.5


def config_signals(f: Finding, tl: Timeline, heads: dict[str, str]) -> Iterator[Signal]:
    """NAN0xx-NAN2xx: what the configuration predicts, weighed against when the log failed."""
    if f.severity is Severity.INFO or f.cause is Cause.UNKNOWN:
        return
    base = PREDICTED if f.severity is Severity.ERROR else HINT
    onset = tl.onset
    predicted_at = 0 if f.cause is Cause.POOLING else f.data.get("iteration", f.data.get("reaches_10x_at"))
    if f.severity is Severity.ERROR and isinstance(predicted_at, int) and tl.finite_through(predicted_at):
        yield Signal(f.cause, HINT, f.message, f, f.culprit, 1)
        yield Signal(
            f.cause,
            -HINT,
            f"the log shows the run finite through iteration {tl.last_display}, past iteration {predicted_at} where this should have failed",
            f,
        )
        return
    if f.cause is Cause.POOLING:
        yield Signal(f.cause, base, f.message, f, f.culprit, 10)
        if tl.nan_at_start:
            yield Signal(
                f.cause, PREDICTED, "an empty AVE window is NaN from the first forward pass, as the log shows", f
            )
        elif tl.first_nonfinite is not None and f.severity is Severity.ERROR:
            yield Signal(
                f.cause,
                -PREDICTED,
                f"the log was finite until iteration {tl.first_nonfinite}, but an empty window is NaN from iteration 0",
                f,
            )
        return
    if f.cause is Cause.LR_POLICY:
        at = f.data.get("iteration", f.data.get("reaches_10x_at"))
        yield Signal(f.cause, base, f.message, f, f.culprit, 10 if f.severity is Severity.ERROR else 5)
        if isinstance(at, int) and onset is not None:
            if at <= onset:
                yield Signal(
                    f.cause,
                    HINT,
                    f"the schedule goes wrong at iteration {at}, before the first non-finite value ({onset})",
                    f,
                )
            elif f.code == "NAN201":
                yield Signal(
                    f.cause,
                    -PREDICTED,
                    f"the schedule turns non-finite only at iteration {at}, after the loss did ({onset})",
                    f,
                )
        return
    if f.cause is Cause.GRADIENT_EXPLOSION:
        if f.code in ("NAN111", "NAN112"):
            yield Signal(f.cause, HINT, f.message, f, _loss_weight_culprit(f, heads), 6)
        else:
            yield Signal(f.cause, base, f.message, f, f.culprit or "base_lr", 3)
        return
    if f.cause is Cause.LOSS_FUNCTION:
        risk = _unsafe_risk(f)
        yield Signal(f.cause, HINT if f.severity is Severity.WARNING else base, f.message, f, f.culprit, risk)
        return
    yield Signal(f.cause, base, f.message, f, f.culprit, 1)


def log_signals(f: Finding, tl: Timeline, heads: dict[str, str], several_heads: bool) -> Iterator[Signal]:
    """NAN3xx: what the training log shows."""
    kind = f.data.get("kind")
    if kind in ("nan_at_start", "loss_sudden", "loss_jump", "smoothed_only"):
        for c in _candidates(f):
            yield Signal(c, HINT, f.message, f)
    elif kind == "loss_rising":
        growth = f.data.get("growth_factor")
        if f.data.get("trend") == "large_loss":
            weight = PREDICTED
        elif isinstance(growth, (int, float)) and math.isfinite(growth) and growth > 1:
            weight = 2.0 + min(3.0, math.log10(growth))
        else:
            weight = 2.0
        yield Signal(Cause.GRADIENT_EXPLOSION, weight, f.message, f, "base_lr", 3)
    elif kind == "dominant_output":
        yield Signal(Cause.GRADIENT_EXPLOSION, 2.0, f.message, f, _loss_weight_culprit(f, heads), 8)
    elif kind == "output_first" and several_heads and f.data.get("output") in heads:
        # the head that went first: the exploding one when the loss grew (not a vote by itself)
        yield Signal(Cause.GRADIENT_EXPLOSION, 0.0, f.message, f, _loss_weight_culprit(f, heads), 7)
    elif kind in ("lr_nonfinite", "lr_negative"):
        yield Signal(Cause.LR_POLICY, STRONG, f.message, f, f.culprit, 2)
    elif kind == "lr_increasing":
        growth = f.data.get("growth_factor") or 1
        yield Signal(Cause.LR_POLICY, 2.0 + min(3.0, math.log10(max(growth, 1))), f.message, f, f.culprit, 2)
    elif kind == "clip_rising" or (kind == "softmax_plateau" and tl.went_nonfinite):
        yield Signal(Cause.GRADIENT_EXPLOSION, HINT, f.message, f)
    elif kind == "check_failed" and f.cause is not Cause.UNKNOWN:
        yield Signal(f.cause, STRONG, f.message, f, f.culprit, 9)


def debug_signals(f: Finding, heads: dict[str, str]) -> Iterator[Signal]:
    """NAN5xx: debug_info names the layer where the first non-finite value is born."""
    layer = f.data.get("layer") or f.culprit
    if f.code in ("NAN500", "NAN501") and f.cause is not Cause.UNKNOWN:
        # in an explosion the first inf shows where the overflow lands, not the knob to turn
        culprit = None if f.cause is Cause.GRADIENT_EXPLOSION else layer
        yield Signal(f.cause, STRONG, f.message, f, culprit, 12)
        return
    if f.code == "NAN503" and f.cause not in (Cause.GRADIENT_EXPLOSION, Cause.UNKNOWN):
        # values jumping in a data layer (records of 1e30) are bad input, not an explosion
        yield Signal(f.cause, PREDICTED, f.message, f, layer, 8)
        return
    if f.code == "NAN503" and f.cause is Cause.GRADIENT_EXPLOSION:
        head = f.data.get("loss_head")
        culprit = f"{heads.get(head, head)}.loss_weight" if head else "base_lr"
        yield Signal(Cause.GRADIENT_EXPLOSION, PREDICTED, f.message, f, culprit, 9 if head else 4)
        return
    for c in _candidates(f):
        yield Signal(c, HINT, f.message, f)


def missing_source(f: Finding) -> bool:
    source = f.data.get("source")
    return f.code == "NAN410" and isinstance(source, str) and not os.path.exists(source)


def data_signals(f: Finding, tl: Timeline) -> Iterator[Signal]:
    """NAN4xx: a bad record counts fully only when its batch was read in the window that made the NaN."""
    if f.severity is Severity.INFO or missing_source(f):
        return  # a source that is not there at all says where nandoctor looked, not what Caffe read
    first = f.data.get("first_iteration")
    window = tl.window()
    if window is None and isinstance(first, int) and tl.finite_through(first):
        weight = 0.3
        reason = f"{f.culprit} is read at iteration {first}, and the log stays finite through {tl.last_display}"
    elif window is None:
        weight = PREDICTED if f.severity is Severity.ERROR else HINT
        reason = f.message
    elif isinstance(first, int) and window[0] <= first <= window[1]:
        weight = MATCH
        # no record name here: records of one batch then share one reason (the culprit names them all)
        reason = (
            f"a bad record ({f.data.get('source_kind') or 'data'}) is first read at iteration {first}, between the "
            f"last finite value ({window[0]}) and the first non-finite one ({window[1]})"
        )
    elif isinstance(first, int):
        weight = 0.3
        when = "before" if first < window[0] else "after"
        reason = (
            f"{f.culprit} is first read at iteration {first}, {when} the window {window[0]}..{window[1]} of the NaN"
        )
    else:
        weight = HINT
        reason = f.message
    yield Signal(Cause.BAD_INPUT, weight, reason, f, f.culprit, weight)


def divergence_signals(tl: Timeline, log_path: str) -> Iterator[Signal]:
    """A run still finite whose loss has grown by orders of magnitude: an explosion under way."""
    growth = tl.loss_growth()
    if tl.went_nonfinite or growth is None or growth < DIVERGING_GROWTH:
        return
    evidence = tuple(
        Evidence(f"Iteration {it}, loss = {loss:g}", Location(log_path, line), "log")
        for (line, it), loss in ((tl.first_loss_at, tl.first_loss), (tl.last_finite_loss_at, tl.last_finite_loss))
        if line is not None
    )
    reason = f"the loss grew {growth:.3g}x (from {tl.first_loss:g} to {tl.last_finite_loss:g}) and is still rising"
    yield Signal(Cause.GRADIENT_EXPLOSION, 2.0 + min(3.0, math.log10(growth)), reason, None, "base_lr", 3, evidence)
