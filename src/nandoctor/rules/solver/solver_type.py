"""NAN208-NAN215: the solver type and its own parameters, as the solvers' constructors in Caffe's sgd_solvers check them."""

from __future__ import annotations

import difflib
import math

from nandoctor.config.cmath32 import protobuf_float
from nandoctor.config.solver import SOLVER_TYPES
from nandoctor.core.registry import Rule, register
from nandoctor.core.types import Bearing, Cause, Evidence, Fix, Severity
from nandoctor.rules.solver._shared import change_text, delete_field_edit, field_evidence, g, location, pretty, set_fix

ADAPTIVE = ("AdaGrad", "RMSProp", "Adam", "AdaDelta")  # the types that divide by sqrt(history) + delta
MOMENTUM_USERS = ("SGD", "Nesterov", "Adam", "AdaDelta")


def _num(solver, name: str) -> float | None:
    v = solver.value(name)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


@register
class BaseLrTooLarge(Rule):
    """
    ## What it detects
    A base_lr far above what the solver type tolerates: for SGD/Nesterov an effective
    step base_lr / (1 - momentum) above 2; for Adam, RMSProp and AdaGrad a base_lr above
    0.1; for AdaDelta above 10.

    ## Why it leads to NaN
    With momentum the steady-state step is lr / (1 - momentum) times the gradient; far
    above 1 every update overshoots, the loss oscillates with growing amplitude and the
    weights overflow to inf and NaN within tens of iterations.

    ## How to fix
    Lower base_lr (the fix targets an effective step of 0.1) or lower the momentum.

    ## Example
    `base_lr: 5` with `momentum: 0.9` (effective 50): NaN after ~140 iterations.
    `base_lr: 0.01`.
    """

    code = "NAN208"
    title = "base_lr absurdly large for the solver type"
    cause = Cause.GRADIENT_EXPLOSION
    bears = Bearing.PREDICTION
    severity = Severity.WARNING
    needs = ("solver",)

    def check(self, facts):
        s = facts.solver
        base, momentum = _num(s, "base_lr"), _num(s, "momentum")
        if base is None or momentum is None or not math.isfinite(base) or base <= 0:
            return
        kind = s.solver_type
        if kind in ("SGD", "Nesterov"):
            if not 0 <= momentum < 1:
                return  # NAN210
            effective = base / (1 - momentum)
            if effective <= 2:
                return
            new = pretty(0.1 * (1 - momentum))
            what = f"effective step base_lr / (1 - momentum) = {pretty(effective)}"
        elif kind in ("Adam", "RMSProp", "AdaGrad"):
            if base <= 0.1:
                return
            new, what = "0.001", f"base_lr {g(base)} for {kind}, whose steps are ~base_lr per weight"
        elif kind == "AdaDelta":
            if base <= 10:
                return
            new, what = "1", f"base_lr {g(base)} for AdaDelta (normally 1)"
        else:
            return
        yield self.finding(
            f"{what}: updates this large overshoot and explode",
            location(s, "base_lr"),
            evidence=field_evidence(s, "base_lr", "momentum"),
            fix=set_fix(s, {"base_lr": new}, change_text(s, "base_lr", new), safe=False),
            culprit="base_lr",
        )


@register
class AdaDeltaBaseLr(Rule):
    """
    ## What it detects
    An AdaDelta solver with base_lr other than 1.

    ## Why it leads to NaN
    It does not by itself. AdaDelta computes its own step size; Caffe's example uses
    base_lr 1.0 and the method has no learning rate. Other values scale every step.

    ## How to fix
    `base_lr: 1` unless the scaling is intended.

    ## Example
    `type: "AdaDelta"` with `base_lr: 0.01`: steps are 100x smaller than AdaDelta's.
    """

    code = "NAN209"
    title = "AdaDelta with base_lr other than 1"
    cause = Cause.LR_POLICY
    bears = Bearing.PREDICTION
    severity = Severity.INFO
    needs = ("solver",)

    def check(self, facts):
        s = facts.solver
        base = _num(s, "base_lr")
        if s.solver_type != "AdaDelta" or base is None or base == 1 or base > 10:
            return
        yield self.finding(
            f"AdaDelta with base_lr {g(base)}: AdaDelta is meant to run with base_lr 1",
            location(s, "base_lr", "type", "solver_type"),
            evidence=field_evidence(s, "base_lr"),
            fix=set_fix(s, {"base_lr": "1"}, change_text(s, "base_lr", "1"), safe=False),
            culprit="base_lr",
        )


