"""The front ends of a diagnosis: text, SARIF, the self-contained HTML report (opened in headless
Chromium by test_report_browser.py) and ``nandoctor demo`` on the bundled examples."""

from __future__ import annotations

import json
import re

import pytest

from nandoctor.cli.demo import ORDER, examples_dir
from nandoctor.cli.main import main
from tests.conftest import corpus_path
from tests.diagnose.helpers import diagnose_json


def test_html_report_is_self_contained_with_plots(tmp_path, capsys):
    run = corpus_path("caffe-runs", "r63")
    out = tmp_path / "report.html"
    assert main(["diagnose", str(run), "--html", str(out)]) == 1
    html = out.read_text()
    assert "<script" not in html
    assert not re.search(r"""(src|href)=['"](https?:|//)""", html), "no external assets"
    images = re.findall(r"src='data:image/png;base64,", html)
    assert len(images) >= 3, "loss/lr trace, lr schedule and the debug_info heat map"
    assert "loss_bbox.loss_weight" in html and "gradient_explosion" in html
    assert "train.log:354" in html, "evidence carries its log line"


def test_sarif_names_the_prototxt_findings(capsys):
    run = corpus_path("caffe-runs", "r03")
    capsys.readouterr()
    assert main(["diagnose", str(run), "--format", "sarif"]) == 1
    sarif = json.loads(capsys.readouterr().out)
    results = sarif["runs"][0]["results"]
    nan101 = [r for r in results if r["ruleId"] == "NAN101"]
    assert nan101
    loc = nan101[0]["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"].endswith("train_val.prototxt")
    assert loc["region"]["startLine"] > 0


def test_text_report_shows_verdict_cause_evidence_and_fix(capsys):
    run = corpus_path("caffe-runs", "r24")
    capsys.readouterr()
    assert main(["diagnose", str(run)]) == 1
    out = capsys.readouterr().out
    assert "training went NaN" in out
    assert "lr_policy" in out and "max_iter" in out
    assert "solver.prototxt:8" in out, "the prototxt field with its line"
    assert "train.log:" in out, "log lines with their numbers"


@pytest.mark.parametrize("name", ORDER)
def test_bundled_examples_diagnose_as_named(name, capsys):
    code, report = diagnose_json(capsys, str(examples_dir() / name))
    if name == "healthy":
        assert (code, report["verdict"]) == (0, "healthy")
        return
    assert code == 1
    assert report["verdict"] == "nan"
    assert report["causes"][0]["cause"] == name
    assert report["causes"][0]["fixes"]


def test_demo_runs_every_example(capsys):
    assert main(["demo", "--brief"]) == 0
    out = capsys.readouterr().out
    for name in ORDER:
        assert name in out
    assert "NO" not in out
