"""Name the earliest departure from normal that explains the rest of the run.

``diagnose(inputs) -> (Diagnosis, Gathered)`` reads everything (``gather``) and decides
(``decide``). ``decide`` is pure: the same findings and trace give the same diagnosis, which
is what the tests and the HTML/JSON front ends rely on. The steps: the timeline of the run
(``timeline``), each finding's votes as its rule declares them (``signals``), the chain of
events (``chain``) and the votes it adds, scores and confidences (``scoring``), culprit, fixes
and evidence (``culprit``), verdict and what would settle it (``verdict``), and what is wrong
with a run that did not fail (``wellness``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from nandoctor.core.registry import get_rule, load_rules
from nandoctor.core.types import Cause, CauseScore, Diagnosis, Finding, InputError, Verdict
from nandoctor.core.votes import HINT, PREDICTED, STRONG, Signal, VoteContext
from nandoctor.diagnose import chain, culprit, verdict, wellness
from nandoctor.diagnose.gather import Gathered, gather
from nandoctor.diagnose.inputs import RunInputs
from nandoctor.diagnose.scoring import Strength, confidences, order, score, strength
from nandoctor.diagnose.signals import divergence_signals, votes_of
from nandoctor.diagnose.timeline import Timeline, timeline

__all__ = ["Ranking", "decide", "diagnose", "rank", "score"]


def diagnose(
    inputs: RunInputs, *, scan_data: bool = True, options: dict[str, Any] | None = None
) -> tuple[Diagnosis, Gathered]:
    g = gather(inputs, scan_data=scan_data, options=options)
    return decide(g), g


def collect(g: Gathered, tl: Timeline) -> list[Signal]:
    load_rules()
    ctx = VoteContext(tl, culprit.loss_heads(g.train_net), g.train_net)
    out: list[Signal] = []
    for f in g.findings:
        out.extend(votes_of(get_rule(f.code), f, ctx))
    out.extend(_context_signals(g, tl))
    if g.trace is not None:
        out.extend(divergence_signals(tl, g.trace.path))
    out = [culprit.fast_layer_culprit(s, g.train_net) for s in out]
    if not ctx.several_heads:
        # one loss head: lowering its weight is lowering the lr, so name base_lr (the first fix)
        out = [
            Signal(s.cause, s.weight, s.reason, s.finding, "base_lr", s.culprit_rank, s.evidence, s.symptom)
            if s.culprit and s.culprit.endswith(".loss_weight")
            else s
            for s in out
        ]
    return out


def _context_signals(g: Gathered, tl: Timeline) -> list[Signal]:
    """What the absence of evidence says, when the evidence would have been there."""
    out = []
    sudden = any(f.data.get("kind") in ("loss_sudden", "loss_jump", "smoothed_only") for f in g.findings)
    clean = g.data is not None and not any(f.code.startswith("NAN4") and f.severity.value != "info" for f in g.findings)
    step = _step_too_large(g)
    if sudden and tl.went_nonfinite and step is not None:
        # between two displays a step this large can take the loss from finite to NaN unseen
        out.append(
            Signal(
                Cause.GRADIENT_EXPLOSION,
                1.0,
                f"{_headline(step.message)}, and the loss went non-finite between two displays",
                None,
                step.culprit or "base_lr",
                3,
                step.evidence[:1],
            )
        )
    custom = next(
        (f for f in g.findings if f.cause is Cause.LOSS_FUNCTION and f.severity.value == "info" and f.culprit), None
    )
    if sudden and tl.went_nonfinite and custom is not None and step is None:
        # a loss nandoctor cannot read the code of, and a NaN out of nowhere: the construct is the suspect
        out.append(
            Signal(
                Cause.LOSS_FUNCTION,
                1.0,
                f"the loss went non-finite suddenly, and {custom.culprit} is a loss whose code is not checked",
                custom,
                custom.culprit,
                2,
            )
        )
    out.extend(_test_only_signals(g, tl))
    first = next((f for f in g.findings if f.data.get("kind") == "loss_nonfinite"), None)
    if first is not None and str(first.data.get("value", "")).lower() == "nan":
        # x86's invalid operations (0/0, inf - inf, log of a negative) make the negative default
        # NaN that glibc prints "-nan"; a positive one was not computed here but copied in
        out.append(
            Signal(
                Cause.BAD_INPUT,
                2.0,
                "the first non-finite value prints as nan, not -nan: not made by the net's arithmetic "
                "(which gives -nan) but read in, as a NaN stored in the data is",
                first,
                None,
                1,
            )
        )
    if clean and tl.went_nonfinite:
        out.append(Signal(Cause.BAD_INPUT, -2.0, "the data scan found no bad record in the sources Caffe reads"))
        if sudden and step is None:
            out.append(
                Signal(Cause.LOSS_FUNCTION, 1.0, "the data is clean, so a layer computed the NaN from finite inputs")
            )
    lr_growing = any(f.data.get("kind") == "lr_increasing" for f in g.findings)
    printed_lr = g.trace is not None and any(seg.lr for seg in g.trace.segments)
    if (
        tl.went_nonfinite
        and printed_lr
        and not lr_growing
        and tl.first_nonfinite_lr is None
        and tl.first_negative_lr is None
    ):
        out.append(Signal(Cause.LR_POLICY, -1.0, "every lr the log prints is finite, positive and not growing"))
    return out


def _test_only_signals(g: Gathered, tl: Timeline) -> list[Signal]:
    """The TEST net non-finite while TRAIN, with the same weights, stays finite: the TEST net's own
    input. Before the first update (test_initialization) the weights cannot be the reason at all."""
    if tl.first_nonfinite_test is None or tl.first_nonfinite is not None:
        return []
    before = tl.first_display is None or tl.first_nonfinite_test <= tl.first_display
    source = _test_source(g)
    where = f" ({source})" if source else ""
    if before:
        reason = (
            f"the TEST net is non-finite at iteration {tl.first_nonfinite_test}, before any update, while the "
            f"TRAIN net computes finite losses with the same weights: the TEST data{where} is the difference"
        )
        return [Signal(Cause.BAD_INPUT, PREDICTED, reason, None, source, 4)]
    reason = f"only the TEST net goes non-finite (from iteration {tl.first_nonfinite_test}); TRAIN stays finite"
    return [Signal(Cause.BAD_INPUT, HINT, reason, None, source, 2)]


def _test_source(g: Gathered) -> str | None:
    """The source the TEST phase's data layer reads, when the net was read."""
    net = g.train_net
    if net is None:
        return None
    for layer in net.phase_layers("TEST"):
        for name in ("data_param", "hdf5_data_param", "image_data_param"):
            msg = layer.param(name)
            src = msg.get("source") if msg is not None else None
            if isinstance(src, str) and src:
                return src.rstrip("/").rsplit("/", 1)[-1]
    return None


