"""What state the run is in (nan, diverging, will fail, healthy, inconclusive), when it first
went non-finite, what is wrong with a run that did not fail, and the steps that would settle
an uncertain answer."""

from __future__ import annotations

from nandoctor.core.types import Cause, CauseScore, Severity, Verdict
from nandoctor.core.votes import PREDICTED, Signal
from nandoctor.diagnose.gather import Gathered
from nandoctor.diagnose.signals import DIVERGING_GROWTH, missing_source
from nandoctor.diagnose.timeline import Timeline


def first_nonfinite(g: Gathered, tl: Timeline, sigs: list[Signal]) -> int | None:
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


def aborted(g: Gathered) -> bool:
    return any(f.data.get("kind") == "check_failed" and f.cause is not Cause.UNKNOWN for f in g.findings)


def diverging(g: Gathered, tl: Timeline) -> bool:
    kinds = {f.data.get("kind") for f in g.findings}
    growth = tl.loss_growth()
    return bool({"lr_negative", "lr_increasing"} & kinds) or (growth is not None and growth >= DIVERGING_GROWTH)


def silent_log(g: Gathered, tl: Timeline) -> bool:
    """A log with no training line at all (empty, binary, another program's output) shows nothing."""
    return g.trace is not None and tl.last_display is None and not tl.went_nonfinite and not aborted(g)


def refused_config(g: Gathered) -> bool:
    """A config error protobuf's parser stops at: Caffe cannot even read the file, so it cannot run."""
    return any(
        f.severity is Severity.ERROR and "protobuf_message" in f.data and "caffe_stage" not in f.data
        for f in g.findings
    )


def nothing_to_diagnose(g: Gathered, tl: Timeline, state: Verdict) -> str | None:
    """Why there is no answer to give, or None. A log that shows no training (empty, binary,
    another program's output, cut before the first iteration) is no evidence of health; the
    solver a cut log prints may be cut too, so only config files can still predict a failure."""
    if g.trace is None or not silent_log(g, tl) or tl.first_nonfinite_lr is not None:
        return None
    if state is Verdict.WILL_FAIL and g.configs is not None and not g.configs_from_log:
        return None
    return (
        "nothing to diagnose: no training iteration line (Iteration N, loss = ...) in this log; "
        "pass the log Caffe wrote to stderr"
    )


def verdict(g: Gathered, tl: Timeline, ranked: list[CauseScore], totals: dict[Cause, float]) -> Verdict:
    state = _verdict(g, tl, ranked, totals)
    if state in (Verdict.HEALTHY, Verdict.INCONCLUSIVE) and refused_config(g):
        return Verdict.WILL_FAIL  # never milder than the worst finding: Caffe refuses the file
    return state


def _verdict(g: Gathered, tl: Timeline, ranked: list[CauseScore], totals: dict[Cause, float]) -> Verdict:
    top = ranked[0] if ranked else None
    decided = top is not None and top.cause is not Cause.UNKNOWN
    if silent_log(g, tl) and tl.first_nonfinite_lr is None and g.configs is None:
        return Verdict.INCONCLUSIVE
    if tl.went_nonfinite or tl.first_nonfinite_lr is not None or aborted(g):
        return Verdict.NAN if decided else Verdict.INCONCLUSIVE
    if g.trace is not None and diverging(g, tl):
        return Verdict.DIVERGING
    predicted = any(w >= PREDICTED for c, w in totals.items() if c is not Cause.UNKNOWN)
    if predicted and decided:
        return Verdict.WILL_FAIL
    if (g.trace is None or silent_log(g, tl)) and any(w > 0 for c, w in totals.items() if c is not Cause.UNKNOWN):
        return Verdict.INCONCLUSIVE  # risks, and no run to show whether they strike
    return Verdict.HEALTHY


def next_steps(g: Gathered, tl: Timeline, verdict: Verdict, ranked: list[CauseScore]) -> list[str]:
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
    if silent_log(g, tl):
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
