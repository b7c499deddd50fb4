"""Solver rules on minimal fixtures (positive/negative, fix removes the finding) and on real solvers."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from nandoctor.config import schema
from nandoctor.config.edits import apply_edits
from nandoctor.config.solver import load_solver
from nandoctor.config.textformat import parse_file, parse_text
from nandoctor.core.registry import Facts, get_rule, run_rules, select_rules
from nandoctor.core.types import Cause, Severity
from tests.conftest import CORPUS, caffe_runs, corpus_files

CASES = Path(__file__).resolve().parents[1] / "cases"
RULES = select_rules(["NAN2"])
BAD = sorted(p for p in CASES.glob("NAN2??/f*_*.prototxt") if p.name.startswith(("fail_", "fix_")))
OK = sorted(CASES.glob("NAN2??/pass_*.prototxt"))


def _options(text: str) -> dict:
    m = re.search(r"^# iters: (\d+)", text, re.M)
    return {"iters": int(m.group(1))} if m else {}


def findings_for_text(text: str, path: str = "solver.prototxt", options: dict | None = None):
    solver = load_solver(parse_text(text, path))
    return list(run_rules(Facts(solver=solver, options=options if options is not None else _options(text)), RULES))


def _code(path: Path) -> str:
    return path.parent.name


def test_every_solver_rule_has_fixtures():
    codes = {cls.code for cls in RULES}
    assert codes == {_code(p) for p in BAD} == {_code(p) for p in OK}


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_rule_fires_and_its_fix_removes_it(path):
    text = path.read_text()
    found = [f for f in findings_for_text(text, str(path)) if f.code == _code(path)]
    assert found, f"{_code(path)} did not fire"
    for f in found:
        assert f.fix is not None and f.fix.edits, "every finding carries exact edits"
        assert f.location is not None and f.location.path == str(path)
        for e in f.fix.edits:
            assert text[e.start : e.end] == e.old
        fixed = apply_edits(text, f.fix.edits)
        parse_text(fixed)  # still valid text format
        again = [g for g in findings_for_text(fixed, str(path)) if g.code == f.code and g.culprit == f.culprit]
        assert not again, f"after the fix {f.fix.description!r}: {again[0].message}"


@pytest.mark.parametrize("path", OK, ids=lambda p: p.stem)
def test_rule_silent_on_good_solver(path):
    assert not [f for f in findings_for_text(path.read_text(), str(path)) if f.code == _code(path)]


def test_rule_docs_and_causes():
    for cls in RULES:
        assert set(cls.docs()) >= {"What it detects", "Why it leads to NaN", "How to fix", "Example"}
        assert cls.needs == ("solver",)
    assert get_rule("NAN201").cause is Cause.LR_POLICY
    assert get_rule("NAN208").cause is Cause.GRADIENT_EXPLOSION


def test_abort_message_is_caffes_fatal_line():
    text = (CASES / "NAN200/fix_step_no_stepsize.prototxt").read_text()
    (f,) = [f for f in findings_for_text(text) if f.code == "NAN200"]
    assert "sgd_solver.cpp:33] Check failed: this->param_.stepsize() > 0 (0 vs. 0)" in f.message
    assert f.culprit == "stepsize"
    assert f.fix.edits[0].new.endswith("stepsize: 1000")  # a third of max_iter 3000


def test_fix_keeps_crlf_and_indentation():
    path = CASES / "NAN200/fix_crlf_indented_no_final_newline.prototxt"
    text = path.read_bytes().decode()
    (f,) = [f for f in findings_for_text(text) if f.code == "NAN200"]
    assert f.fix.edits[0].new == "\r\n  stepsize: 1000"
    assert apply_edits(text, f.fix.edits).endswith("max_iter: 3000\r\n  stepsize: 1000")


def test_growth_message_names_factor_and_iteration():
    text = (CASES / "NAN204/fail_multistep_gamma10.prototxt").read_text()
    (f,) = [f for f in findings_for_text(text) if f.code == "NAN204"]
    assert "x10 at each stepvalue" in f.message and "iteration 80" in f.message
    assert f.severity is Severity.ERROR
    assert f.fix.edits[0].new == "0.1"


def test_unsorted_stepvalues_report_the_real_steps():
    text = (CASES / "NAN206/fail_unsorted.prototxt").read_text()
    (f,) = [f for f in findings_for_text(text) if f.code == "NAN206"]
    assert f.data["steps_at"] == [1500, 1501, 1502]


# --- real solvers ------------------------------------------------------------------------------


def _manifest() -> dict[str, str]:
    path = CORPUS / "zoo" / "MANIFEST.tsv"
    if not path.is_file():
        return {}
    with path.open(newline="") as fh:
        return {row["file"]: row["notes"] for row in csv.DictReader(fh, delimiter="\t") if "solver" in row["kind"]}


MANIFEST = _manifest()
# BVLC's early lenet_solver_rmsprop (commit 20bb3d9) sets momentum 0.9 with RMSProp, which
# final-master Caffe rejects (RMSPropSolver's constructor: CHECK momentum == 0; BVLC later changed the
# example to `momentum: 0.0`, commit bd941ff). The manifest does not mark it.
KNOWN_ABORTS = {"BVLC__caffe__examples__mnist__lenet_solver_rmsprop.prototxt": {"NAN211"}}


@pytest.mark.parametrize("name", sorted(MANIFEST), ids=lambda n: n[:60])
def test_zoo_solvers(name):
    path = CORPUS / "zoo" / name
    findings = list(run_rules(Facts(solver=load_solver(parse_file(path))), RULES))
    serious = {f.code for f in findings if f.severity is not Severity.INFO}
    if "NaN-RISK" in MANIFEST[name] or "MISCONFIG" in MANIFEST[name]:
        assert serious, "a solver the manifest marks as NaN-RISK/MISCONFIG must be flagged"
    else:
        assert serious == KNOWN_ABORTS.get(name, set()), [f.message for f in findings]


RUNS = caffe_runs()


@pytest.mark.parametrize("run", RUNS, ids=lambda p: p.name)
def test_caffe_runs_blame_the_solver_field(run):
    expected = json.loads((run / "expected.json").read_text())
    options = {}
    if expected["driver"] == "step":
        options["iters"] = int(re.search(r"step_driver \S+ (\d+)", expected["command"]).group(1))
    solver = load_solver(parse_file(run / "solver.prototxt"))
    findings = [f for f in run_rules(Facts(solver=solver, options=options), RULES) if f.severity is not Severity.INFO]
    culprit = expected.get("culprit")
    if expected["expected_cause"] == "healthy":
        assert not findings, [f.message for f in findings]
    elif schema.field_spec("SolverParameter", culprit or "") is not None:  # the run blames a solver field
        assert any(f.culprit == culprit and f.cause.value == expected["expected_cause"] for f in findings), [
            (f.code, f.culprit, f.cause) for f in findings
        ]


def test_corpus_present_or_skipped():
    if not corpus_files("zoo"):
        pytest.skip("corpus not available")
    assert MANIFEST
