"""Random mutations of real nets and solvers through the whole of `nandoctor lint` (parse, schema,
net and solver rules, a solver's inline net): an InputError with a position, or findings; never a
traceback."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nandoctor.core.types import Finding, InputError
from nandoctor.lint import lint_paths
from tests.conftest import corpus_files

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SOURCES = [
    p
    for p in corpus_files("zoo", pattern="*.prototxt") + corpus_files("oracles", "lr", pattern="*.prototxt")
    if p.stat().st_size < 8000
] + sorted((FIXTURES / "net").glob("*.prototxt"))
TEXTS = [p.read_text(encoding="utf-8", errors="replace") for p in SOURCES]
PIECES = ["{", "}", ":", "-", "0", "1e39", "nan", "-1", '"', "\n", " layer { ", " kernel_size: 0 ", " stride: 9 "]


@st.composite
def mutated(draw) -> str:
    text = draw(st.sampled_from(TEXTS))
    for _ in range(draw(st.integers(1, 5))):
        if not text:
            break
        i = draw(st.integers(0, len(text) - 1))
        op = draw(st.sampled_from(["delete_line", "insert", "cut", "replace_number"]))
        if op == "delete_line":
            start, end = text.rfind("\n", 0, i) + 1, text.find("\n", i)
            text = text[:start] + (text[end + 1 :] if end >= 0 else "")
        elif op == "insert":
            text = text[:i] + draw(st.sampled_from(PIECES)) + text[i:]
        elif op == "cut":
            text = text[: i + 1]
        else:
            j = i
            while j < len(text) and text[j].isdigit():
                j += 1
            text = text[:i] + draw(st.sampled_from(["0", "-3", "7", "1e-40", "2147483648"])) + text[j:]
    return text


@pytest.mark.skipif(not TEXTS, reason="no source files")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_files_lint_without_traceback(text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "in.prototxt"
        path.write_text(text, encoding="utf-8")
        try:
            report, _ = lint_paths([path], {"iters": 500})
        except InputError as exc:
            assert exc.line is not None and exc.line >= 1 and exc.col is not None and exc.col >= 1
            return
        assert all(isinstance(f, Finding) and f.code.startswith("NAN") for f in report.findings)
