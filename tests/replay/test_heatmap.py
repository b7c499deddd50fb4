"""The debug_info heat map: PNG bytes, drawing into given axes, non-finite cells painted."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from nandoctor.report.debug_heatmap import NONFINITE_RGBA, debug_heatmap_png, plot_debug_heatmap
from tests.log.conftest import parse_text_log
from tests.replay.debuglog import DebugLog


def _trace():
    log = DebugLog()
    for it in range(6):
        bad = "nan" if it >= 4 else 0.2 * 10**it
        log.fwd("data", 0.5).fwd("conv1", bad).back("conv1", "data", 0.01).end(it)
    return parse_text_log(log.text())


def test_png_bytes_show_red_nonfinite_cells():
    png = debug_heatmap_png(_trace())
    assert png is not None and png.startswith(b"\x89PNG")
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)
    red = np.array(NONFINITE_RGBA[:3]) * 255
    assert (np.abs(pixels - red).sum(axis=1) < 10).sum() > 500  # the two nan cells of conv1


def test_no_debug_values_no_plot(tmp_path):
    plain = parse_text_log("I20261123 10:00:00.000000  4242 solver.cpp:239] Iteration 0, loss = 2.3\n")
    assert debug_heatmap_png(plain) is None
    assert plot_debug_heatmap(plain, tmp_path / "x.png") is None
    assert not (tmp_path / "x.png").exists()


def test_draws_into_given_axes_and_writes_files(tmp_path):
    fig, ax = plt.subplots()
    try:
        assert plot_debug_heatmap(_trace(), ax) is ax
        assert [t.get_text() for t in ax.get_yticklabels()] == ["data", "conv1"]
        assert len(ax.images) == 2  # magnitudes and the non-finite/zero overlay
    finally:
        plt.close(fig)
    out = plot_debug_heatmap(_trace(), tmp_path / "heat.png")
    assert out.read_bytes().startswith(b"\x89PNG")
