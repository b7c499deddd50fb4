"""The HTML report of a real Caffe run per cause, opened in headless Chromium as a reader would:
no console errors, every plot decoded and not blank as displayed, the cause, culprit and fix laid
out legibly, and nothing wider than a phone's screen. A screenshot per cause is kept (desktop
and phone side by side) in $NANDOCTOR_ARTIFACTS/report-screenshots, or pytest's temp folder.

Skipped when no Chromium is installed (CI installs Debian's `chromium`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from nandoctor.cli.main import main
from tests.conftest import corpus_path
from tests.diagnose.browser import HEIGHT, WIDTHS, find_chromium, open_report

# one real run per cause (the corpus' expected.json says which), and the plots its report must show
RUNS = {
    "r02": ("bad_input", ["Loss (each output)", "lr schedule", "debug_info", "timeline of reads"]),
    "r03": ("pooling", ["Loss (each output)", "lr schedule", "Pooling 'pool1'"]),
    "r04": ("loss_function", ["Loss (each output)", "lr schedule", "debug_info"]),
    "r63": ("gradient_explosion", ["Loss (each output)", "lr schedule", "debug_info"]),
    "r24": ("lr_policy", ["Loss (each output)", "lr schedule"]),
}
SMALLEST_FONT = 12  # CSS px a reader can still read on a phone


@pytest.fixture(scope="module")
def chromium() -> str:
    browser = find_chromium()
    if browser is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    return browser


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    base = os.environ.get("NANDOCTOR_ARTIFACTS")
    folder = Path(base) if base else tmp_path_factory.getbasetemp()
    return folder / "report-screenshots"


@pytest.mark.parametrize("run", sorted(RUNS))
def test_report_as_a_reader_sees_it(run, chromium, screenshots, tmp_path, capsys):
    cause, plots = RUNS[run]
    folder = corpus_path("caffe-runs", run)
    assert json.loads((folder / "expected.json").read_text())["expected_cause"] == cause
    report = tmp_path / "report.html"
    assert main(["diagnose", str(folder), "--html", str(report)]) == 1
    seen = open_report(chromium, report, tmp_path, screenshots / f"{cause}-{run}.png")

    assert seen.console == [], "the page logs nothing to the console"
    assert set(seen.frames) == set(WIDTHS), "both frames loaded and measured"
    for name, frame in seen.frames.items():
        where = f"{run} at {name} width"
        assert frame["errors"] == [], where
        assert frame["viewport"] == WIDTHS[name] and frame["scroll_width"] <= frame["viewport"], (
            f"{where}: no sideways scrolling"
        )
        assert frame["verdict"]["text"] == "nan", where
        assert frame["cause"]["text"].startswith(cause), where
        assert frame["culprit"]["text"] != "-" and frame["fix"]["text"], where
        for part in ("verdict", "cause", "culprit", "fix"):
            box = frame[part]
            assert not box["hidden"] and box["width"] > 0 and box["height"] > 0, f"{where}: {part} is laid out"
            assert box["left"] >= 0 and box["right"] <= frame["viewport"], f"{where}: {part} fits the screen"
            assert box["font"] >= SMALLEST_FONT, f"{where}: {part} is legible"
        alts = [img["alt"] for img in frame["images"]]
        assert len(alts) == len(plots) and all(any(p in a for a in alts) for p in plots), (where, alts)
        for img in frame["images"]:
            assert min(img["natural"]) > 100, f"{where}: {img['alt']} decoded"
            assert img["left"] >= 0 and img["right"] <= frame["viewport"], f"{where}: {img['alt']} fits"
            assert img["colours"] >= 8 and img["inked"] > 0.005, f"{where}: {img['alt']} is not blank"

    shot = Image.open(seen.screenshot).convert("L")
    assert shot.size == (sum(WIDTHS.values()) + 16 * (len(WIDTHS) + 1), HEIGHT)
    assert ImageStat.Stat(shot).stddev[0] > 20, "the screenshot shows a rendered page"


def test_healthy_report_says_so_without_a_cause(chromium, tmp_path, capsys):
    report = tmp_path / "report.html"
    assert main(["diagnose", str(corpus_path("caffe-runs", "r01")), "--html", str(report)]) == 0
    seen = open_report(chromium, report, tmp_path, tmp_path / "healthy.png")
    assert seen.console == []
    for frame in seen.frames.values():
        assert frame["verdict"]["text"] == "healthy" and frame["culprit"] is None
        assert "no cause of non-finite values found" in frame["cause"]["text"]
        assert frame["scroll_width"] <= frame["viewport"] and frame["images"]