def _step_too_large(g: Gathered) -> Finding | None:
    """A solver fact that makes every update too large (base_lr for the solver type, momentum)."""
    for f in g.findings:
        rule = get_rule(f.code)
        if (
            f.cause is Cause.GRADIENT_EXPLOSION
            and f.severity.value != "info"
            and rule is not None
            and rule.bears is not None
            and rule.bears.value == "prediction"
            and "solver" in getattr(rule, "needs", ())
        ):
            return f
    return None


def _early_links(g: Gathered) -> list[chain.Link]:
    """The departures findings date: config facts from iteration 0, bad records from their first read."""
    links = []
    seen: set[str] = set()
    for f in g.findings:
        if f.severity.value != "error" or f.cause is Cause.UNKNOWN:
            continue
        rule = get_rule(f.code)
        bears = rule.bears.value if rule is not None and rule.bears is not None else None
        if bears == "prediction" and f.culprit and f.culprit not in seen:
            seen.add(f.culprit)
            links.append(chain.Link(0, "config", _headline(f.message), f.evidence[:1]))
        elif bears == "record" and isinstance(f.data.get("first_iteration"), int) and "record" not in seen:
            seen.add("record")
            at = f.data["first_iteration"]
            links.append(chain.Link(at, "record", f"{f.culprit} read at {at}", f.evidence[:1]))
    return links[:3]


def _headline(message: str) -> str:
    """A finding's message up to its first clause: what the link is, not the whole argument."""
    cut = [i for i in (message.find(": "), message.find("; ")) if i > 0]
    return message[: min(cut)] if cut else message


def _chain_signals(links: list[chain.Link], tl: Timeline, g: Gathered) -> tuple[list[Signal], bool]:
    """Votes from the order of events; True when a cause upstream explains a growing loss."""
    out: list[Signal] = []
    explained = False
    lr = chain.first(links, "lr")
    loss = chain.first(links, "loss")
    failed = tl.went_nonfinite or loss is not None
    if lr is not None and failed and (loss is None or lr.iteration <= loss.iteration):
        after = f", before the loss did ({loss.text})" if loss is not None else ", before the first non-finite value"
        out.append(Signal(Cause.LR_POLICY, STRONG, f"the lr grew ({lr.text}){after}", None, None, 0, lr.evidence))
        explained = True
    onset = tl.onset
    if tl.first_negative_lr is not None and failed and (onset is None or tl.first_negative_lr <= onset):
        # a negative lr climbs the loss: the explosion that follows is its effect
        out.append(
            Signal(
                Cause.LR_POLICY,
                STRONG,
                f"the lr is negative from iteration {tl.first_negative_lr}, before the first non-finite value",
                None,
                "base_lr",
                11,
                lr.evidence if lr is not None else (),
            )
        )
        explained = True
    exp = next((f for f in g.findings if f.code == "NAN122" and f.culprit), None)
    nonfinite = chain.first(links, "nonfinite")
    overflow = nonfinite is not None and "inf" in nonfinite.text and "nan" not in nonfinite.text
    if exp is not None and failed and (overflow or loss is not None):
        out.append(
            Signal(
                Cause.LOSS_FUNCTION,
                STRONG,
                f"the loss grows through {exp.culprit}, an exp of an unbounded input: it overflows first",
                exp,
                exp.culprit,
                9,
            )
        )
        explained = True
    return out, explained


