"""Rank the causes: every source's findings become signals, signals become scores, the
best-supported cause gets named with its culprit, evidence and fix.

``diagnose(inputs) -> (Diagnosis, Gathered)`` reads everything (``gather``) and decides
(``decide``). ``decide`` is pure: the same findings and trace give the same diagnosis,
which is what the tests and the HTML/JSON front ends rely on.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from nandoctor.config.net import lr_mults
from nandoctor.core.types import Cause, CauseScore, Diagnosis, Evidence, Finding, Fix, Verdict
from nandoctor.diagnose import remedies
from nandoctor.diagnose.gather import Gathered, gather
from nandoctor.diagnose.inputs import RunInputs
from nandoctor.diagnose.signals import (
    DIVERGING_GROWTH,
    MATCH,
    PREDICTED,
    Signal,
    config_signals,
    data_signals,
    debug_signals,
    divergence_signals,
    log_signals,
    missing_source,
)
from nandoctor.diagnose.timeline import Timeline, timeline

UNKNOWN_PRIOR = 1.0  # what "none of the five" scores before any evidence: it wins when nothing else is shown
DECIDED = 2.0  # a cause needs at least this much support to be named instead of "unknown"
MAX_EVIDENCE = 12
PER_FINDING = 3


def diagnose(
    inputs: RunInputs, *, scan_data: bool = True, options: dict[str, Any] | None = None
) -> tuple[Diagnosis, Gathered]:
    g = gather(inputs, scan_data=scan_data, options=options)
    return decide(g), g


# ------------------------------------------------------------------ signals
def loss_heads(net) -> dict[str, str]:
    """Loss output (top) and loss layer name -> loss layer name, for the TRAIN phase."""
    heads: dict[str, str] = {}
    if net is None:
        return heads
    for layer in net.phase_layers("TRAIN"):
        for top, w in zip(layer.tops, layer.loss_weights, strict=False):
            if w:
                heads[top] = layer.name
                heads[layer.name] = layer.name
    return heads


def collect(g: Gathered, tl: Timeline) -> list[Signal]:
    heads = loss_heads(g.train_net)
    several_heads = len(set(heads.values())) > 1
    out: list[Signal] = []
    for f in g.findings:
        n = int(f.code[3:]) if f.code[3:].isdigit() else -1
        if n < 300:
            out.extend(config_signals(f, tl, heads))
        elif n < 400:
            out.extend(log_signals(f, tl, heads, several_heads))
        elif n < 500:
            out.extend(data_signals(f, tl))
        elif n < 600:
            out.extend(debug_signals(f, heads))
        # NAN6xx (PyTorch) findings come with their own diagnosis (nandoctor.torch)
    out.extend(_context_signals(g, tl))
    if g.trace is not None:
        out.extend(divergence_signals(tl, g.trace.path))
    out = [_fast_layer_culprit(s, g.train_net) for s in out]
    if not several_heads:
        # one loss head: lowering its weight is lowering the lr, so name base_lr (the seed's first fix)
        out = [
            Signal(s.cause, s.weight, s.reason, s.finding, "base_lr", s.culprit_rank)
            if s.culprit and s.culprit.endswith(".loss_weight")
            else s
            for s in out
        ]
    return out


def _fast_layer_culprit(s: Signal, net) -> Signal:
    """debug_info shows one layer's weights exploding first and that layer has lr_mult > 1: that
    lr_mult is the knob (the rest of the net is fine at base_lr)."""
    f = s.finding
    if f is None or f.code != "NAN503" or s.cause is not Cause.GRADIENT_EXPLOSION or f.data.get("loss_head"):
        return s
    layer = next((ly for ly in net.layers if ly.name == f.data.get("layer")), None) if net is not None else None
    if layer is None or max(lr_mults(layer), default=1.0) <= 1:
        return s
    return Signal(s.cause, s.weight, s.reason, f, f"{layer.name}.lr_mult", 9)


def _context_signals(g: Gathered, tl: Timeline) -> list[Signal]:
    """What the absence of evidence says, when the evidence would have been there."""
    out = []
    sudden = any(f.data.get("kind") in ("loss_sudden", "loss_jump", "smoothed_only") for f in g.findings)
    clean = g.data is not None and not any(f.code.startswith("NAN4") and f.severity.value != "info" for f in g.findings)
    if clean and tl.went_nonfinite:
        out.append(Signal(Cause.BAD_INPUT, -2.0, "the data scan found no bad record in the sources Caffe reads"))
        if sudden:
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


# ------------------------------------------------------------------ scoring
def score(signals: list[Signal]) -> dict[Cause, float]:
    """Per cause: the strongest signal of each kind, summed (contradictions subtract)."""
    best: dict[tuple[Cause, str, bool], float] = {}
    for s in signals:
        key = (s.cause, s.key, s.weight >= 0)
        old = best.get(key)
        if old is None or abs(s.weight) > abs(old):
            best[key] = s.weight
    totals: dict[Cause, float] = defaultdict(float)
    for (cause, _key, _pos), w in best.items():
        totals[cause] += w
    totals[Cause.UNKNOWN] += UNKNOWN_PRIOR
    return dict(totals)


def _culprit(cause: Cause, sigs: list[Signal], g: Gathered) -> str | None:
    if cause is Cause.BAD_INPUT:
        # every bad record is named (the clean copy drops them all); those read before the NaN come first
        records = _bad_records(sigs)
        if records:
            rest = [
                s.finding
                for s in sigs
                if s.finding is not None and s.finding.code.startswith("NAN4") and s.finding not in records
            ]
            return remedies.describe_records(records + rest)
        layer = next((s.culprit for s in sorted(sigs, key=lambda s: -s.culprit_rank) if s.culprit), None)
        return f"data layer {layer}" if layer else None
    named = [s for s in sigs if s.culprit and s.weight >= 0]
    if not named:
        return None
    return max(named, key=lambda s: (s.culprit_rank, s.weight)).culprit


def _bad_records(sigs: list[Signal]) -> list[Finding]:
    data = [s for s in sigs if s.finding is not None and s.finding.code.startswith("NAN4")]
    matched = [s.finding for s in data if s.weight >= MATCH]
    return matched or [s.finding for s in data if s.weight >= 1.0] or [s.finding for s in data]


def _fixes(cause: Cause, culprit: str | None, sigs: list[Signal], g: Gathered) -> list[Fix]:
    fixes: list[Fix] = []
    if cause is Cause.GRADIENT_EXPLOSION and culprit:
        if culprit.endswith(".lr_mult"):
            fix = remedies.lower_lr_mult(g.train_net, culprit.rsplit(".", 1)[0])
        elif culprit.endswith(".loss_weight"):
            dominant = next(
                (s.finding for s in sigs if s.finding and s.finding.data.get("kind") == "dominant_output"), None
            )
            fix = remedies.lower_loss_weight(g.train_net, culprit.rsplit(".", 1)[0], dominant)
        else:
            fix = remedies.lower_base_lr(g.solver, _suggested(sigs, "base_lr"))
        if fix is not None:
            fixes.append(fix)
    if cause is Cause.BAD_INPUT:
        records = _bad_records(sigs)
        if records:
            run_dir = str(g.inputs.data_root) if g.inputs.data_root else None
            fixes.extend(remedies.point_at_clean_copy(g.train_net, run_dir, records))
    # then the rules' own fixes, the culprit's first, none touching text an earlier edit changes
    ordered = sorted(
        (s for s in sigs if s.finding is not None and s.finding.fix is not None and s.weight > 0),
        key=lambda s: (s.culprit != culprit, -s.culprit_rank, -s.weight),
    )
    for s in ordered:
        fix = s.finding.fix
        if cause is Cause.BAD_INPUT and s.finding.code.startswith("NAN4") and fixes:
            continue  # the per-record "rebuild" advice is already folded into the source fix
        if cause is Cause.GRADIENT_EXPLOSION and culprit != "base_lr" and s.finding.culprit == "base_lr":
            continue  # the exploding head's weight (or layer's lr_mult) is lowered instead of base_lr
        if any(fix.description == f.description for f in fixes) or _overlaps(fix, fixes):
            continue
        fixes.append(fix)
    if g.configs_from_log:
        # the configs were read from the log: there is no file to patch, only the advice
        fixes = [Fix(f.description, (), f.safe) for f in fixes]
    return fixes[:4]


def _suggested(sigs: list[Signal], field: str) -> list[float]:
    """Values the rules' own fixes propose for a solver field (e.g. NAN208's tolerable base_lr)."""
    out = []
    for s in sigs:
        fix = s.finding.fix if s.finding is not None and s.finding.culprit == field else None
        for e in fix.edits if fix is not None else ():
            try:
                out.append(float(e.new))
            except ValueError:
                continue
    return out


def _overlaps(fix: Fix, taken: list[Fix]) -> bool:
    spans = [(e.path, e.start, e.end) for f in taken for e in f.edits]
    for e in fix.edits:
        for path, a, b in spans:
            if e.path == path and e.start <= b and a <= e.end:
                return True
    return False


def _evidence(sigs: list[Signal]) -> tuple[Evidence, ...]:
    """The strongest signals' evidence first; of each finding, the line it points at leads and at
    most PER_FINDING lines are taken, so one verbose finding cannot crowd out the others."""
    seen: set[tuple[str, str]] = set()
    out: list[Evidence] = []
    for s in sorted((s for s in sigs if s.weight > 0 and (s.finding or s.evidence)), key=lambda s: -s.weight):
        f = s.finding
        if f is None:
            items = s.evidence
        else:
            items = f.evidence or (Evidence(f.message, f.location, "computed"),)
            items = sorted(items, key=lambda ev: ev.location != f.location)[:PER_FINDING]
        for ev in items:
            key = (ev.text, str(ev.location))
            if key not in seen:
                seen.add(key)
                out.append(ev)
    return tuple(out[:MAX_EVIDENCE])


def _explanation(sigs: list[Signal]) -> str:
    pro = _reasons(s for s in sigs if s.weight > 0)
    con = _reasons(s for s in sigs if s.weight < 0)
    text = "; ".join(pro[:3])
    if con:
        text += (". " if text else "") + "Against: " + "; ".join(con[:2])
    return text


def _reasons(sigs) -> list[str]:
    """Distinct reasons, strongest first (a log of thousands of runs gives thousands of signals)."""
    return list(dict.fromkeys(s.reason for s in sorted(sigs, key=lambda s: -abs(s.weight))))


# ------------------------------------------------------------------ verdict
def _first_nonfinite(g: Gathered, tl: Timeline, sigs: list[Signal]) -> int | None:
    if tl.first_nonfinite is not None:
        return tl.first_nonfinite
    if g.trace is not None:
        return tl.onset
    predicted = []
    for s in sigs:
        if s.finding is None or s.weight < PREDICTED:
            continue
        d = s.finding.data
        at = d.get("iteration", d.get("first_iteration"))
        if s.cause is Cause.POOLING or "fatal" in d:
            at = 0  # an empty window is NaN in the first forward pass; Caffe's checks abort at the first update
        if isinstance(at, int):
            predicted.append(at)
    return min(predicted) if predicted else None


def _aborted(g: Gathered) -> bool:
    return any(f.data.get("kind") == "check_failed" and f.cause is not Cause.UNKNOWN for f in g.findings)


def _diverging(g: Gathered, tl: Timeline) -> bool:
    kinds = {f.data.get("kind") for f in g.findings}
    growth = tl.loss_growth()
    return bool({"lr_negative", "lr_increasing"} & kinds) or (growth is not None and growth >= DIVERGING_GROWTH)


def _silent_log(g: Gathered, tl: Timeline) -> bool:
    """A log with no training line at all (empty, binary, another program's output) shows nothing."""
    return g.trace is not None and tl.last_display is None and not tl.went_nonfinite and not _aborted(g)


def _verdict(g: Gathered, tl: Timeline, ranked: list[CauseScore], totals: dict[Cause, float]) -> Verdict:
    top = ranked[0] if ranked else None
    decided = top is not None and top.cause is not Cause.UNKNOWN
    if _silent_log(g, tl) and tl.first_nonfinite_lr is None and g.configs is None:
        return Verdict.INCONCLUSIVE
    if tl.went_nonfinite or tl.first_nonfinite_lr is not None or _aborted(g):
        return Verdict.NAN if decided else Verdict.INCONCLUSIVE
    if g.trace is not None and _diverging(g, tl):
        return Verdict.DIVERGING
    predicted = any(w >= PREDICTED for c, w in totals.items() if c is not Cause.UNKNOWN)
    if predicted and decided:
        return Verdict.WILL_FAIL
    if (g.trace is None or _silent_log(g, tl)) and any(w > 0 for c, w in totals.items() if c is not Cause.UNKNOWN):
        return Verdict.INCONCLUSIVE  # risks, and no run to show whether they strike
    return Verdict.HEALTHY


def _next_steps(g: Gathered, tl: Timeline, verdict: Verdict, ranked: list[CauseScore]) -> list[str]:
    steps: list[str] = []
    missing = sorted({str(f.data["source"]) for f in g.findings if missing_source(f)})
    if missing:
        steps.append(
            f"Data sources not found: {', '.join(missing)}. Caffe resolves them from the folder it ran in: "
            "pass that folder with --data-root (until then the data and its shapes are not checked)."
        )
    if verdict is Verdict.HEALTHY:
        return steps
    top = ranked[0] if ranked else None
    unsure = top is None or top.cause is Cause.UNKNOWN or top.confidence < 0.6
    if _silent_log(g, tl):
        steps.append(
            f"{g.trace.path} has no training iteration line (Iteration N, loss = ...): pass the log Caffe wrote to stderr."
        )
    if g.trace is None:
        steps.append(
            "Pass the training log (Caffe's stderr): it shows when the values went non-finite and confirms the cause."
        )
    if g.configs is None:
        steps.append(
            "Pass solver.prototxt and the net (--solver, --net): nandoctor then checks the lr schedule, the pooling geometry and the loss layers."
        )
    if (
        g.data is None
        and verdict is not Verdict.WILL_FAIL
        and (unsure or (top and top.cause in (Cause.BAD_INPUT, Cause.LOSS_FUNCTION)))
    ):
        steps.append(
            "Let nandoctor read the data sets (run it in the run folder or pass --data-root): a bad record read just before the NaN settles bad input vs a loss layer."
        )
    if (
        not g.debug_traces
        and tl.went_nonfinite
        and (unsure or top.cause in (Cause.LOSS_FUNCTION, Cause.BAD_INPUT, Cause.GRADIENT_EXPLOSION))
    ):
        if g.inputs.solver is not None:
            how = f"`nandoctor replay {g.inputs.run_dir or g.inputs.solver.parent} --out debug_run` writes that run"
        else:
            how = "set `debug_info: true` and `display: 1` in the solver (or pass the run folder to `nandoctor replay`)"
        steps.append(f"Rerun with debug_info: true to see the first layer that goes non-finite: {how}.")
    return steps


def decide(g: Gathered) -> Diagnosis:
    tl = timeline(g.trace)
    sigs = collect(g, tl)
    totals = score(sigs)
    by_cause: dict[Cause, list[Signal]] = defaultdict(list)
    for s in sigs:
        by_cause[s.cause].append(s)
    positive = {c: max(w, 0.0) for c, w in totals.items()}
    mass = sum(positive.values()) or 1.0
    ranked: list[CauseScore] = []
    for cause, w in sorted(totals.items(), key=lambda kv: -kv[1]):
        if w <= 0:
            continue
        if cause is not Cause.UNKNOWN and w < DECIDED and not by_cause[cause]:
            continue
        cs = by_cause[cause]
        culprit = _culprit(cause, cs, g) if cause is not Cause.UNKNOWN else None
        ranked.append(
            CauseScore(
                cause,
                positive[cause] / mass,
                culprit,
                _evidence(cs),
                tuple(_fixes(cause, culprit, cs, g)) if cause is not Cause.UNKNOWN else (),
                _explanation(cs)
                if cause is not Cause.UNKNOWN
                else "none of the five causes is supported by what was read",
            )
        )
    ranked = _demote_weak(ranked, totals)
    ruled_out = [
        (cause, "; ".join(_reasons(s for s in by_cause[cause] if s.weight < 0)))
        for cause, w in totals.items()
        if w <= 0 and any(s.weight < 0 for s in by_cause[cause])
    ]
    verdict = _verdict(g, tl, ranked, totals)
    if verdict is Verdict.HEALTHY:
        ranked = []
    return Diagnosis(
        verdict=verdict,
        causes=ranked,
        first_nonfinite_iteration=_first_nonfinite(g, tl, sigs) if verdict is not Verdict.HEALTHY else None,
        inputs={
            **g.inputs.to_dict(),
            "iters": g.options.get("iters"),
            "configs_from_log": g.configs_from_log,
            "data_scanned": g.data is not None,
            "notes": g.notes,
        },
        findings=_shown_findings(g.findings),
        next_steps=_next_steps(g, tl, verdict, ranked),
        ruled_out=ruled_out if verdict is not Verdict.HEALTHY else [],
    )


def _demote_weak(ranked: list[CauseScore], totals: dict[Cause, float]) -> list[CauseScore]:
    """A cause with less support than DECIDED does not outrank 'unknown'."""
    strong = [c for c in ranked if c.cause is Cause.UNKNOWN or totals[c.cause] >= DECIDED]
    weak = [c for c in ranked if c not in strong]
    return strong + weak


def _shown_findings(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, str]] = set()
    out = []
    for f in findings:
        key = (f.code, f.message)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out
