"""The real Caffe runs: bad records found exactly as expected.json says, nothing on the others."""

from __future__ import annotations

import json
import re

import pytest

from nandoctor.core.registry import Facts, run_rules, select_rules
from nandoctor.core.types import Severity
from nandoctor.data.api import scan_net
from tests.conftest import caffe_runs

RUNS = caffe_runs()


def expected_records(expected: dict) -> tuple[set[str], int | None]:
    """Records named by the culprit text, and the iteration the description says first reads them."""
    culprit = expected.get("culprit") or ""
    records: set[str] = set()
    m = re.match(r"(\S+\.h5):(\w+)\[(\d+)(?::(\d+))?\]", culprit)
    if m:
        name, top, a, b = m.group(1), m.group(2), int(m.group(3)), m.group(4)
        records = {f"{name}:{top}[{i}]" for i in range(a, int(b) if b else a + 1)}
    else:
        records = set(re.findall(r"\b\d{8}\b", culprit))
    said = re.search(r"iteration (\d+)", expected.get("what_was_done", ""))
    return records, int(said.group(1)) if said else None


def scan(run):
    report = scan_net(str(run / "solver.prototxt"), workers=0, progress=False)
    findings = list(run_rules(Facts(data=report), select_rules(["NAN4"])))
    return report, findings


@pytest.mark.parametrize("run", RUNS, ids=[r.name for r in RUNS])
def test_corpus_run(run):
    expected = json.loads((run / "expected.json").read_text())
    report, findings = scan(run)
    serious = [f for f in findings if f.severity != Severity.INFO]
    assert report.sources, "every corpus run reads data"
    if expected["expected_cause"] == "healthy":
        assert findings == [], [f.message for f in findings]  # not even an info
        return
    if expected["expected_cause"] != "bad_input":
        assert serious == [], [f.message for f in serious]
        return
    records, iteration = expected_records(expected)
    assert records, expected["culprit"]
    found = {f.data["record"] for f in serious}
    assert found == records
    assert all(f.cause.value == "bad_input" for f in serious)
    assert min(f.data["first_iteration"] for f in serious) == iteration


def test_r02_each_record_and_its_iteration():
    run = next((r for r in RUNS if r.name == "r02"), None)
    if run is None:
        pytest.skip("corpus not available")
    _report, findings = scan(run)
    got = {f.data["record"]: (f.code, f.data["first_iteration"], f.data["batch"]) for f in findings}
    assert got == {"00000555": ("NAN401", 17, 17), "00000556": ("NAN401", 17, 17), "00000701": ("NAN401", 21, 21)}


def test_r56_test_net_clean_and_scheduled():
    run = next((r for r in RUNS if r.name == "r56"), None)
    if run is None:
        pytest.skip("corpus not available")
    report, _ = scan(run)
    test = next(s for s in report.sources if s.phase == "TEST")
    assert test.records == 200 and not test.issues
    assert test.schedule["test_iter"] == 2 and test.schedule["test_interval"] == 20