@dataclass(frozen=True, slots=True)
class Ranking:
    """The scored causes of one run, before culprits and fixes: what the confidence is read from."""

    tl: Timeline
    links: list[chain.Link]
    signals: list[Signal]
    totals: dict[Cause, float]
    causes: list[Cause]
    by_cause: dict[Cause, list[Signal]]
    strength: Strength | None  # of the top cause; None when nothing is ranked


def rank(g: Gathered) -> Ranking:
    tl = timeline(g.trace)
    path = g.trace.path if g.trace is not None else "<log>"
    links = chain.build(tl, path, _early_links(g)) if g.trace is not None else _early_links(g)
    sigs = collect(g, tl)
    extra, explained = _chain_signals(links, tl, g)
    sigs.extend(extra)
    # a bad record whose harm builds up, read before the drift, explains the drift too
    explained = explained or any(s.cause is Cause.BAD_INPUT and s.delayed for s in sigs)
    totals = score(sigs, explained)
    by_cause: dict[Cause, list[Signal]] = defaultdict(list)
    for s in sigs:
        by_cause[s.cause].append(s)
    failed = tl.went_nonfinite or tl.first_nonfinite_lr is not None or verdict.aborted(g)
    supported = {c for c, cs in by_cause.items() if any(s.weight >= HINT for s in cs)}
    ranked_causes = order(totals, supported, failed)
    displays = len([p for p in tl.seg.train if not p.final]) if tl.seg is not None else 0
    top = ranked_causes[0] if ranked_causes else None
    power = (
        strength(top, ranked_causes, totals, displays, g.configs is not None, by_cause[top])
        if top is not None
        else None
    )
    return Ranking(tl, links, sigs, totals, ranked_causes, by_cause, power)


def decide(g: Gathered) -> Diagnosis:
    r = rank(g)
    tl, links, sigs, totals, ranked_causes, by_cause = r.tl, r.links, r.signals, r.totals, r.causes, r.by_cause
    conf = confidences(ranked_causes, totals, r.strength)
    story = chain.chain_text(links)
    ranked: list[CauseScore] = []
    for cause in ranked_causes:
        if cause is not Cause.UNKNOWN and totals[cause] < 2.0 and not by_cause[cause]:
            continue
        cs = by_cause[cause]
        if cause is Cause.UNKNOWN:
            ranked.append(
                CauseScore(cause, conf[cause], None, (), (), "none of the five causes is supported by what was read")
            )
            continue
        named = culprit.culprit(cause, cs, g)
        why = culprit.explanation(cs)
        ranked.append(
            CauseScore(
                cause,
                conf[cause],
                named,
                culprit.evidence(cs, [ev for ln in links for ev in ln.evidence] if not ranked else []),
                tuple(culprit.fixes(cause, named, cs, g)),
                f"{story}. {why}" if story and not ranked else why,
            )
        )
    ruled_out = [
        (cause, "; ".join(culprit.reasons(s for s in by_cause[cause] if s.weight < 0)))
        for cause, w in totals.items()
        if w <= 0 and any(s.weight < 0 for s in by_cause[cause])
    ]
    state = verdict.verdict(g, tl, ranked, totals)
    empty = verdict.nothing_to_diagnose(g, tl, state)
    if empty is not None:
        raise InputError(empty, str(g.trace.path))
    if state is Verdict.HEALTHY:
        ranked = []
    return Diagnosis(
        verdict=state,
        causes=ranked,
        first_nonfinite_iteration=verdict.first_nonfinite(g, tl, sigs) if state is not Verdict.HEALTHY else None,
        inputs={
            **g.inputs.to_dict(),
            "iters": g.options.get("iters"),
            "configs_from_log": g.configs_from_log,
            "data_scanned": g.data is not None,
            "notes": g.notes,
        },
        findings=_shown_findings(g.findings),
        next_steps=verdict.next_steps(g, tl, state, ranked),
        ruled_out=ruled_out if state is not Verdict.HEALTHY else [],
        warnings=wellness.warnings(g, tl) if state is Verdict.HEALTHY else [],
    )


def _shown_findings(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, str]] = set()
    out = []
    for f in findings:
        key = (f.code, f.message)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out
