"""Every zoo file loads and gets shapes; known-good files have no error finding, risky ones get their rule.

"Risky" is what MANIFEST.tsv marks NaN-RISK/MISCONFIG; RISK_RULES says which rule each kind of
risk named in its notes must raise, so a newly marked file whose risk we do not know fails here
instead of passing unchecked.
"""

from __future__ import annotations

import csv

import pytest

from nandoctor.config.load import root_type
from nandoctor.config.net import load_net, load_net_message
from nandoctor.config.shapes import infer_shapes
from nandoctor.config.textformat import parse_file
from nandoctor.core.registry import Facts, run_rules, select_rules
from nandoctor.core.types import Severity
from nandoctor.lint import lint_paths
from tests.conftest import CORPUS, corpus_files
from tests.solver.test_rules import KNOWN_ABORTS

# words of a MANIFEST note -> the rule that must flag the file
RISK_RULES = {"stepvalue": "NAN207"}


def _risky(notes: str) -> bool:
    return "NaN-RISK" in notes or "MISCONFIG" in notes


def _manifest() -> dict[str, str]:
    path = CORPUS / "zoo" / "MANIFEST.tsv"
    if not path.is_file():
        return {}
    return {r["file"]: r["notes"] for r in csv.DictReader(path.open(), delimiter="\t")}


def _nets(path):
    doc = parse_file(path)
    if root_type(doc) == "NetParameter":
        return [load_net(doc)]
    return [
        load_net_message(f.value, doc)
        for f in doc.root.fields
        if f.name in ("net_param", "train_net_param", "test_net_param") and f.is_message
    ]


ZOO = [p for p in corpus_files("zoo", pattern="*.prototxt")]


@pytest.mark.parametrize("path", ZOO, ids=lambda p: p.name[:60])
def test_zoo_file(path):
    manifest = _manifest()
    assert path.name in manifest, "every zoo file is described in MANIFEST.tsv"
    notes = manifest[path.name]
    for net in _nets(path):
        for _, layers in net.variants():
            infer_shapes(layers, net.input_shapes())
        found = list(run_rules(Facts(net=net), select_rules(["NAN1"])))
        errors = [f for f in found if f.severity == Severity.ERROR]
        if not _risky(notes):
            assert not errors, [f.message for f in errors]
            assert not net.problems


@pytest.mark.parametrize("path", ZOO, ids=lambda p: p.name[:60])
def test_zoo_file_as_linted(path):
    """What `nandoctor lint FILE` reports, every rule included: errors only where Caffe aborts or the file is risky."""
    notes = _manifest()[path.name]
    report, _ = lint_paths([path])
    codes = {f.code for f in report.findings}
    errors = {f.code for f in report.findings if f.severity is Severity.ERROR}
    if _risky(notes):
        expected = {code for words, code in RISK_RULES.items() if words in notes}
        assert expected, f"no rule known for the risk in: {notes}"
        flagged = {f.code for f in report.findings if f.severity is not Severity.INFO}
        assert expected <= flagged, (expected, codes)
    else:
        assert errors == KNOWN_ABORTS.get(path.name, set()), [f.message for f in report.findings]


def test_manifest_lists_risky_files():
    if not ZOO:
        pytest.skip("corpus not available")
    risky = [name for name, notes in _manifest().items() if _risky(notes)]
    assert len(risky) >= 2  # the ResNet-50 and caffe-face solvers (multistep without stepvalue)
