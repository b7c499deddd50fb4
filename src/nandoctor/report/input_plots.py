"""Pictures of where the bad values come from: a pooling's windows over its input, and the
bad records of a data set on the timeline of Caffe's reads.

Both are drawn from what the rules already worked out (the NAN101 finding's axes, the data
scan's first reads), so the picture and the text cannot disagree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

_COLORS = {"ok": "#3f6ad8", "empty": "#c62828", "image": "#e3e8ef", "pad": "#fbe3c8"}


def plot_pooling_windows(data: dict[str, Any], out: str | Path) -> Path:
    """One panel per spatial axis: the input cells (padding shaded) and each output's window as a
    bar; windows that cover no input cell, the ones that give 0/0 or -FLT_MAX, are red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle

    axes = data["axes"]
    fig, panels = plt.subplots(1, 2, figsize=(11, 3.6), squeeze=True)
    for panel, name in zip(panels, ("h", "w"), strict=True):
        a = axes[name]
        size, kernel, stride, pad, n_out = a["size"], a["kernel"], a["stride"], a["pad"], a["out"]
        right = max(size + pad, (n_out - 1) * stride - pad + kernel)
        panel.add_patch(Rectangle((-pad, -1.2), pad, 0.8, color=_COLORS["pad"]))
        panel.add_patch(Rectangle((size, -1.2), max(0, right - size), 0.8, color=_COLORS["pad"]))
        for x in range(size):
            panel.add_patch(Rectangle((x, -1.2), 1, 0.8, facecolor=_COLORS["image"], edgecolor="#8a94a6", lw=0.5))
        for i in range(n_out):
            start = i * stride - pad
            empty = min(start + kernel, size) <= max(start, 0)
            color = _COLORS["empty"] if empty else _COLORS["ok"]
            panel.add_patch(Rectangle((start, i), kernel, 0.7, color=color, alpha=0.85))
            panel.text(start + kernel + 0.15, i + 0.35, "empty" if empty else "", va="center", fontsize=8, color=color)
        panel.set_xlim(-pad - 0.5, right + 1.5)
        panel.set_ylim(n_out + 0.2, -1.5)
        panel.set_yticks(range(n_out))
        panel.set_ylabel("output index")
        panel.set_xlabel(f"input {'row' if name == 'h' else 'column'} (size {size})")
        panel.set_title(f"{'height' if name == 'h' else 'width'}: kernel {kernel}, stride {stride}, pad {pad}")
    fig.legend(
        handles=[
            Patch(color=_COLORS["image"], label="input cell"),
            Patch(color=_COLORS["pad"], label="padding / beyond the input"),
            Patch(color=_COLORS["ok"], label="window"),
            Patch(color=_COLORS["empty"], label="empty window (no input cell)"),
        ],
        loc="lower center",
        ncol=4,
        frameon=False,
    )
    fig.suptitle(f"Pooling '{data['layer']}' ({data['pool']}) on a {data['input_hw'][0]}x{data['input_hw'][1]} input")
    fig.tight_layout(rect=(0, 0.08, 1, 0.95))
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return Path(out)


def plot_bad_reads(source, first_nonfinite: int | None, out: str | Path) -> Path:
    """Record index against iteration: the band of records each iteration reads, the bad
    records at the iteration Caffe first reads them, and the first non-finite iteration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bad = [i for i in source.bad_records if i.read is not None and i.read.iteration is not None]
    if not bad:
        raise ValueError("no bad record with a known first read")
    last = max([i.read.iteration for i in bad] + ([first_nonfinite] if first_nonfinite is not None else []))
    stop = max(10, int(last * 1.3) + 2)
    fig, ax = plt.subplots(figsize=(11, 4.2))
    batch = source.batch_size or 0
    total = source.total or source.records or 0
    # batches per iteration, as the scan counted them (iter_size, several data layers)
    ratio = next((i.read.batch / i.read.iteration for i in bad if i.read.batch and i.read.iteration), 1.0)
    if batch and total:
        for it in range(stop + 1):
            first = int(it * ratio) * batch
            for k in range(max(1, round(ratio))):
                lo = (first + k * batch) % total
                hi = min(lo + batch, total)
                ax.plot([it, it], [lo, hi], color="#9fb3e6", lw=3, solid_capstyle="butt")
    ax.scatter(
        [i.read.iteration for i in bad], [i.index for i in bad], color="#c62828", marker="x", s=60, zorder=3,
        label="bad record, at its first read",
    )  # fmt: skip
    for k, i in enumerate(bad[:6]):  # neighbouring records share a read: stagger their labels
        ax.annotate(
            str(i.record),
            (i.read.iteration, i.index),
            xytext=(6, 4 - 11 * (k % 3)),
            textcoords="offset points",
            fontsize=8,
        )
    if first_nonfinite is not None:
        ax.axvline(
            first_nonfinite, color="#c62828", ls="--", lw=1, label=f"first non-finite iteration ({first_nonfinite})"
        )
    ax.plot([], [], color="#9fb3e6", lw=3, label=f"records read (batch_size {batch or '?'})")
    ax.set_xlim(-0.5, stop + 0.5)
    ax.set_xlabel("iteration")
    ax.set_ylabel("record index (read order)")
    name = Path(source.path.rstrip("/")).name
    ax.set_title(f"{name}: the bad records on the timeline of reads ({source.phase or 'TRAIN'})")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return Path(out)
