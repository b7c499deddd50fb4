"""The pictures of a diagnosis, as (caption, PNG bytes): what the HTML report embeds.

Each plot is drawn only when its input was read: the loss/lr trace needs a log, the
lr schedule a solver, the heat map a debug_info log. A plot that cannot be drawn is
left out rather than failing the report.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from nandoctor.core.types import InputError

MAX_SCHEDULE = 2_000_000  # iterations drawn for the lr schedule (the plot has ~1000 pixels anyway)


def _png(draw, *args, **kwargs) -> bytes | None:
    with tempfile.TemporaryDirectory(prefix="nandoctor-plot-") as tmp:
        out = Path(tmp) / "plot.png"
        try:
            draw(*args, out, **kwargs)
        except (InputError, ValueError, OverflowError):
            return None
        return out.read_bytes() if out.exists() else None


def trace_plot(trace) -> bytes | None:
    from nandoctor.report.log_plot import plot_trace

    return _png(plot_trace, trace)


def schedule_plot(solver, iters: int | None = None) -> bytes | None:
    from nandoctor.config import lr
    from nandoctor.report.lr_plot import plot_schedule

    try:
        stop = min(lr.horizon(solver, iters).stop, MAX_SCHEDULE)
        rates = lr.schedule(solver, stop, checks=False)
    except (lr.LrAbort, ValueError, InputError):
        return None
    if rates.size == 0:
        return None
    policy = solver.value("lr_policy") or "fixed"
    return _png(lambda r, out: plot_schedule(r, out, title=f"lr schedule ({policy})"), rates)


def debug_plot(trace) -> bytes | None:
    from nandoctor.report.debug_heatmap import debug_heatmap_png

    try:
        return debug_heatmap_png(trace)
    except (InputError, ValueError):
        return None


def diagnosis_plots(gathered) -> list[tuple[str, bytes]]:
    """Every plot the gathered inputs allow, in reading order."""
    plots: list[tuple[str, bytes]] = []
    if gathered.trace is not None:
        png = trace_plot(gathered.trace)
        if png:
            plots.append(("Loss (each output) and lr against iteration; the first non-finite iteration is marked", png))
    if gathered.solver is not None:
        png = schedule_plot(gathered.solver, gathered.options.get("iters"))
        if png:
            plots.append(("The lr schedule Caffe computes from the solver (float32, exact)", png))
    for dt in gathered.debug_traces:
        png = debug_plot(dt)
        if png:
            plots.append(
                (
                    f"debug_info: mean |value| per layer and iteration ({Path(dt.path).name}); non-finite cells marked",
                    png,
                )
            )
    return plots
