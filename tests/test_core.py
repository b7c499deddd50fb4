"""The core contract every subpackage relies on: types serialise, the registry enforces complete rules."""

from __future__ import annotations

import json

import pytest

from nandoctor.core.registry import DOC_SECTIONS, Rule, all_rules, parse_doc, register
from nandoctor.core.types import Cause, Edit, Evidence, Finding, Fix, InputError, Location, Report, Severity


def test_cause_ids_are_exactly_the_six():
    assert [c.value for c in Cause] == [
        "gradient_explosion",
        "lr_policy",
        "loss_function",
        "bad_input",
        "pooling",
        "unknown",
    ]


def test_finding_round_trips_to_json():
    loc = Location("net.prototxt", 4, 45)
    f = Finding(
        code="NAN101",
        severity=Severity.ERROR,
        cause=Cause.POOLING,
        message="empty window",
        location=loc,
        evidence=(Evidence("pool1 6x6", loc, "prototxt"),),
        fix=Fix("set kernel_size: 5", (Edit("net.prototxt", 10, 11, "3", "5", 4, 45),)),
        culprit="pool1",
    )
    data = json.loads(json.dumps(f.to_dict()))
    assert data["cause"] == "pooling"
    assert data["location"] == {"path": "net.prototxt", "line": 4, "col": 45}
    assert data["fix"]["edits"][0]["new"] == "5"
    assert str(loc) == "net.prototxt:4:45"


def test_report_worst_and_sorting():
    r = Report()
    assert r.worst is None
    r.extend(
        [
            Finding("NAN102", Severity.INFO, Cause.POOLING, "b", Location("a", 9, 1)),
            Finding("NAN101", Severity.ERROR, Cause.POOLING, "a", Location("a", 2, 1)),
        ]
    )
    assert r.worst is Severity.ERROR
    assert [f.code for f in r.sorted()] == ["NAN101", "NAN102"]


def test_input_error_formats_position():
    assert str(InputError("Expected identifier", "x.prototxt", 3, 7)) == "x.prototxt:3:7: Expected identifier"
    assert str(InputError("file not found", "x")) == "x: file not found"


def test_register_rejects_incomplete_docs_and_bad_codes():
    with pytest.raises(ValueError, match="docstring lacks"):

        @register
        class Incomplete(Rule):
            """## What it detects\nsomething"""

            code = "NAN999"
            title = "t"
            cause = Cause.UNKNOWN

    with pytest.raises(ValueError, match="code must"):

        @register
        class BadCode(Rule):
            code = "X1"


def test_parse_doc_sections():
    doc = parse_doc(
        """
        Title line ignored.

        ## What it detects
        A.
        ## Why it leads to NaN
        B.
        ## How to fix
        C.
        ## Example
            layer { }
        """
    )
    assert list(doc) == list(DOC_SECTIONS)
    assert doc["Example"] == "layer { }"


def test_every_registered_rule_is_complete():
    seen = set()
    for cls in all_rules():
        assert cls.code not in seen
        seen.add(cls.code)
        assert cls.title and isinstance(cls.cause, Cause)
        assert all(cls.docs()[s] for s in DOC_SECTIONS), cls.code
