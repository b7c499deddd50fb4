"""Every NAN4xx rule: fires on its issue kind (positive) and stays silent without it (negative)."""

from __future__ import annotations

import pytest

from nandoctor.core.registry import Facts, all_rules, run_rules, select_rules
from nandoctor.core.types import Cause
from nandoctor.data.report import DataReport, Issue, SourceReport
from nandoctor.data.schedule import Read
from nandoctor.rules.data.common import PER_RECORD

KIND_TO_CODE = {
    "nonfinite": "NAN401",
    "overflow": "NAN402",
    "shape": "NAN403",
    "empty": "NAN404",
    "constant": "NAN405",
    "corrupt": "NAN406",
    "label": "NAN407",
    "duplicate": "NAN408",
    "missing_file": "NAN409",
    "unreadable_source": "NAN410",
    "mean_file": "NAN411",
    "list_line": "NAN413",
    "color": "NAN414",
}


def report_with(*issues: Issue, **fields) -> DataReport:
    src = SourceReport(kind="lmdb", path="/d/train_lmdb", layer="data", phase="TRAIN", batch_size=32,
                       records=100, total=100, **fields)  # fmt: skip
    src.issues.extend(issues)
    return DataReport([src])


def codes(report: DataReport) -> list[str]:
    return [f.code for f in run_rules(Facts(data=report), select_rules(["NAN4"]))]


@pytest.mark.parametrize("kind", sorted(KIND_TO_CODE))
def test_each_issue_kind_gives_its_rule(kind):
    issue = Issue(kind, "something", record="00000007", index=7, read=Read(0, 0, 7))
    assert KIND_TO_CODE[kind] in codes(report_with(issue))


@pytest.mark.parametrize("code", sorted(set(KIND_TO_CODE.values()) | {"NAN412", "NAN415"}))
def test_clean_report_is_silent(code):
    clean = report_with(value_min=0.0, value_max=1.0, value_kind="float", transform={"scale": 1.0})
    assert code not in codes(clean)


def test_record_finding_names_key_iteration_and_fix():
    issue = Issue("nonfinite", "3 NaN among 48 values", record="00001234", index=1234, read=Read(38, 38, 18))
    [f] = run_rules(Facts(data=report_with(issue)), select_rules(["NAN401"]))
    assert f.cause == Cause.BAD_INPUT and f.location.record == "00001234"
    assert "iteration 38" in f.message and f.data["first_iteration"] == 38
    assert "--clean" in f.fix.description and f.culprit == "train_lmdb 00001234"


def test_many_records_fold_into_one_summary():
    issues = [
        Issue("nonfinite", "1 NaN", record=f"{i:08d}", index=i, read=Read(i // 32, i // 32, i % 32))
        for i in range(0, 10 * (PER_RECORD + 15), 10)
    ]
    found = list(run_rules(Facts(data=report_with(*issues)), select_rules(["NAN401"])))
    assert len(found) == PER_RECORD + 1
    assert found[-1].data["count"] == 15 and "earliest is read at iteration 6" in found[-1].message


def test_missing_scale_positive_and_negative():
    raw = dict(value_min=0.0, value_max=255.0, raw_min=0.0, raw_max=255.0, value_kind="uint8")
    assert "NAN412" in codes(report_with(transform={"scale": 1.0}, **raw))
    assert "NAN412" not in codes(report_with(transform={"scale": 0.00390625}, **raw))
    assert "NAN412" not in codes(report_with(transform={"scale": 1.0, "mean": "mean_value 128"}, **raw))
    assert "NAN412" not in codes(report_with(transform={"scale": 1.0, "rescaled_by": "scale"}, **raw))
    no_net = report_with(transform={"scale": 1.0}, **raw)
    no_net.sources[0].layer = None
    assert "NAN412" not in codes(no_net)


def test_mean_size_mismatch():
    rep = report_with(transform={"scale": 1.0, "mean": "mean_file m", "mean_size": 12}, majority_shape="1,2,2")
    assert "NAN411" in codes(rep)
    rep = report_with(transform={"scale": 1.0, "mean": "mean_file m", "mean_size": 4}, majority_shape="1,2,2")
    assert "NAN411" not in codes(rep)


def test_incomplete_scan():
    rep = report_with()
    rep.sources[0].records = 40
    rep.sources[0].complete = False
    assert "NAN415" in codes(rep)


def test_every_data_rule_is_documented_and_bad_input():
    rules = [r for r in all_rules() if r.code.startswith("NAN4")]
    assert len(rules) == 15
    for r in rules:
        assert r.cause == Cause.BAD_INPUT and r.needs == ("data",)
