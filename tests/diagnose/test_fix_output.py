"""``--fix OUTDIR``: patched copies plus a diff; applied to the run, the findings that made the
diagnosis are gone. Originals are never touched."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from nandoctor.cli.main import main
from nandoctor.diagnose.engine import diagnose
from nandoctor.diagnose.inputs import discover
from tests.conftest import caffe_runs

RUNS = {r.name: r for r in caffe_runs()}
CONFIG_FIXED = ["r03", "r60", "r11", "r24", "r55", "r59", "r05", "r58", "r63", "r61"]
DATA_FIXED = ["r02", "r21", "r56", "r64"]


def _run(name: str) -> Path:
    if name not in RUNS:
        pytest.skip("corpus not available")
    return RUNS[name]


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


def _copy_run(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest, ignore=shutil.ignore_patterns("expected.json", "*debug*"))
    return dest


def _config_codes(report: dict, cause: str) -> set[tuple[str, str | None]]:
    """The config findings (NAN0xx-NAN2xx) of the diagnosed cause that are not informational."""
    return {
        (f["code"], f.get("culprit"))
        for f in report["findings"]
        if f["cause"] == cause and f["severity"] != "info" and int(f["code"][3:]) < 300
    }


@pytest.mark.parametrize("name", CONFIG_FIXED)
def test_fix_removes_the_config_findings_behind_the_diagnosis(name, tmp_path, capsys):
    run = _copy_run(_run(name), tmp_path / "run")
    before = _digest(run)
    capsys.readouterr()
    assert main(["diagnose", str(run), "--fix", str(tmp_path / "fixed"), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert _digest(run) == before, "the run folder is read-only"
    top = report["causes"][0]
    fixed = tmp_path / "fixed"
    written = sorted(p.name for p in fixed.iterdir())
    assert "fix.diff" in written
    diff = (fixed / "fix.diff").read_text()
    assert diff.startswith("--- ") and "\n+++ " in diff
    removed = "".join(line for line in diff.splitlines(True) if line.startswith("-") and not line.startswith("---"))
    added = "".join(line for line in diff.splitlines(True) if line.startswith("+") and not line.startswith("+++"))
    for fix in top["fixes"]:
        for e in fix["edits"]:
            assert e["old"] in removed and e["new"].strip() in added
    causing = _config_codes(report, top["cause"])
    # put the patched copies in place of the originals (in the copy) and diagnose again
    for p in fixed.iterdir():
        if p.name != "fix.diff":
            shutil.copy(p, run / p.name)
    options = {"iters": report["inputs"].get("iters")} if report["inputs"].get("iters") else None
    after, _g = diagnose(discover(None, solver=run / "solver.prototxt"), options=options)
    left = {(f.code, f.culprit) for f in after.findings if f.severity.value != "info"}
    assert not (causing & left), f"still there after the fix: {causing & left}"
    if name in ("r03", "r60", "r11", "r55", "r59"):
        assert after.verdict.value == "healthy", [(c.cause.value, c.culprit) for c in after.causes]


@pytest.mark.parametrize("name", DATA_FIXED)
def test_bad_input_fix_points_the_net_at_a_clean_copy_that_scans_clean(name, tmp_path, capsys):
    run = _copy_run(_run(name), tmp_path / "run")
    capsys.readouterr()
    assert main(["diagnose", str(run), "--fix", str(tmp_path / "fixed"), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    top = report["causes"][0]
    assert top["cause"] == "bad_input"
    fix = top["fixes"][0]
    assert "scan-data" in fix["description"] and "--clean" in fix["description"]
    (edit,) = fix["edits"]
    assert edit["path"].endswith("train_val.prototxt")
    new_source = json.loads(edit["new"])
    old_source = json.loads(edit["old"])
    # do what the fix says: write the clean copy from the run folder, then use the patched net
    import os

    cwd = os.getcwd()
    os.chdir(run)
    try:
        assert main(
            ["scan-data", old_source, "--clean", new_source.split("/")[0] if "/" in new_source else new_source]
        ) in (0, 1)
    finally:
        os.chdir(cwd)
    capsys.readouterr()
    assert (run / new_source).exists()
    shutil.copy(tmp_path / "fixed" / "train_val.prototxt", run / "train_val.prototxt")
    after, g = diagnose(discover(None, solver=run / "solver.prototxt"))
    assert g.data is not None and g.data.sources
    assert not [f for f in after.findings if f.code.startswith("NAN4") and f.severity.value != "info"]
    assert after.verdict.value == "healthy"


def test_fix_from_log_alone_writes_nothing_and_says_so(tmp_path, capsys):
    run = _run("r03")
    assert main(["diagnose", str(run / "train.log"), "--fix", str(tmp_path / "fixed")]) == 1
    out = capsys.readouterr().out
    assert "No file edit" in out
    assert not (tmp_path / "fixed").exists()


def test_fix_folder_must_not_be_the_input_folder(tmp_path, capsys):
    run = _copy_run(_run("r03"), tmp_path / "run")
    assert main(["diagnose", str(run), "--fix", str(run)]) == 2
    assert "never overwritten" in capsys.readouterr().err
