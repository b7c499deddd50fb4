"""NAN206/NAN207: multistep stepvalues that are unsorted, beyond max_iter, or missing."""

from __future__ import annotations

from nandoctor.config import lr
from nandoctor.config.edits import insert_edit
from nandoctor.core.registry import Rule, register
from nandoctor.core.types import Bearing, Cause, Edit, Evidence, Fix, Severity
from nandoctor.rules.solver._shared import analysis, delete_field_edit, field_evidence, location, set_fix


@register
class StepvaluesOutOfOrder(Rule):
    """
    ## What it detects
    `multistep` stepvalues that are not strictly increasing, or that lie at or beyond
    max_iter (those never fire in `caffe train`; reported as info).

    ## Why it leads to NaN
    Caffe compares the iteration only with the *next* stepvalue in file order and
    advances at most one step per iteration, so `150, 50, 100` drops the rate at 150,
    151 and 152: the intended early drops never happen and the rate stays high for most
    of the run, which is where unstable runs blow up.

    ## How to fix
    List the stepvalues in increasing order, without duplicates, below max_iter.

    ## Example
    `stepvalue: 150  stepvalue: 50  stepvalue: 100` -> `50, 100, 150`.
    """

    code = "NAN206"
    title = "multistep stepvalues unsorted or beyond max_iter"
    cause = Cause.LR_POLICY
    bears = Bearing.PREDICTION
    severity = Severity.WARNING
    needs = ("solver",)

    def check(self, facts):
        a = analysis(facts)
        if a is None or a.abort is not None or a.params.policy != "multistep":
            return
        s, p = a.solver, a.params
        values = list(p.stepvalues)
        fields = s.fields("stepvalue")
        wanted = sorted(set(values))
        if values != wanted:
            actual = lr.multistep_advances(values)
            keep = wanted
            if a.horizon.runner == "train" and p.max_iter > 0:
                keep = [v for v in wanted if v < p.max_iter]  # the rest never fire
            edits = [
                Edit(
                    s.path,
                    *f.value.span,
                    s.doc.text[slice(*f.value.span)],
                    str(v),
                    f.value.start.line,
                    f.value.start.col,
                )
                for f, v in zip(fields, keep, strict=False)
            ]
            edits += [delete_field_edit(s, f) for f in fields[len(keep) :]]
            yield self.finding(
                f"multistep stepvalues {values} are not strictly increasing: Caffe steps at iterations "
                f"{actual}, not at {wanted}",
                s.doc.field_location(fields[0]),
                evidence=[Evidence(f"stepvalue: {f.value.value}", s.doc.field_location(f), "prototxt") for f in fields],
                fix=Fix(f"order the stepvalues: {', '.join(map(str, keep))}", tuple(edits)),
                culprit="stepvalue",
                data={"steps_at": actual},
            )
            return
        if a.horizon.runner == "train" and p.max_iter > 0:
            beyond = [f for f, v in zip(fields, values, strict=False) if v >= p.max_iter]
            if beyond:
                yield self.finding(
                    f"stepvalue {', '.join(str(f.value.value) for f in beyond)} >= max_iter {p.max_iter}: "
                    "never reached by caffe train",
                    s.doc.field_location(beyond[0]),
                    severity=Severity.INFO,
                    evidence=[
                        Evidence(f"stepvalue: {f.value.value}", s.doc.field_location(f), "prototxt") for f in beyond
                    ],
                    fix=Fix(
                        "remove the stepvalues that are never reached", tuple(delete_field_edit(s, f) for f in beyond)
                    ),
                    culprit="stepvalue",
                )


@register
class MultistepWithoutStepvalue(Rule):
    """
    ## What it detects
    `lr_policy: "multistep"` with no `stepvalue` (commented out, or `stepsize` written
    instead: multistep ignores stepsize).

    ## Why it leads to NaN
    The rate never drops: the run trains at base_lr to the end. Schedules tuned to drop
    the rate before it destabilises training (fine-tuning, large models) then diverge late
    in the run.

    ## How to fix
    Add the stepvalue lines (the fix proposes drops at 50% and 75% of the run, or at the
    multiples of the stepsize that was written), or use `lr_policy: "step"` with stepsize.

    ## Example
    ResNet-50 solver with `lr_policy: "multistep"`, `stepsize: 20000`: the rate stays at
    base_lr for all 200000 iterations.
    """

    code = "NAN207"
    title = "multistep without stepvalue"
    cause = Cause.LR_POLICY
    bears = Bearing.PREDICTION
    severity = Severity.WARNING
    needs = ("solver",)

    def check(self, facts):
        a = analysis(facts)
        if a is None or a.abort is not None or a.params.policy != "multistep" or a.params.stepvalues:
            return
        s, p = a.solver, a.params
        stop = a.horizon.stop
        if stop > 0:
            values = [stop // 2, stop * 3 // 4]
            why = "drops at 50% and 75% of the run"
        elif p.stepsize > 0:
            values = [p.stepsize * k for k in (1, 2, 3)]
            why = "drops at the stepsize that was written"
        else:
            values = []
        if values:
            first = insert_edit(s, "stepvalue", str(values[0]))
            more = "".join(f"{first.new[: first.new.index('stepvalue')]}stepvalue: {v}" for v in values[1:])
            edit = Edit(first.path, first.start, first.end, "", first.new + more, first.line, first.col)
            fix = Fix(f"add {', '.join(f'`stepvalue: {v}`' for v in values)} ({why})", (edit,), safe=False)
        else:
            fix = set_fix(s, {"lr_policy": '"fixed"'}, 'use `lr_policy: "fixed"`: that is what runs now', safe=True)
        note = f"; stepsize {p.stepsize} is ignored by multistep" if s.is_set("stepsize") else ""
        yield self.finding(
            f"lr_policy multistep has no stepvalue: the rate stays at base_lr for the whole run{note}",
            location(s, "lr_policy"),
            evidence=field_evidence(s, "lr_policy", "gamma", *(("stepsize",) if s.is_set("stepsize") else ())),
            fix=fix,
            culprit="stepvalue",
        )
