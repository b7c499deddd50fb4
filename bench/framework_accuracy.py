"""Top-1 cause on the framework ground truth (tests/fixtures/frameworks), tune and held-out apart.

    PYTHONPATH=src python3 bench/framework_accuracy.py [-v]

Each run folder was written by the real library (tools/framework_lab/) and names its
cause and split in expected.json; the split was fixed when the case was written.
Healthy runs count as a false alarm when the verdict is anything but healthy.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "frameworks"
FLOOR_TOP1 = 0.90
FLOOR_FALSE_ALARMS = 0


def triggered(run) -> bool:
    """Lab-side check, independent of the rules: did the injected cause make anything go wrong?
    (a non-finite logged value, a loss 100x its first value, a loss scale at or below 1)"""
    losses = [p.loss for p in run.points if p.loss is not None]
    values = [v for p in run.points for v in (p.loss, p.lr, p.grad_norm) if v is not None]
    values += [v for e in run.evals for v in e.metrics.values()]
    scales = [p.loss_scale for p in run.points if p.loss_scale is not None]
    finite = [x for x in losses if math.isfinite(x)]
    grew = bool(finite) and finite[0] > 0 and max(finite) >= 100 * finite[0]
    negative_lr = any(p.lr is not None and p.lr < 0 for p in run.points)
    return any(not math.isfinite(v) for v in values) or grew or negative_lr or any(s <= 1 for s in scales)


def predicted(d) -> str:
    if d.verdict.value == "healthy":
        return "healthy"
    return d.causes[0].cause.value if d.causes else "unknown"


def runner_up(d) -> str | None:
    return d.causes[1].cause.value if d.verdict.value != "healthy" and len(d.causes) > 1 else None


def main(argv: list[str]) -> int:
    from nandoctor.runs import diagnose_log, read_run

    verbose = "-v" in argv
    rows = []
    for exp in sorted(ROOT.glob("*/expected.json")):
        truth = json.loads(exp.read_text())
        run = read_run(exp.parent)
        if truth["cause"] != "healthy" and not triggered(run):
            print(f"excluded (the injection did not make the run fail): {exp.parent.name} [{truth['split']}]")
            continue
        d = diagnose_log(run)
        rows.append((exp.parent.name, truth["split"], truth["cause"], predicted(d), d.verdict.value, runner_up(d)))
    for split in ("tune", "held"):
        part = [r for r in rows if r[1] == split]
        bad = [r for r in part if r[2] != "healthy"]
        hits = sum(r[2] == r[3] for r in bad)
        hits2 = sum(r[2] in (r[3], r[5]) for r in bad)
        healthy = [r for r in part if r[2] == "healthy"]
        alarms = sum(r[3] != "healthy" for r in healthy)
        top1 = hits / len(bad) if bad else 0.0
        top2 = hits2 / len(bad) if bad else 0.0
        constant = max((sum(r[2] == c for r in bad) for c in {r[2] for r in bad}), default=0)
        print(
            f"{split:5s} top-1 cause {hits}/{len(bad)} = {top1:.0%} (floor {FLOOR_TOP1:.0%}; a constant answer, "
            f"the commonest cause, scores {constant}/{len(bad)} = {constant / max(len(bad), 1):.0%}); "
            f"top-2 {hits2}/{len(bad)} = {top2:.0%}; "
            f"false alarms on healthy {alarms}/{len(healthy)} (floor {FLOOR_FALSE_ALARMS})"
        )
        per_cause = ", ".join(
            f"{c} {sum(r[3] == c for r in bad if r[2] == c)}/{sum(r[2] == c for r in bad)}"
            for c in sorted({r[2] for r in bad})
        )
        print(f"      per cause: {per_cause}")
    for r in rows:  # held-out rows are never listed one by one: tuning looks at tune misses only
        if r[1] == "tune" and (verbose or r[2] != r[3]):
            print(("   " if r[2] == r[3] else "MISS"), *r)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
