"""The pictures of a diagnosis, as (caption, PNG bytes): what the HTML report embeds.

Each plot is drawn only when its input was read: the loss/lr trace needs a log, the
lr schedule a solver, the heat map a debug_info log, the pooling windows an empty-window
finding, the timeline of reads a data scan that found bad records. A plot that cannot be drawn is
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


def pooling_plot(data: dict) -> bytes | None:
    from nandoctor.report.input_plots import plot_pooling_windows

    return _png(plot_pooling_windows, data) if "axes" in data else None


def reads_plot(source, first_nonfinite: int | None) -> bytes | None:
    from nandoctor.report.input_plots import plot_bad_reads

    return _png(lambda out: plot_bad_reads(source, first_nonfinite, out))


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
    drawn = set()
    for f in gathered.findings:
        if f.code == "NAN101" and f.culprit not in drawn and len(drawn) < 3:
            png = pooling_plot(f.data)
            if png:
                drawn.add(f.culprit)
                plots.append(
                    (f"Pooling '{f.culprit}': each output's window over its input; red windows are empty", png)
                )
    if gathered.data is not None:
        onset = _first_nonfinite(gathered.trace)
        for src in gathered.data.sources:
            png = reads_plot(src, onset) if src.bad_records else None
            if png:
                plots.append((f"Bad records of {Path(src.path).name} on the timeline of reads", png))
    return plots


def _first_nonfinite(trace) -> int | None:
    from nandoctor.log.symptoms import first_nonfinite_point

    for seg in getattr(trace, "segments", None) or []:
        found = first_nonfinite_point(seg)
        if found is not None:
            return found[1].iteration
    return None
