"""Every zoo net loads, gets shapes, and (when known-good) has no error-severity net finding."""

from __future__ import annotations

import csv

import pytest

from nandoctor.config.load import root_type
from nandoctor.config.net import load_net, load_net_message
from nandoctor.config.shapes import infer_shapes
from nandoctor.config.textformat import parse_file
from nandoctor.core.registry import Facts, run_rules, select_rules
from nandoctor.core.types import Severity
from tests.conftest import CORPUS, corpus_files


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
    notes = _manifest().get(path.name, "")
    for net in _nets(path):
        for _, layers in net.variants():
            infer_shapes(layers, net.input_shapes())
        found = list(run_rules(Facts(net=net), select_rules(["NAN1"])))
        errors = [f for f in found if f.severity == Severity.ERROR]
        if "NaN-RISK" not in notes:
            assert not errors, [f.message for f in errors]
            assert not net.problems
