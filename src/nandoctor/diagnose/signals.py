"""The engine's default votes for each kind of evidence a rule can declare (``Rule.bears``).

A rule that says nothing more than its bearing gets these; a rule with its own ``votes``
(e.g. the log rules) replaces them. Every vote is weighed against the timeline: a config
fact that the log shows harmless, a bad record read after the NaN or an lr that turns NaN
later than the loss cannot be the reason. Signals of the same rule code count once per cause
(the strongest), so three bad records or a debug log repeating the main log's symptoms do not
triple the vote.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator

from nandoctor.core.types import Bearing, Cause, Evidence, Finding, Location, Severity
from nandoctor.core.votes import HINT, MATCH, PREDICTED, STRONG, Signal, VoteContext, candidates
from nandoctor.diagnose.timeline import Timeline

DIVERGING_GROWTH = 100.0  # a finite loss this many times its first value: the run is diverging
UNSAFE_RISK = {"log": 3.0, "sqrt": 3.0, "pow_negative_base": 3.0, "reciprocal": 2.0}

__all__ = ["HINT", "MATCH", "PREDICTED", "STRONG", "Signal", "VoteContext", "votes_of"]


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


def prediction_votes(f: Finding, ctx: VoteContext) -> Iterator[Signal]:
    """A config fact: what it predicts, weighed against when the log failed."""
    tl = ctx.timeline
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
            yield Signal(f.cause, HINT, f.message, f, ctx.loss_weight_culprit(f), 6)
        elif f.severity is Severity.ERROR and f.culprit and f.culprit != "base_lr":
            # a solver field out of its range (momentum >= 1, weight_decay 5e4) is the step's own knob:
            # it outranks the base_lr a growing loss points at
            yield Signal(f.cause, base, f.message, f, f.culprit, 6)
        else:
            yield Signal(f.cause, base, f.message, f, f.culprit or "base_lr", 3)
        return
    if f.cause is Cause.LOSS_FUNCTION:
        risk = _unsafe_risk(f)
        yield Signal(f.cause, HINT if f.severity is Severity.WARNING else base, f.message, f, f.culprit, risk)
        return
    yield Signal(f.cause, base, f.message, f, f.culprit, 1)


def origin_votes(f: Finding, ctx: VoteContext) -> Iterator[Signal]:
    """debug_info names the layer where the first non-finite value is born."""
    heads = ctx.heads
    layer = f.data.get("layer") or f.culprit
    if f.code in ("NAN500", "NAN501") and f.cause is not Cause.UNKNOWN:
        # in an explosion the first inf shows where the overflow lands, not the knob to turn
        culprit = None if f.cause is Cause.GRADIENT_EXPLOSION else layer
        # an explosion seen in debug_info is what a step too large does: a symptom of what made it so
        explosion = f.cause is Cause.GRADIENT_EXPLOSION
        yield Signal(f.cause, STRONG, f.message, f, culprit, 12, symptom=explosion)
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
    for c in candidates(f):
        yield Signal(c, HINT, f.message, f)


def symptom_votes(f: Finding, ctx: VoteContext) -> Iterator[Signal]:
    """A log symptom that names no cause of its own: each cause it is consistent with, a little."""
    for c in candidates(f):
        yield Signal(c, HINT, f.message, f)


def missing_source(f: Finding) -> bool:
    source = f.data.get("source")
    return f.code == "NAN410" and isinstance(source, str) and not os.path.exists(source)


def record_votes(f: Finding, ctx: VoteContext, delayed: bool = False) -> Iterator[Signal]:
    """A bad record counts fully when its batch was read in the window that made the NaN, or --
    for a record whose harm builds up (``delayed``: an out-of-range label writing outside its
    row, garbage from a short record) -- when it was read before the loss started to drift."""
    tl = ctx.timeline
    if f.severity is Severity.INFO or missing_source(f):
        return  # a source that is not there at all says where nandoctor looked, not what Caffe read
    first = f.data.get("first_iteration")
    window = tl.window()
    if delayed and window is not None and isinstance(first, int) and first <= window[1]:
        weight = PREDICTED + HINT
        reason = (
            f"{f.culprit} is read from iteration {first} on, before the first non-finite value ({window[1]}): "
            "its harm builds up over the iterations that read it"
        )
        yield Signal(Cause.BAD_INPUT, weight, reason, f, f.culprit, weight, delayed=True)
        return
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


DEFAULT_VOTES = {
    Bearing.PREDICTION: prediction_votes,
    Bearing.SYMPTOM: symptom_votes,
    Bearing.ORIGIN: origin_votes,
}


def votes_of(rule: type | None, f: Finding, ctx: VoteContext) -> Iterable[Signal]:
    """The votes of one finding: the rule's own, else its bearing's default. A rule that declares
    no bearing, or the guard's (the PyTorch diagnosis weighs those), casts none."""
    if rule is None:
        return ()
    own = rule().votes(f, ctx)
    if own is not None:
        return own
    if rule.bears is Bearing.RECORD:
        return record_votes(f, ctx, delayed=bool(getattr(rule, "delayed", False)))
    default = DEFAULT_VOTES.get(rule.bears)
    return default(f, ctx) if default is not None else ()
