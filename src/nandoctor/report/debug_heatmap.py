"""Heat map of a debug_info log: per-layer magnitudes, layers x iterations, log colour scale.

Left panel: the largest mean |top data| of each layer per displayed iteration (forward);
right panel: the largest mean |diff| (bottom and param gradients, backward). Rows follow
the net's forward order, so an explosion shows as a colour front moving through the
rows and a forward origin as the first red row. Non-finite cells (nan/inf) are painted
red, zeros grey, missing cells stay white; the layer debug_analysis blames is labelled
in red and the first non-finite iteration has a dashed line.

``plot_debug_heatmap(trace, path_or_axes)`` writes a PNG (path) or draws the forward
panel into a matplotlib Axes; ``debug_heatmap_png(trace)`` returns PNG bytes for the
HTML report (None when the log has no debug_info values). matplotlib uses Agg.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

from nandoctor.log.debug_analysis import layer_matrix, localize
from nandoctor.log.trace import Segment, Trace

NONFINITE_RGBA = (0.85, 0.0, 0.0, 1.0)
ZERO_RGBA = (0.8, 0.8, 0.8, 1.0)


def debug_segment(trace: Trace) -> Segment | None:
    """The run to draw: the first with a non-finite debug value, else the first with any."""
    with_debug = [s for s in trace.segments if len(s.debug)]
    for seg in with_debug:
        if seg.debug.first_nonfinite("train") is not None:
            return seg
    return with_debug[0] if with_debug else None


def _grid(names, its, cells, rows: list[str]):
    """Value grid (NaN where missing/zero/non-finite) plus masks for non-finite and zero cells."""
    import numpy as np

    index = {n: k for k, n in enumerate(names)}
    values = np.full((len(rows), len(its)), np.nan)
    bad = np.zeros(values.shape, bool)
    zero = np.zeros(values.shape, bool)
    for r, name in enumerate(rows):
        k = index.get(name)
        if k is None:
            continue
        for c, v in enumerate(cells[k]):
            if v is None:
                continue
            if not math.isfinite(v):
                bad[r, c] = True
            elif v == 0:
                zero[r, c] = True
            else:
                values[r, c] = v
    return values, bad, zero


def _draw(ax, seg: Segment, direction: str, rows: list[str], its: list[int], culprit: str | None, labels: bool):
    import numpy as np
    from matplotlib.colors import LogNorm

    names, _, cells = layer_matrix(seg, direction)
    values, bad, zero = _grid(names, its, cells, rows)
    finite = values[np.isfinite(values)]
    if finite.size:
        lo, hi = float(finite.min()), float(finite.max())
        norm = LogNorm(vmin=lo, vmax=hi if hi > lo else lo * 10)
        image = ax.imshow(np.ma.masked_invalid(values), aspect="auto", interpolation="nearest", cmap="viridis",
                          norm=norm)  # fmt: skip
    else:
        image = None
    overlay = np.zeros((*values.shape, 4))
    overlay[zero] = ZERO_RGBA
    overlay[bad] = NONFINITE_RGBA
    ax.imshow(overlay, aspect="auto", interpolation="nearest")
    ax.set_title({"forward": "forward: mean |top data|", "backward": "backward: mean |diff|"}[direction], fontsize=9)
    ax.set_xlabel("iteration")
    step = max(1, len(its) // 10)
    ticks = list(range(0, len(its), step))
    ax.set_xticks(ticks, [str(its[t]) for t in ticks], fontsize=7)
    if labels:
        ax.set_yticks(range(len(rows)), rows, fontsize=_font(len(rows)))
    else:
        ax.tick_params(labelleft=False)  # the panels share their rows (sharey): labels once, on the left
    if labels and culprit in rows:
        ax.get_yticklabels()[rows.index(culprit)].set_color("red")
    first = seg.debug.first_nonfinite("train")
    if first is not None and first.iteration in its:
        ax.axvline(its.index(first.iteration) - 0.5, color="red", linestyle="--", linewidth=1)
    return image


def _font(n: int) -> float:
    return 8 if n <= 30 else max(3.0, 8 - (n - 30) / 15)


def _layout(seg: Segment) -> tuple[list[str], list[int]]:
    fwd_names, its, _ = layer_matrix(seg, "forward")
    back_names, _, _ = layer_matrix(seg, "backward")
    rows = fwd_names + [n for n in back_names if n not in fwd_names]
    return rows, its


def _prepare(trace: Trace):
    """(segment, rows, iterations, localization) of the debug run, or None without debug values."""
    seg = debug_segment(trace)
    if seg is None:
        return None
    rows, its = _layout(seg)
    if not rows or not its:
        return None
    return seg, rows, its, localize(trace, seg)


def _save(fig, target) -> None:
    try:
        fig.savefig(target, format="png", dpi=110)
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def plot_debug_heatmap(trace: Trace, path_or_axes: Any) -> Any:
    """Draw the heat map: into a PNG file (returns its Path) or an Axes (forward panel; returns the Axes).

    Returns None when the trace has no debug_info values."""
    prepared = _prepare(trace)
    if prepared is None:
        return None
    seg, rows, its, loc = prepared
    culprit = loc.layer if loc is not None else None
    if not isinstance(path_or_axes, (str, Path)):
        _draw(path_or_axes, seg, "forward", rows, its, culprit, True)
        return path_or_axes
    out = Path(path_or_axes)
    _save(_figure(seg, rows, its, culprit, loc), out)
    return out


def debug_heatmap_png(trace: Trace) -> bytes | None:
    """The heat map as PNG bytes (for the HTML report), or None without debug_info values."""
    prepared = _prepare(trace)
    if prepared is None:
        return None
    seg, rows, its, loc = prepared
    buf = io.BytesIO()
    _save(_figure(seg, rows, its, loc.layer if loc else None, loc), buf)
    return buf.getvalue()


def _figure(seg: Segment, rows, its, culprit, loc):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    height = min(40.0, max(3.5, 0.2 * len(rows) + 1.5))
    width = min(24.0, max(9.0, 0.08 * len(its) * 2 + 5))
    fig, (ax_f, ax_b) = plt.subplots(1, 2, sharey=True, figsize=(width, height), layout="constrained")
    img_f = _draw(ax_f, seg, "forward", rows, its, culprit, True)
    img_b = _draw(ax_b, seg, "backward", rows, its, culprit, False)
    for ax, img in ((ax_f, img_f), (ax_b, img_b)):
        if img is not None:
            fig.colorbar(img, ax=ax, shrink=0.8, pad=0.01)
    handles = [Patch(color=NONFINITE_RGBA, label="nan / inf"), Patch(color=ZERO_RGBA, label="0")]
    fig.legend(handles=handles, loc="outside lower right", fontsize=7, ncols=2, frameon=False)
    title = "debug_info magnitudes"
    if loc is not None and loc.layer:
        title += f": culprit {loc.layer} ({loc.phase}, iteration {loc.iteration})"
        if loc.loss_head:
            title += f", loss head {loc.loss_head}"
    fig.suptitle(title, fontsize=10)
    return fig
