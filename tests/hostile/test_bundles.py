"""Audit rows on PyTorch reproducer bundles: wrong types and deep nesting in the JSON are a
clear error (exit 2), never a traceback."""

from __future__ import annotations

import json

import pytest

from nandoctor.torch.bundle import FINDINGS, FORMAT, MANIFEST, STATE
from tests.hostile.helpers import assert_input_error, cli


def _bundle(root, facts_text: str):
    root.mkdir()
    (root / STATE).mkdir()
    (root / MANIFEST).write_text(json.dumps({"format": FORMAT}))
    (root / FINDINGS).write_text(facts_text)
    return root


@pytest.mark.parametrize(
    "facts",
    [{"steps": "many"}, {"losses": {"a": 1}}, {"events": 5}, {"first_nonfinite": [1, 2]}, {"loss": None, "x": []}],
    ids=["str-for-int", "dict-for-list", "int-for-list", "list-for-int", "unknown-fields"],
)
def test_bundle_facts_of_the_wrong_type(tmp_path, facts):
    b = _bundle(tmp_path / "b", json.dumps({"facts": facts}))
    r = cli("diagnose", b)
    assert "Traceback" not in r.err, r.err
    assert r.code in (0, 1, 2)
    if r.code == 2:
        assert "nandoctor: " in r.err


def test_bundle_nested_100k_deep(tmp_path):
    b = _bundle(tmp_path / "b", '{"facts": ' + "[" * 100_000 + "]" * 100_000 + "}")
    r = cli("diagnose", b)
    assert_input_error(r, b / FINDINGS, "nested too deeply")


def test_bundle_findings_as_fifo(tmp_path):
    import os

    b = tmp_path / "b"
    _bundle(b, "{}")
    (b / FINDINGS).unlink()
    os.mkfifo(b / FINDINGS)
    r = cli("diagnose", b, timeout=30)
    assert "Traceback" not in r.err and r.code == 2, (r.code, r.err)
