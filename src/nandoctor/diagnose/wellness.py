"""What is wrong with a run that did not fail: clipping holding back an explosion, a loss at
chance (ln of the class count) or pinned at -ln(FLT_MIN), an lr decayed to 0.

Each is a warning on a healthy verdict, never a cause: the run did not go non-finite.
"""

from __future__ import annotations

import math

import numpy as np

from nandoctor.diagnose.gather import Gathered
from nandoctor.diagnose.timeline import Timeline
from nandoctor.log.columns import lr_arrays, train_arrays

SATURATED = 87.3365  # -ln(FLT_MIN): SoftmaxWithLoss's cap, p(label) = 0 for every sample
TAIL = 3  # displays at the end of the run a plateau must hold for
FLAT = 0.01  # relative spread of those displays that counts as flat
# without the net, a plateau at ln(N) is taken for chance only for the class counts of common data sets
COMMON_CLASS_COUNTS = frozenset({2, 10, 20, 21, 100, 200, 1000})


def _tail_losses(tl: Timeline) -> list[float]:
    seg = tl.seg
    if seg is None:
        return []
    _its, _lines, losses, finals = train_arrays(seg.train)
    losses = losses[~finals]
    losses = losses[np.isfinite(losses)]  # a None is a NaN here
    return losses[-TAIL:].tolist() if len(losses) >= TAIL else []


def _classes(g: Gathered) -> int | None:
    """num_output of the layer feeding a SoftmaxWithLoss in the TRAIN net, when the net was read."""
    net = g.train_net
    if net is None:
        return None
    by_top = {}
    for layer in net.phase_layers("TRAIN"):
        for top in layer.tops:
            by_top[top] = layer
    for layer in net.phase_layers("TRAIN"):
        if layer.type == "SoftmaxWithLoss" and layer.bottoms:
            src = by_top.get(layer.bottoms[0])
            n = _num_output(src) if src is not None else None
            if n:
                return n
    return None


def _num_output(layer) -> int | None:
    for name in ("inner_product_param", "convolution_param"):
        msg = layer.param(name)
        v = msg.get("num_output") if msg is not None else None
        if isinstance(v, (int, float)) and v > 0:
            return int(v)
    return None


def warnings(g: Gathered, tl: Timeline) -> list[str]:
    out: list[str] = []
    seg = tl.seg
    if seg is not None and seg.clips:
        norms = [c.norm for c in seg.clips if c.norm is not None]
        threshold = seg.clips[0].threshold
        text = f"gradient clipping scaled down {len(seg.clips)} updates"
        if norms and threshold is not None:
            text += f" (L2 norm up to {max(norms):.3g} > clip_gradients {threshold:g})"
        out.append(
            text + ": it is holding back a step that would explode without it; lower base_lr rather than rely on it"
        )
    tail = _tail_losses(tl)
    if tail and max(tail) - min(tail) <= FLAT * max(abs(min(tail)), 1e-12):
        level = sum(tail) / len(tail)
        if abs(level - SATURATED) < 1e-3:
            out.append(
                f"the loss is pinned at {SATURATED} = -ln(FLT_MIN): the softmax is saturated (p(label) = 0 for every "
                "sample, or the values are already NaN on a GPU build); the net has stopped learning"
            )
        else:
            n = _classes(g)
            chance = math.exp(level)
            if (n and abs(level - math.log(n)) < FLAT * math.log(n)) or (
                n is None
                and 2 <= chance <= 10000
                and abs(chance - round(chance)) < 0.02 * chance
                and round(chance) in COMMON_CLASS_COUNTS
            ):
                k = n or round(chance)
                out.append(
                    f"the loss sits at {level:.4g}, chance level ln({k}) = {math.log(k):.4g}: the net predicts every "
                    "class alike (all-zero weights, a dead layer, or labels it cannot see)"
                )
    if seg is not None:
        its, values, none = lr_arrays(seg.lr)
        its, values = its[~none], values[~none]
        if len(values) and values[0] > 0 and values[-1] == 0:
            zero = int(its[np.argmax(values == 0)])
            out.append(f"the lr reached 0 at iteration {zero}: from there on the run does not learn")
    return out
