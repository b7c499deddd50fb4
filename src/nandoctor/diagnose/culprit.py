"""Who to blame and what to change: the culprit of a cause, its fixes, its evidence and the
reasons given for it."""

from __future__ import annotations

from nandoctor.config.net import lr_mults
from nandoctor.core.types import Cause, Evidence, Finding, Fix
from nandoctor.core.votes import MATCH, Signal
from nandoctor.diagnose import remedies
from nandoctor.diagnose.gather import Gathered

MAX_EVIDENCE = 12
PER_FINDING = 3


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


def fast_layer_culprit(s: Signal, net) -> Signal:
    """debug_info shows one layer's weights exploding first and that layer has lr_mult > 1: that
    lr_mult is the knob (the rest of the net is fine at base_lr)."""
    f = s.finding
    if f is None or f.code != "NAN503" or s.cause is not Cause.GRADIENT_EXPLOSION or f.data.get("loss_head"):
        return s
    layer = next((ly for ly in net.layers if ly.name == f.data.get("layer")), None) if net is not None else None
    if layer is None or max(lr_mults(layer), default=1.0) <= 1:
        return s
    return Signal(s.cause, s.weight, s.reason, f, f"{layer.name}.lr_mult", 9)


def culprit(cause: Cause, sigs: list[Signal], g: Gathered) -> str | None:
    if cause is Cause.BAD_INPUT:
        # every bad record is named (the clean copy drops them all); those read before the NaN come first
        records = bad_records(sigs)
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


def bad_records(sigs: list[Signal]) -> list[Finding]:
    data = [s for s in sigs if s.finding is not None and s.finding.code.startswith("NAN4")]
    matched = [s.finding for s in data if s.weight >= MATCH]
    return matched or [s.finding for s in data if s.weight >= 1.0] or [s.finding for s in data]


def fixes(cause: Cause, culprit: str | None, sigs: list[Signal], g: Gathered) -> list[Fix]:
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
        records = bad_records(sigs)
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


def evidence(sigs: list[Signal], first: list[Evidence] = ()) -> tuple[Evidence, ...]:
    """The chain's log lines (``first``), then the strongest signals' evidence; of each finding,
    the line it points at leads and at most PER_FINDING lines are taken, so one verbose finding
    cannot crowd out the others."""
    seen: set[tuple[str, str]] = set()
    out: list[Evidence] = []
    for ev in first:
        key = (ev.text, str(ev.location))
        if key not in seen:
            seen.add(key)
            out.append(ev)
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


def explanation(sigs: list[Signal]) -> str:
    pro = reasons(s for s in sigs if s.weight > 0)
    con = reasons(s for s in sigs if s.weight < 0)
    text = "; ".join(pro[:3])
    if con:
        text += (". " if text else "") + "Against: " + "; ".join(con[:2])
    return text


def reasons(sigs) -> list[str]:
    """Distinct reasons, strongest first (a log of thousands of runs gives thousands of signals)."""
    return list(dict.fromkeys(s.reason for s in sorted(sigs, key=lambda s: -abs(s.weight))))
