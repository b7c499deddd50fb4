"""From a guard's TorchFacts to a ranked Diagnosis (the same schema as ``nandoctor diagnose``).

No torch here: the NAN6xx rules turn the facts into findings, each with a confidence,
and the causes are ranked by their strongest finding.
"""

from __future__ import annotations

from nandoctor.core.registry import Facts, run_rules, select_rules
from nandoctor.core.types import Cause, CauseScore, Diagnosis, Finding, Verdict
from nandoctor.torch.facts import TRIGGER_SCALE, TorchFacts


def findings_for(facts: TorchFacts) -> list[Finding]:
    return list(run_rules(Facts(torch=facts), select_rules(["NAN6"])))


def diagnose_facts(facts: TorchFacts, inputs: dict | None = None) -> Diagnosis:
    findings = findings_for(facts)
    best: dict[Cause, list[Finding]] = {}
    for finding in findings:
        best.setdefault(finding.cause, []).append(finding)
    causes = []
    for cause, group in best.items():
        group.sort(key=lambda f: -float(f.data.get("confidence", 0.5)))
        top = group[0]
        causes.append(
            CauseScore(
                cause=cause,
                confidence=float(top.data.get("confidence", 0.5)),
                culprit=top.culprit,
                evidence=tuple(e for f in group for e in f.evidence),
                fixes=tuple(f.fix for f in group if f.fix),
                explanation=top.message,
            )
        )
    causes.sort(key=lambda c: -c.confidence)
    next_steps = []
    if not causes:
        causes.append(
            CauseScore(
                cause=Cause.UNKNOWN,
                confidence=0.2,
                culprit=None,
                explanation=f"step {facts.step}: non-finite {facts.trigger} but the replay named no producer",
            )
        )
        next_steps.append(_replay_advice(facts))
    weak = causes[0].confidence < 0.5
    if facts.criterion and facts.replay.get("ran") is False and "Error" in str(facts.replay.get("reason", "")):
        if next_steps[-1:] != [_replay_advice(facts)]:
            next_steps.append(_replay_advice(facts))
    elif weak and not facts.replay.get("ran", False) and facts.replay.get("reason"):
        next_steps.append(f"replay did not run: {facts.replay['reason']}")
    elif facts.replay.get("ran") and facts.replay.get("reproduced") is False and not _has(findings, "NAN670"):
        next_steps.append("the replay stayed finite: the NaN depends on state the guard could not restore")
    if facts.lag:
        lag = facts.lag
        next_steps.insert(
            0,
            f"sync-free mode: the host read the device flag at step {lag['detected_step']}, "
            f"{lag['late_by']} step(s) after the first non-finite step {lag['first_bad_step']} "
            f"(it may be up to {lag['max_late']} step(s) late); the {lag['bad_steps']} bad step(s) were masked "
            + ("exactly (fused optimizer)" if lag.get("exact_skip") else "by zeroing their gradients"),
        )
    verdict = Verdict.DIVERGING if facts.trigger == TRIGGER_SCALE else Verdict.NAN
    info = {"source": "pytorch", "model": facts.model, "trigger": facts.trigger}
    if facts.lag:
        info["late_by"] = facts.lag["late_by"]
    if facts.distributed:
        info["rank"] = facts.distributed["rank"]
    info.update(inputs or {})
    return Diagnosis(
        verdict=verdict,
        causes=causes,
        first_nonfinite_iteration=facts.step,
        inputs=info,
        findings=findings,
        next_steps=next_steps,
    )


def _has(findings: list[Finding], code: str) -> bool:
    return any(f.code == code for f in findings)


def _replay_advice(facts: TorchFacts) -> str:
    reason = facts.replay.get("reason", "")
    if facts.criterion and "Error" in str(reason):
        return (
            f"the replay called criterion(model(batch[0]), batch[1]) and failed ({reason}): pass "
            "closure=lambda model, batch: loss_fn(model(*inputs), targets) to NaNGuard, computing the loss "
            "from the batch as the loop does"
        )
    if not facts.replay.get("ran"):
        return "pass closure=(lambda model, batch: loss) or criterion= to NaNGuard so the step can be replayed"
    return "replay the bundle with replay_bundle(path, model_factory, closure) to look closer"


def render_text(diagnosis: Diagnosis) -> str:
    """A plain-text report: verdict, ranked causes with culprit, evidence and fixes."""
    lines = [f"verdict: {diagnosis.verdict.value}  (first non-finite step {diagnosis.first_nonfinite_iteration})"]
    for rank, cause in enumerate(diagnosis.causes, 1):
        lines.append(f"{rank}. {cause.cause.value}  confidence {cause.confidence:.2f}  culprit: {cause.culprit or '-'}")
        if cause.explanation:
            lines.append(f"   {cause.explanation}")
        lines.extend(f"   - {e.text}" for e in cause.evidence)
        lines.extend(f"   fix: {f.description}" for f in cause.fixes)
    lines.extend(f"next: {s}" for s in diagnosis.next_steps)
    return "\n".join(lines)