@register
class MomentumOutOfRange(Rule):
    """
    ## What it detects
    momentum >= 1 or < 0 for SGD, Nesterov, Adam (beta1) or AdaDelta (decay), and for Adam
    momentum2 (beta2) >= 1 or < 0. Caffe checks none of these.

    ## Why it leads to NaN
    momentum >= 1 makes the velocity grow without bound (effective lr ~ lr / (1 - momentum)).
    Adam with momentum 1 divides by 1 - beta1^t = 0 (inf * 0 = NaN); momentum2 > 1 takes
    the square root of a negative number; momentum2 = 1 stops all updates.

    ## How to fix
    momentum 0.9 (SGD/Nesterov/Adam beta1), 0.95 for AdaDelta; momentum2 0.999.

    ## Example
    `momentum: 1.0` -> `momentum: 0.9`.
    """

    code = "NAN210"
    title = "momentum or momentum2 outside [0, 1)"
    cause = Cause.GRADIENT_EXPLOSION
    bears = Bearing.PREDICTION
    severity = Severity.ERROR
    needs = ("solver",)

    def check(self, facts):
        s = facts.solver
        kind = s.solver_type
        checks = [("momentum", "0.95" if kind == "AdaDelta" else "0.9")] if kind in MOMENTUM_USERS else []
        if kind == "Adam":
            checks.append(("momentum2", "0.999"))
        for name, new in checks:
            v = _num(s, name)
            if v is None or 0 <= v < 1:
                continue
            yield self.finding(
                f"{name} {g(v)} with {kind}: must lie in [0, 1)",
                location(s, name),
                severity=Severity.ERROR if not v < 1 else Severity.WARNING,
                evidence=field_evidence(s, name),
                fix=set_fix(s, {name: new}, change_text(s, name, new)),
                culprit=name,
            )


@register
class MomentumWithAdaptiveSolver(Rule):
    """
    ## What it detects
    A non-zero momentum with AdaGrad or RMSProp.

    ## Why it leads to NaN
    Caffe refuses the combination when it builds the solver:
    `Check failed: 0 == this->param_.momentum() (0 vs. 0.9) Momentum cannot be used with
    RMSProp.` and aborts before training starts.

    ## How to fix
    Remove momentum or set it to 0 (or use Adam, which has its own momentum).

    ## Example
    `type: "RMSProp"` with `momentum: 0.9` -> `momentum: 0`.
    """

    code = "NAN211"
    title = "momentum set with AdaGrad/RMSProp (Caffe aborts)"
    cause = Cause.GRADIENT_EXPLOSION
    bears = Bearing.PREDICTION
    severity = Severity.ERROR
    needs = ("solver",)

    def check(self, facts):
        s = facts.solver
        kind = s.solver_type
        v = _num(s, "momentum")
        if kind not in ("AdaGrad", "RMSProp") or v is None or v == 0:
            return
        fatal = f"Check failed: 0 == this->param_.momentum() (0 vs. {g(protobuf_float(v))}) Momentum cannot be used with {kind}."
        yield self.finding(
            f"Caffe will abort when it creates the solver with: {fatal}",
            location(s, "momentum"),
            evidence=[*field_evidence(s, "momentum"), Evidence(f"F... sgd_solvers.hpp] {fatal}", None, "computed")],
            fix=set_fix(s, {"momentum": "0"}, change_text(s, "momentum", "0")),
            culprit="momentum",
            data={"fatal": fatal},
        )


@register
class DeltaNotPositive(Rule):
    """
    ## What it detects
    `delta` <= 0 with AdaGrad, RMSProp, Adam or AdaDelta.

    ## Why it leads to NaN
    These solvers divide by sqrt(history) + delta. A weight whose gradient has been 0 so
    far (dead units, unused classes, zero-initialised biases) has history 0: 0/0 = NaN,
    which then spreads through the net. A negative delta can make the denominator 0 for
    non-zero histories too.

    ## How to fix
    Leave delta unset (1e-8) or use a small positive value (AdaDelta: 1e-6).

    ## Example
    `type: "Adam"`, `delta: 0` -> `delta: 1e-8`.
    """

    code = "NAN212"
    title = "delta <= 0 with an adaptive solver"
    cause = Cause.GRADIENT_EXPLOSION
    bears = Bearing.PREDICTION
    severity = Severity.ERROR
    needs = ("solver",)

    def check(self, facts):
        s = facts.solver
        v = _num(s, "delta")
        if s.solver_type not in ADAPTIVE or v is None or v > 0:
            return
        new = "1e-6" if s.solver_type == "AdaDelta" else "1e-8"
        yield self.finding(
            f"delta {g(v)} with {s.solver_type}: the update divides by sqrt(history) + delta, 0/0 = NaN",
            location(s, "delta"),
            evidence=field_evidence(s, "delta"),
            fix=set_fix(s, {"delta": new}, change_text(s, "delta", new)),
            culprit="delta",
        )


