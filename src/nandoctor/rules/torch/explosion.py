"""NAN610/NAN611: gradients that grew by orders of magnitude; a GradScaler that kept collapsing."""

from __future__ import annotations

from nandoctor.core.registry import Rule, register
from nandoctor.core.types import Bearing, Cause, Evidence, Fix, Severity
from nandoctor.rules.torch.common import LR_GROWTH, exploding


def _fmt(values) -> str:
    return ", ".join(v if isinstance(v, str) else f"{v:.3g}" for v in values)


@register
class TorchGradientExplosion(Rule):
    """
    ## What it detects
    The total gradient norm, kept by the guard for the preceding steps, grew by at least
    two orders of magnitude before the first non-finite step, while the batch was
    finite and the lr finite and not growing.

    ## Why it leads to NaN
    With too large a step the weights overshoot, the next gradient is larger, and the
    feedback loop multiplies the norm every step until activations or the update
    overflow float32 (3.4e38) and become inf, then NaN (inf - inf, 0 * inf).

    ## How to fix
    Clip the gradient norm (``torch.nn.utils.clip_grad_norm_(model.parameters(),
    max_norm)`` between ``backward()`` and ``step()``; the guard suggests ``max_norm``
    from the healthy steps) and/or lower the lr; add normalisation to the layers whose
    parameters grew most.

    ## Example
    SGD with ``lr=0.5`` on unnormalised regression inputs: the norm goes 3, 40, 900, ...
    and the loss is inf after ~30 steps.
    """

    code = "NAN610"
    title = "Gradient norm grew by orders of magnitude"
    cause = Cause.GRADIENT_EXPLOSION
    bears = Bearing.GUARD
    severity = Severity.ERROR
    needs = ("torch",)

    def check(self, facts):
        f = facts.torch
        if not exploding(f) or f.bad_batch or not f.lr_is_sane():
            return
        lr_growth = f.lr_growth() or 1.0
        top = f.top_params[:3]
        evidence = [Evidence(f"total gradient norm over the last steps: {_fmt(f.grad_norms[-8:])}")]
        evidence += [
            Evidence(f"{p['name']}: gradient norm {p['baseline']:.3g} -> {p['norm']:.3g} ({p['growth']:.3g}x)")
            for p in top
        ]
        if f.nonfinite_params:
            evidence.append(Evidence(f"weights already non-finite: {', '.join(f.nonfinite_params[:5])}"))
        setting = what_to_change(f)
        evidence.append(Evidence(setting["why"]))
        clip = f.suggested_max_norm
        clipping = (
            f"torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm={clip:.3g}) before optimizer.step() "
            "(from the healthy steps' norms)"
            if clip
            else "torch.nn.utils.clip_grad_norm_ before optimizer.step()"
        )
        yield self.finding(
            f"gradient norm grew {f.growth:.3g}x before step {f.step}: {setting['culprit']} is too large",
            evidence=evidence,
            fix=Fix(f"{setting['fix']}; or clip gradients: {clipping}", safe=False),
            culprit=setting["culprit"],
            data={
                "confidence": 0.55 if lr_growth >= LR_GROWTH else 0.9,
                "growth": f.growth,
                "max_norm": clip,
                "change": setting.get("change"),
                "fastest_growing": top[0]["name"] if top else None,
            },
        )


def _down(x: float) -> float:
    """A round suggestion at or below x (one significant digit)."""
    text = f"{x:.1e}"
    mantissa, exponent = text.split("e")
    return float(f"{int(float(mantissa))}e{exponent}") or float(f"{x:.1g}")


