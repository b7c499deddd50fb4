"""A PNG of a learning-rate schedule: log-scale rate, with NaN/inf, negative and zero
stretches shaded (a log axis cannot show them as values)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nandoctor.core.types import InputError

MAX_POINTS = 20_000  # points drawn; the schedule is sampled evenly plus every change point


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index ranges where mask is true."""
    if not mask.any():
        return []
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def plot_schedule(rates: np.ndarray, out: str | Path, *, title: str = "", changes: np.ndarray | None = None) -> Path:
    """Write the plot of ``rates`` (iteration i -> rates[i]) to ``out``; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = rates.size
    idx = np.unique(
        np.concatenate(
            (
                np.linspace(0, max(n - 1, 0), min(n, MAX_POINTS)).astype(np.int64),
                changes if changes is not None and changes.size <= MAX_POINTS else [],
            )
        )
    )
    idx = idx[(idx >= 0) & (idx < n)].astype(np.int64)
    x, y = idx, rates[idx].astype(np.float64)
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=100)
    good = np.isfinite(y) & (y > 0)
    if good.any():
        ax.plot(
            np.where(good, x, np.nan), np.where(good, y, np.nan), drawstyle="steps-post", color="tab:blue", label="lr"
        )
        ax.set_yscale("log")
    shades = (
        (~np.isfinite(rates), "tab:red", "NaN / inf"),
        (rates < 0, "tab:orange", "negative"),
        (rates == 0, "tab:gray", "zero"),
    )
    for mask, color, label in shades:
        for i, (a, b) in enumerate(_runs(mask)):
            ax.axvspan(a, max(b, a + 1), color=color, alpha=0.3, label=label if i == 0 else None)
    ax.set_xlim(0, max(n, 1))
    ax.set_xlabel("iteration")
    ax.set_ylabel("learning rate")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best")
    fig.tight_layout()
    path = Path(out)
    try:
        fig.savefig(path, format="png")
    except OSError as exc:
        raise InputError(f"cannot write the plot: {exc.strerror}", str(path)) from None
    finally:
        plt.close(fig)
    return path
