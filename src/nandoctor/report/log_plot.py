"""PNG plot of a trace: loss and every train output (top) and lr (bottom) against iteration.

Both value axes are logarithmic (magnitudes, since losses can be negative); non-finite
points cannot be drawn, so the first non-finite iteration of each run is marked with a
vertical red line instead. matplotlib runs with the Agg backend (no display needed).
"""

from __future__ import annotations

import math
from pathlib import Path

from nandoctor.core.types import InputError
from nandoctor.log.symptoms import first_nonfinite_point
from nandoctor.log.trace import Trace


def _points(pairs):
    xs, ys = [], []
    for x, y in pairs:
        if y is not None and math.isfinite(y) and y != 0:
            xs.append(x)
            ys.append(abs(y))
    return xs, ys


def _marker(xs) -> str | None:
    """Short series (a run that died after a display or two) would be invisible as bare lines."""
    return "o" if len(xs) <= 30 else None


def plot_trace(trace: Trace, out: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_lr) = plt.subplots(2, 1, sharex=True, figsize=(10, 7), height_ratios=(3, 1))
    multi = len(trace.segments) > 1
    for seg in trace.segments:
        tag = f" (run {seg.index + 1})" if multi else ""
        xs, ys = _points((p.iteration, p.loss) for p in seg.train)
        if xs:
            ax_loss.plot(xs, ys, label=f"loss (smoothed){tag}", linewidth=1.5, marker=_marker(xs))
        for name in seg.output_names():
            pairs = [(p.iteration, o.value) for p in seg.train for o in p.outputs if o.name == name]
            xs, ys = _points(pairs)
            if xs:
                ax_loss.plot(xs, ys, label=f"{name}{tag}", linewidth=0.8, alpha=0.8, marker=_marker(xs))
        xs, ys = _points((p.iteration, p.value) for p in seg.lr)
        if xs:
            ax_lr.plot(xs, ys, label=f"lr{tag}", color="tab:green")
        found = first_nonfinite_point(seg)
        if found is not None:
            it = found[1].iteration
            for ax in (ax_loss, ax_lr):
                ax.axvline(it, color="red", linestyle="--", linewidth=1)
            ax_loss.annotate(f"first non-finite: {it}", xy=(it, 1), xycoords=("data", "axes fraction"),
                             xytext=(4, -14), textcoords="offset points", color="red", fontsize=8)  # fmt: skip
    for ax, label in ((ax_loss, "|loss|, |output|"), (ax_lr, "lr")):
        if ax.lines and any(len(line.get_xdata()) for line in ax.lines):
            ax.set_yscale("log")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
    ax_lr.set_xlabel("iteration")
    ax_loss.set_title(Path(trace.path).name)
    fig.tight_layout()
    target = Path(out)
    try:
        fig.savefig(target, dpi=110)
    except OSError as exc:
        raise InputError(f"cannot write the plot: {exc.strerror}", str(target)) from None
    finally:
        plt.close(fig)
    return target