def what_to_change(f) -> dict:
    """The setting to change, from what the loss and the optimizer show, and to what.

    Plain gradient descent on a curvature L diverges when lr * L > 2, and then the
    gradient grows by r = lr * L - 1 per step; lr / (1 + r) puts lr * L back at 1. A
    constant weight w on a loss term scales its curvature by w, so the same factor
    applies to w. That is the estimate; the guard cannot know the curvature better.
    """
    r = f.growth_per_step if f.growth_per_step and f.growth_per_step > 1 else 9.0
    factor = 1.0 / (1.0 + r)
    top = f.top_params[0] if f.top_params else {}
    group = top.get("group") if top.get("group") is not None else 0
    groups = (f.optimizer or {}).get("groups") or [{}]
    hp = groups[group] if group < len(groups) else {}
    kind = (f.optimizer or {}).get("type", "the optimizer")
    weighted = [t for t in f.loss_terms if abs(float(t.get("weight", 1))) >= 10]
    growth = f"the gradient norm grew {r:.3g}x per step lately"
    if weighted:
        term = max(weighted, key=lambda t: abs(float(t["weight"])))
        w = float(term["weight"])
        name = term.get("op") or "a term"
        where = f" in {term['source']['function']}" if term.get("source") else ""
        new = _down(abs(w) * factor) * (1 if w > 0 else -1)
        return {
            "culprit": f"loss term {name} weighted {w:g}{where}",
            "fix": f"lower the weight of the loss term {name}{where} from {w:g} to {new:g}",
            "why": f"the loss adds {name} x {w:g}: its gradient is {abs(w):g}x its own; {growth}",
            "change": {"setting": "loss_weight", "term": name, "from": w, "to": new},
        }
    momentum = hp.get("momentum")
    lr = hp.get("lr")
    if isinstance(momentum, int | float) and momentum >= 0.95:
        return {
            "culprit": f"optimizer.param_groups[{group}]['momentum']",
            "fix": f"lower momentum of {kind} param group {group} from {momentum:g} to 0.9",
            "why": f"momentum {momentum:g} multiplies the effective step by {1 / (1 - momentum):.3g}; {growth}",
            "change": {"setting": "momentum", "group": group, "from": momentum, "to": 0.9},
        }
    # Weight decay that overshoots on its own explodes its group whichever weight grew fastest
    # (the decayed layer feeds the others), so every group is looked at, not only the top one's.
    decays = [
        (g["lr"] * g["weight_decay"], i, g)
        for i, g in enumerate(groups)
        if isinstance(g.get("weight_decay"), int | float) and isinstance(g.get("lr"), int | float) and g["lr"] > 0
    ]
    worst = max(decays, default=None, key=lambda d: d[0])
    if kind == "SGD" and worst is not None and worst[0] >= 0.5:
        product, i, g = worst
        new = _down(0.1 / g["lr"])
        return {
            "culprit": f"optimizer.param_groups[{i}]['weight_decay']",
            "fix": f"lower weight_decay of param group {i} from {g['weight_decay']:g} to {new:g}",
            "why": f"lr x weight_decay = {product:.3g} in param group {i}: an update of that size on its own "
            "overshoots (above 2 it flips the weights' sign and grows them every step)",
            "change": {"setting": "weight_decay", "group": i, "from": g["weight_decay"], "to": new},
        }
    if isinstance(lr, int | float) and lr > 0:
        new = _down(lr * factor)
        return {
            "culprit": f"optimizer.param_groups[{group}]['lr']",
            "fix": f"lower lr of {kind} param group {group} from {lr:g} to {new:g}",
            "why": f"param group {group} holds {top.get('name', 'the fastest-growing weight')}; {growth}",
            "change": {"setting": "lr", "group": group, "from": lr, "to": new},
        }
    culprit = top.get("name")
    return {"culprit": culprit, "fix": "lower the lr", "why": growth}


