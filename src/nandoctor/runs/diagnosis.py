"""From a framework run to a ranked Diagnosis (the same schema as ``nandoctor diagnose``).

The NAN7xx rules turn the run's timeline into findings, each with a weight for its
cause. Per cause the strongest finding of each rule counts once; ``unknown`` starts at
1 and a cause needs 2 to be named, as in the Caffe engine.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from nandoctor.core.registry import Facts, run_rules, select_rules
from nandoctor.core.types import Cause, CauseScore, Diagnosis, Finding, Verdict
from nandoctor.runs.detect import read_run
from nandoctor.runs.record import RunLog
from nandoctor.runs.timeline import RunTimeline, build_timeline

UNKNOWN_PRIOR = 1.0
DECIDED = 2.0
DIVERGING_KINDS = ("lr_increasing", "lr_negative", "loss_rising", "grad_rising", "scale_collapse", "transient")


def findings_for(tl: RunTimeline) -> list[Finding]:
    return list(run_rules(Facts(run=tl), select_rules(["NAN7"])))


def scores(findings: list[Finding]) -> dict[Cause, float]:
    best: dict[tuple[Cause, str], float] = {}
    for f in findings:
        weight = float(f.data.get("weight", 0.0))
        key = (f.cause, f.code)
        best[key] = max(best.get(key, 0.0), weight)
        for cause, w in (f.data.get("also") or {}).items():
            k = (Cause(cause), f.code)
            best[k] = max(best.get(k, 0.0), float(w))
    totals: dict[Cause, float] = defaultdict(float)
    for (cause, _code), w in best.items():
        if cause is not Cause.UNKNOWN:
            totals[cause] += w
    totals[Cause.UNKNOWN] += UNKNOWN_PRIOR
    return dict(totals)


def _supports(f: Finding, cause: Cause) -> bool:
    return f.cause is cause or cause.value in (f.data.get("also") or {})


def _weight_for(f: Finding, cause: Cause) -> float:
    if f.cause is cause:
        return float(f.data.get("weight", 0))
    return float((f.data.get("also") or {}).get(cause.value, 0))


def diagnose_log(run: RunLog) -> Diagnosis:
    tl = build_timeline(run)
    findings = findings_for(tl)
    totals = scores(findings)
    mass = sum(w for w in totals.values() if w > 0) or 1.0
    ranked = []
    for cause, w in sorted(totals.items(), key=lambda kv: -kv[1]):
        group = sorted(
            (f for f in findings if cause is not Cause.UNKNOWN and _supports(f, cause)),
            key=lambda f: -_weight_for(f, cause),
        )
        if w <= 0 or (cause is not Cause.UNKNOWN and (w < DECIDED or not group)):
            continue
        ranked.append(
            CauseScore(
                cause,
                w / mass,
                group[0].culprit if group else None,
                tuple(dict.fromkeys(e for f in group for e in f.evidence))[:8],
                tuple(dict.fromkeys(f.fix for f in group if f.fix))[:3],
                "; ".join(f.message for f in group[:3])
                if group
                else "none of the five causes is supported by the run's logged scalars",
            )
        )
    kinds = {f.data.get("kind") for f in findings}
    if not run.points and not run.evals:
        verdict = Verdict.INCONCLUSIVE
    elif tl.went_nonfinite or tl.first_bad_lr is not None:
        verdict = Verdict.NAN if ranked and ranked[0].cause is not Cause.UNKNOWN else Verdict.INCONCLUSIVE
    elif ranked and ranked[0].cause is not Cause.UNKNOWN and kinds & set(DIVERGING_KINDS):
        verdict = Verdict.DIVERGING
    else:
        verdict = Verdict.HEALTHY
    steps = []
    if tl.masked:
        steps.append("rerun with logging_nan_inf_filter=False: the Trainer's log replaced the NaN losses")
    if verdict is Verdict.NAN and ranked and ranked[0].cause is Cause.LOSS_FUNCTION:
        steps.append(
            "a NaN record looks the same in a loss log: scan the batch of the first non-finite step, or guard the "
            "loop with nandoctor.torch.NaNGuard to name the op that made it"
        )
    return Diagnosis(
        verdict=verdict,
        causes=ranked if verdict is not Verdict.HEALTHY else [],
        first_nonfinite_iteration=tl.onset_step if verdict is not Verdict.HEALTHY else None,
        inputs={
            "source": run.kind,
            "run_dir": str(run.path),
            "files": run.files,
            "args": run.args_source,
            "logged_steps": len(run.points),
            "eval_passes": len(run.evals),
            "notes": run.notes,
        },
        findings=findings,
        next_steps=steps,
    )


def diagnose_run(path: str | Path) -> Diagnosis:
    """Read a HF Trainer / Lightning / TensorBoard run folder (or a pasted console log) and diagnose it."""
    return diagnose_log(read_run(path))
