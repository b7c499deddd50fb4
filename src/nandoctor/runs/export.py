"""A framework run's scalars as CSV tables and a PNG plot (``nandoctor log RUN --csv/--plot``).

``<name>.train.csv`` has one row per logged step (step, epoch, loss, lr, grad_norm,
loss_scale, and the file:line or tag@step it was read from); ``<name>.eval.csv`` one row
per evaluation pass with a column per metric. Non-finite values are written as ``nan``,
``inf``, ``-inf``. The plot draws |loss| and |grad_norm| (log scale) over the lr, with the
first non-finite step marked, like the Caffe log plot.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from nandoctor.core.safeio import OutputDir, safe_name, write_file
from nandoctor.core.types import Location
from nandoctor.runs.record import TRAIN_FIELDS, RunLog
from nandoctor.runs.timeline import build_timeline


def cell(v: float | None) -> str:
    if v is None:
        return ""
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.9g}"


def where_text(where: Location | None) -> str:
    if where is None:
        return ""
    if where.record:
        return f"{Path(where.path).name}:{where.record}"
    return f"{Path(where.path).name}:{where.line}" if where.line else Path(where.path).name


def stem(run: RunLog) -> str:
    return safe_name(Path(run.path).name or run.kind, run.kind)


def write_run_csv(run: RunLog, folder: str | Path) -> list[Path]:
    """The train and eval tables in ``folder`` (created; the run's own files are never replaced)."""
    out = OutputDir(folder, run.files, what="CSV folder")
    name = stem(run)
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(["step", *TRAIN_FIELDS, "source"])
    for p in run.points:
        w.writerow([p.step, *(cell(getattr(p, f)) for f in TRAIN_FIELDS), where_text(p.where)])
    written = [out.write_text(f"{name}.train.csv", buf.getvalue())]
    metrics = list(dict.fromkeys(k for e in run.evals for k in e.metrics))
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(["step", *metrics, "source"])
    for e in run.evals:
        w.writerow([e.step, *(cell(e.metrics.get(k)) for k in metrics), where_text(e.where)])
    written.append(out.write_text(f"{name}.eval.csv", buf.getvalue()))
    return written


def _drawable(pairs) -> tuple[list, list]:
    xs, ys = [], []
    for x, y in pairs:
        if y is not None and math.isfinite(y) and y != 0:
            xs.append(x)
            ys.append(abs(y))
    return xs, ys


def plot_run(run: RunLog, target: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tl = build_timeline(run)
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(10, 7), height_ratios=(3, 1))
    series = [
        ("loss", _drawable((p.step, p.loss) for p in run.points if p not in tl.masked), 1.5),
        ("grad_norm", _drawable((p.step, p.grad_norm) for p in run.points), 0.8),
        ("loss_scale", _drawable((p.step, p.loss_scale) for p in run.points), 0.8),
    ]
    for metric in dict.fromkeys(k for e in run.evals for k in e.metrics):
        series.append((metric, _drawable((e.step, e.metrics.get(metric)) for e in run.evals), 1.0))
    for label, (xs, ys), width in series:
        if xs:
            top.plot(xs, ys, label=label, linewidth=width, marker="o" if len(xs) <= 30 else None, markersize=3)
    lx, ly = _drawable((p.step, p.lr) for p in run.points)
    if lx:
        bottom.plot(lx, ly, label="lr", color="tab:green")
    if tl.masked:
        top.plot([p.step for p in tl.masked], [1] * len(tl.masked), "x", color="red",
                 transform=top.get_xaxis_transform(), label="NaN hidden by logging_nan_inf_filter")  # fmt: skip
    onset = tl.onset_step
    if onset is not None:
        for ax in (top, bottom):
            ax.axvline(onset, color="red", linestyle="--", linewidth=1)
        top.annotate(f"first non-finite: step {onset}", xy=(onset, 1), xycoords=("data", "axes fraction"),
                     xytext=(4, -14), textcoords="offset points", color="red", fontsize=8)  # fmt: skip
    for ax, label in ((top, "|value| (log)"), (bottom, "lr")):
        if ax.lines and ax.dataLim.height > 0:
            ax.set_yscale("log")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper right")
    bottom.set_xlabel("step")
    top.set_title(f"{Path(run.path).name} ({run.kind})")
    fig.tight_layout()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=110)
    finally:
        plt.close(fig)
    return write_file(target, buf.getvalue(), run.files, what="plot")