@register
class TorchScaleCollapse(Rule):
    """
    ## What it detects
    A mixed-precision ``GradScaler`` skipped many steps in a row (or its scale fell
    below the guard's floor): every step produced inf/NaN gradients even after the
    scale was cut again and again. Isolated skipped steps are normal and not reported.

    ## Why it leads to NaN
    The scaler halves its scale on each overflow; if gradients overflow at any scale
    they are non-finite for a reason other than scaling (an op overflowing float16, an
    exploding gradient), and training stalls or goes NaN once the scale underflows.

    ## How to fix
    Find the producer the replay names; run that op in float32 (``autocast(enabled=False)``
    around it), clip gradients, or lower the lr.

    ## Example
    A softmax over logits of magnitude 1e5 under float16 autocast: every step overflows,
    the scale drops from 65536 to 1e-10 in 50 steps.
    """

    code = "NAN611"
    title = "GradScaler scale keeps collapsing"
    cause = Cause.GRADIENT_EXPLOSION
    bears = Bearing.GUARD
    severity = Severity.WARNING
    needs = ("torch",)

    def check(self, facts):
        f = facts.torch
        if f.trigger != "scale_collapse" or not f.scaler:
            return
        s = f.scaler
        culprit = f.nonfinite_grads[0] if f.nonfinite_grads else None
        yield self.finding(
            f"GradScaler skipped {s.get('consecutive_skips')} steps in a row; scale is now {s.get('scale')}",
            evidence=[
                Evidence(f"scale over the last steps: {_fmt(s.get('scale_history', [])[-10:])}"),
                Evidence(f"parameters with non-finite gradients: {', '.join(f.nonfinite_grads[:5]) or '-'}"),
            ],
            fix=Fix(
                "run the op the replay names in float32 (torch.autocast(..., enabled=False)), clip "
                "gradients or lower the lr",
                safe=False,
            ),
            culprit=culprit,
            data={"confidence": 0.6},
        )


ADAPTIVE = ("Adam", "AdamW", "Adamax", "NAdam", "RAdam", "Adagrad", "RMSprop", "Adadelta", "SparseAdam")


@register
class TorchUpdateMadeWeightsNonFinite(Rule):
    """
    ## What it detects
    At the failing step some weights were already NaN/inf although every gradient and lr
    the guard checked before the previous updates was finite and the gradient norm was
    not growing: the optimizer's update itself produced them. With an adaptive optimizer
    the finding shows each group's ``eps``.

    ## Why it leads to NaN
    Adaptive optimizers divide by ``sqrt(v) + eps``. A weight whose gradients have all
    been 0 (an unused embedding row, a gated-off branch, a zero-initialised bias behind a
    dead unit) has ``v = 0``, so with ``eps = 0`` (or an eps that underflows to 0 in
    float16) its update is 0 / 0 = NaN. Every forward pass through that weight is then
    NaN. (Caffe's ``delta <= 0``, NAN212, is the same failure.)

    ## How to fix
    Keep ``eps`` positive (1e-8 in float32; >= 1e-7 or keep optimizer state in float32
    under float16), and check custom optimizers for divisions by running statistics.

    ## Example
    ``torch.optim.Adam(model.parameters(), lr=1e-3, eps=0)`` with a parameter that
    received a zero gradient: after the first step it is NaN.
    """

    code = "NAN652"
    title = "The optimizer update made weights non-finite"
    cause = Cause.GRADIENT_EXPLOSION
    bears = Bearing.GUARD
    severity = Severity.ERROR
    needs = ("torch",)

    def check(self, facts):
        f = facts.torch
        if not f.nonfinite_params or exploding(f) or not f.lr_is_sane():
            return
        optimizer = f.optimizer or {}
        kind = optimizer.get("type", "the optimizer")
        groups = optimizer.get("groups", [])
        bad_eps = [i for i, g in enumerate(groups) if isinstance(g.get("eps"), int | float) and g["eps"] <= 0]
        adaptive = kind in ADAPTIVE
        evidence = [Evidence(f"weights already non-finite before this step: {', '.join(f.nonfinite_params[:6])}")]
        evidence += [Evidence(f"{kind} param group {i}: {groups[i]}") for i in range(min(len(groups), 3))]
        if adaptive and bad_eps:
            fix = Fix(f"set eps > 0 in {kind} (e.g. eps=1e-8) for param group(s) {bad_eps}", safe=False)
            message = (
                f"{kind} with eps = {groups[bad_eps[0]]['eps']}: a weight with zero gradient history got a 0/0 update"
            )
        else:
            fix = Fix(f"check {kind}'s update for divisions by running statistics (eps) and overflow", safe=False)
            message = (
                f"{kind}'s update wrote NaN/inf into {f.nonfinite_params[0]} although gradients and lr were finite"
            )
        yield self.finding(
            message,
            evidence=evidence,
            fix=fix,
            culprit=f.nonfinite_params[0],
            data={"confidence": 0.9 if adaptive and bad_eps else 0.6, "eps_groups": bad_eps},
        )
