"""NAN003: a field or enum value that only a well-known fork of Caffe defines; NAN019: the fork a file needs."""

from __future__ import annotations

from nandoctor.config import validate
from nandoctor.config.forks import FORK_LR_POLICIES, chosen_flavor, flavor_of_fork, severity_for
from nandoctor.config.textformat import Scalar
from nandoctor.core.registry import Rule, register
from nandoctor.core.types import Cause, Evidence, Location, Severity
from nandoctor.rules.config._schema_rule import SchemaRule


@register
class ForkExtensionField(SchemaRule):
    """
    ## What it detects
    A field BVLC Caffe does not have but a well-known fork adds: SSD's solver `eval_type` /
    `ap_version` and layer `prior_box_param`..., py-faster-rcnn's `smooth_l1_loss_param` /
    `roi_pooling_param`, SegNet's `bn_param` / `upsample_param` / `class_weighting`,
    SphereFace's `margin_inner_product_param`, DeepLab's `interp_param`, the BatchNorm
    fillers of the cifar BN fork, NVCaffe and Intel Caffe solver fields; and enum values a
    fork adds (Intel Caffe's `engine: MKLDNN`, py-faster-rcnn's V1 `type: ROI_POOLING`).
    Reported once per field or value (with the number of places) as information; an error
    only when `--caffe FLAVOR` names a Caffe that lacks it (`--caffe bvlc`, or another fork).

    ## Why it leads to NaN
    It does not by itself: the fork that defines the field reads it. It matters for the
    diagnosis because BVLC Caffe rejects the file, and because the fork's own layers and
    solver options (warm-up, loss scaling, class weights) follow rules of that fork.

    ## How to fix
    Run the file with the fork it was written for, or remove the fork's layers and fields
    to run it with BVLC Caffe.

    ## Example
    `eval_type: "detection"` in a solver: fine for weiliu89/caffe (SSD), rejected by BVLC Caffe.
    """

    code = validate.FORK_EXTENSION
    title = "Field added by a fork of Caffe"
    severity = Severity.INFO


@register
class ForkFile(Rule):
    """
    ## What it detects
    A file written for a fork of Caffe, recognised from what only that fork defines: its layer
    types (SSD's PriorBox, py-faster-rcnn's ROIPooling, SphereFace's MarginInnerProduct,
    SegNet's BN, DeepLab's Interp), its fields (`prior_box_param`, NVCaffe's `rampup_lr`,
    Intel Caffe's `plateau_winsize`), its enum values (Intel Caffe's `engine: MKLDNN`, the V1
    `type: ROI_POOLING`) and its lr policies (`plateau`, `multifixed`). Said once per file,
    with the first construct that gives the fork away. Without `--caffe` it is a warning
    (BVLC Caffe refuses the file); with `--caffe FLAVOR` naming that fork it is information,
    and with another flavor (`--caffe bvlc`) an error, as is every construct of the file that
    the named Caffe lacks.

    ## Why it leads to NaN
    It does not by itself. Run with BVLC Caffe the file stops at parsing or at building the
    net; run with its fork, the fork's layers and policies follow that fork's rules, and the
    other findings are about that run.

    ## How to fix
    Run the file with the fork it names and say so with `--caffe FLAVOR` (e.g. `nandoctor lint
    --caffe ssd train.prototxt`), or remove the fork's layers and fields to run it on BVLC Caffe.

    ## Example
    `lr_policy: "plateau"` with `plateau_winsize: 10000`: written for Intel Caffe;
    `nandoctor lint --caffe intel solver.prototxt` reports it as information only.
    """

    code = "NAN019"
    title = "File written for a fork of Caffe"
    cause = Cause.UNKNOWN
    severity = Severity.WARNING
    needs = ("documents",)

    def check(self, facts):
        flavor = chosen_flavor(facts.options)
        for doc, root in facts.documents:
            used = fork_constructs(doc, root)
            if not used:
                continue
            names = list(dict.fromkeys(fork for fork, _, _ in used))
            first = {fork: (what, loc) for fork, what, loc in reversed(used)}
            shown = "; ".join(f"{fork} ({first[fork][0]} at line {first[fork][1].line})" for fork in names)
            if flavor is None:
                severity = Severity.WARNING
                ids = " or ".join(f for f in (flavor_of_fork(n) for n in names) if f)
                said = f"BVLC Caffe would refuse it (run it with that fork; `--caffe {ids}` says so)"
            else:
                severity = min((severity_for(n, flavor) for n in names), key=lambda s: s.rank)
                said = f"the Caffe you named (--caffe {flavor}) " + (
                    "provides it" if severity is Severity.INFO else "lacks it"
                )
            yield self.finding(
                f"this file is written for {shown}; {said}",
                first[names[0]][1],
                severity=severity,
                evidence=[Evidence(f"{fork}: {what}", loc, "prototxt") for fork, what, loc in used[:5]],
                culprit=names[0],
                data={"forks": names, "flavor": flavor},
            )


def fork_constructs(doc, root: str) -> list[tuple[str, str, Location]]:
    """(fork, what, where) of every fork-only construct of a document, in file order."""
    out = []
    for f in validate.validate_cached(doc, root):
        fork = f.data.get("fork")
        if fork is None or f.location is None:
            continue
        if "value" in f.data:
            what = f"`{f.data['value']}`"
        elif "field" in f.data:
            what = f"`{f.data['field']}`"
        else:
            what = f'layer type "{f.culprit}"'
        out.append((fork, what, f.location))
    if root == "SolverParameter":
        policy = doc.root.last("lr_policy")
        if policy is not None and isinstance(policy.value, Scalar) and policy.value.value in FORK_LR_POLICIES:
            pos = policy.value.start
            where = Location(doc.path, pos.line, pos.col)
            out.append((FORK_LR_POLICIES[policy.value.value], f'lr_policy "{policy.value.value}"', where))
    out.sort(key=lambda item: (item[2].line or 0, item[2].col or 0))
    return out
