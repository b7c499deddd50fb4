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

LABELLED_RUNS = 8  # beyond this many runs, each series is one collection with one legend entry
BEST_LEGEND_POINTS = 50_000  # matplotlib's "best" legend place costs time in every point drawn


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


def _run_series(seg) -> tuple[list[tuple[str, list, list, bool]], tuple[list, list]]:
    """The run's (name, xs, ys, is_loss) series of the top panel, and its lr (xs, ys)."""
    top = [("loss (smoothed)", *_points((p.iteration, p.loss) for p in seg.train), True)]
    for name in seg.output_names():
        pairs = [(p.iteration, o.value) for p in seg.train for o in p.outputs if o.name == name]
        top.append((name, *_points(pairs), False))
    return top, _points((p.iteration, p.value) for p in seg.lr)


def plot_trace(trace: Trace, out: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_lr) = plt.subplots(2, 1, sharex=True, figsize=(10, 7), height_ratios=(3, 1))
    runs = [(seg, *_run_series(seg)) for seg in trace.segments]
    firsts = [(seg.index, found[1].iteration) for seg in trace.segments if (found := first_nonfinite_point(seg))]
    if len(runs) <= LABELLED_RUNS:
        _draw_each_run(ax_loss, ax_lr, runs, firsts, multi=len(runs) > 1)
    else:
        _draw_pooled(ax_loss, ax_lr, runs, firsts)
    points = sum(len(xs) for _, top, lr in runs for xs in [lr[0], *(t[1] for t in top)])
    for ax, label in ((ax_loss, "|loss|, |output|"), (ax_lr, "lr")):
        if ax.dataLim.height > 0 or ax.lines:
            ax.set_yscale("log")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best" if points <= BEST_LEGEND_POINTS else "upper right")
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


def _draw_each_run(ax_loss, ax_lr, runs, firsts, multi: bool) -> None:
    for seg, top, (lx, ly) in runs:
        tag = f" (run {seg.index + 1})" if multi else ""
        for name, xs, ys, is_loss in top:
            if xs:
                ax_loss.plot(xs, ys, label=f"{name}{tag}", linewidth=1.5 if is_loss else 0.8,
                             alpha=1.0 if is_loss else 0.8, marker=_marker(xs))  # fmt: skip
        if lx:
            ax_lr.plot(lx, ly, label=f"lr{tag}", color="tab:green")
    for _, it in firsts:
        for ax in (ax_loss, ax_lr):
            ax.axvline(it, color="red", linestyle="--", linewidth=1)
        ax_loss.annotate(f"first non-finite: {it}", xy=(it, 1), xycoords=("data", "axes fraction"),
                         xytext=(4, -14), textcoords="offset points", color="red", fontsize=8)  # fmt: skip


def _draw_pooled(ax_loss, ax_lr, runs, firsts) -> None:
    """Many runs (restarts, concatenated logs): one collection and one legend entry per series."""
    import matplotlib
    from matplotlib.collections import LineCollection

    pooled: dict[str, list] = {}  # top panel: series name -> one polyline per run
    lrs = []
    for _, top, (lx, ly) in runs:
        for name, xs, ys, _ in top:
            if xs:
                pooled.setdefault(name, []).append(list(zip(xs, ys, strict=True)))
        if lx:
            lrs.append(list(zip(lx, ly, strict=True)))
    green = matplotlib.colors.to_hex("tab:green")
    cycle = [c for c in matplotlib.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
             if matplotlib.colors.to_hex(c) != green] or ["C0"]  # fmt: skip
    panels = [(ax_loss, name, lines, cycle[k % len(cycle)]) for k, (name, lines) in enumerate(pooled.items())]
    if lrs:
        panels.append((ax_lr, "lr", lrs, "tab:green"))  # green is the lr's, as with few runs
    for ax, name, lines, color in panels:
        width = 1.5 if name == "loss (smoothed)" else 0.8
        ax.add_collection(LineCollection(lines, colors=color, linewidths=width, alpha=0.6,
                                         label=f"{name} ({len(lines)} runs)"))  # fmt: skip
        single = [line[0] for line in lines if len(line) == 1]  # a run that died after one display
        if single:
            ax.plot(*zip(*single, strict=True), "o", color=color, markersize=3)
        ax.autoscale_view()
    if firsts:
        its = sorted({it for _, it in firsts})
        for ax in (ax_loss, ax_lr):
            ax.vlines(its, 0, 1, transform=ax.get_xaxis_transform(), colors="red", linestyles="--", linewidths=0.6)
        run, it = min(firsts, key=lambda f: (f[1], f[0]))
        ax_loss.annotate(f"first non-finite: {it} (run {run + 1}; {len(firsts)} runs in all)", xy=(it, 1),
                         xycoords=("data", "axes fraction"), xytext=(4, -14), textcoords="offset points",
                         color="red", fontsize=8)  # fmt: skip