@register
class RmsDecayOutOfRange(Rule):
    """
    ## What it detects
    RMSProp with `rms_decay` outside [0, 1).

    ## Why it leads to NaN
    Caffe checks it when building the solver and aborts
    (`Check failed: this->param_.rms_decay() < 1 (1 vs. 1) rms_decay should lie between
    0 and 1.`). Without the check a decay above 1 makes the history negative: sqrt of a
    negative number is NaN.

    ## How to fix
    `rms_decay: 0.99` (Caffe's default) or another value in [0, 1).

    ## Example
    `rms_decay: 1.5` -> `rms_decay: 0.99`.
    """

    code = "NAN213"
    title = "RMSProp rms_decay outside [0, 1) (Caffe aborts)"
    cause = Cause.GRADIENT_EXPLOSION
    bears = Bearing.PREDICTION
    severity = Severity.ERROR
    needs = ("solver",)

    def check(self, facts):
        s = facts.solver
        v = _num(s, "rms_decay")
        if s.solver_type != "RMSProp" or v is None or 0 <= v < 1:
            return
        vt = g(protobuf_float(v))
        fatal = (
            f"Check failed: this->param_.rms_decay() >= 0 ({vt} vs. 0) rms_decay should lie between 0 and 1."
            if not v >= 0 and not math.isnan(v)
            else f"Check failed: this->param_.rms_decay() < 1 ({vt} vs. 1) rms_decay should lie between 0 and 1."
        )
        if math.isnan(v):
            fatal = fatal.replace("< 1", ">= 0").replace("vs. 1)", "vs. 0)")
        yield self.finding(
            f"Caffe will abort when it creates the solver with: {fatal}",
            location(s, "rms_decay"),
            evidence=field_evidence(s, "rms_decay"),
            fix=set_fix(s, {"rms_decay": "0.99"}, change_text(s, "rms_decay", "0.99")),
            culprit="rms_decay",
            data={"fatal": fatal},
        )


@register
class SolverTypeConflict(Rule):
    """
    ## What it detects
    Both the deprecated `solver_type` enum and the `type` string are set.

    ## Why it leads to NaN
    Caffe aborts while reading the solver: `Check failed: !solver_param->has_solver_type()
    || !solver_param->has_type() Failed to upgrade solver: old solver_type field (enum) and
    new type field (string) cannot be both specified in solver proto text.`

    ## How to fix
    Delete the `solver_type` line (the `type` string is the current field).

    ## Example
    `solver_type: SGD` with `type: "Adam"`: remove `solver_type: SGD`.
    """

    code = "NAN214"
    title = "solver_type enum and type string both set (Caffe aborts)"
    cause = Cause.GRADIENT_EXPLOSION
    bears = Bearing.PREDICTION
    severity = Severity.ERROR
    needs = ("solver",)

    # The line number is counted in BVLC's upgrade_proto.cpp (its "Attempting to upgrade" LOG is
    # line 1084 in the oracle build's output, CAFFE_VERDICTS.tsv; the CHECK sits 41 lines above).
    FATAL = (
        "upgrade_proto.cpp:1043] Check failed: !solver_param->has_solver_type() || !solver_param->has_type() "
        "Failed to upgrade solver: old solver_type field (enum) and new type field (string) cannot be both "
        "specified in solver proto text."
    )

    def check(self, facts):
        s = facts.solver
        if not s.solver_type_conflict:
            return
        edits = tuple(delete_field_edit(s, f) for f in s.fields("solver_type"))
        yield self.finding(
            f"Caffe will abort while reading the solver with: {self.FATAL}",
            location(s, "solver_type"),
            evidence=field_evidence(s, "solver_type", "type"),
            fix=Fix("delete the deprecated `solver_type` line (`type` is the current field)", edits),
            culprit="solver_type",
            data={"fatal": self.FATAL},
        )


@register
class UnknownSolverType(Rule):
    """
    ## What it detects
    A `type` string that is not a BVLC solver (SGD, Nesterov, AdaGrad, RMSProp, AdaDelta,
    Adam); names are case sensitive.

    ## Why it leads to NaN
    Caffe aborts when it creates the solver: `Unknown solver type: adam (known types:
    AdaDelta, AdaGrad, Adam, Nesterov, RMSProp, SGD)`.

    ## How to fix
    Spell the type as Caffe registers it.

    ## Example
    `type: "adam"` -> `type: "Adam"`.
    """

    code = "NAN215"
    title = "Unknown solver type (Caffe aborts)"
    cause = Cause.GRADIENT_EXPLOSION
    bears = Bearing.PREDICTION
    severity = Severity.ERROR
    needs = ("solver",)

    def check(self, facts):
        s = facts.solver
        if not s.is_set("type"):
            return
        kind = s.value("type")
        if not isinstance(kind, str) or kind in SOLVER_TYPES:
            return
        by_lower = {t.lower(): t for t in SOLVER_TYPES}
        new = by_lower.get(kind.lower()) or next(iter(difflib.get_close_matches(kind, SOLVER_TYPES, n=1)), "SGD")
        known = ", ".join(sorted(SOLVER_TYPES))
        fatal = f"Check failed: registry.count(type) == 1 (0 vs. 1) Unknown solver type: {kind} (known types: {known})"
        yield self.finding(
            f"Caffe will abort when it creates the solver with: {fatal}",
            location(s, "type"),
            evidence=field_evidence(s, "type"),
            fix=set_fix(s, {"type": f'"{new}"'}, change_text(s, "type", f'"{new}"'), safe=kind.lower() == new.lower()),
            culprit="type",
            data={"fatal": fatal},
        )
