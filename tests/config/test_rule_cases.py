"""Every schema-rule case in tests/fixtures/config: the findings, their positions, protobuf's words, the fixes."""

from __future__ import annotations

from pathlib import Path

import pytest

from nandoctor.config.edits import apply_edits
from nandoctor.config.textformat import ParseError, parse_file, parse_text
from nandoctor.config.validate import validate
from nandoctor.core.registry import Facts, get_rule, run_rules

CASES = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "config").glob("NAN0*.prototxt"))


def header(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if not line.startswith("# "):
            break
        key, _, value = line[2:].partition(": ")
        out.setdefault(key, []).append(value)
    return out


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_rule_case(path: Path):
    h = header(path)
    root = h["root"][0]
    schemaless = h.get("parse") == ["schemaless"]
    doc = parse_file(path, None if schemaless else root)
    findings = validate(doc, root)
    assert [f"{f.code} {f.location.line}:{f.location.col}" for f in findings] == h.get("expect", [])
    if "protobuf" in h:
        first = findings[0]
        line = f"Error parsing text-format caffe.{root}: {first.location.line}:{first.location.col}: {h['protobuf'][0]}"
        assert first.evidence[0].text == line
        assert first.data["protobuf_message"] == h["protobuf"][0]
    if schemaless:  # protobuf's parser, which knows the schema, stops right there with the same words
        with pytest.raises(ParseError) as info:
            parse_file(path, root)
        first = findings[0]
        assert (info.value.line, info.value.col, info.value.message) == (
            first.location.line,
            first.location.col,
            h["protobuf"][0],
        )
    # the registered rule of each code yields exactly its findings
    for code in {f.code for f in findings}:
        rule = get_rule(code)
        assert rule is not None
        assert list(run_rules(Facts(documents=[(doc, root)]), [rule])) == [f for f in findings if f.code == code]
    if h.get("fixes-apply-cleanly") == ["yes"]:
        codes = {f.code for f in findings}
        edits = [e for f in findings for e in f.fix.edits]
        assert edits and all(f.fix and f.fix.edits for f in findings)
        fixed = parse_text(apply_edits(doc.text, edits), str(path), root)
        assert not [f for f in validate(fixed, root) if f.code in codes]


def test_every_schema_rule_has_a_failing_and_a_case_file():
    codes = {p.name[:6] for p in CASES if "_fail_" in p.name}
    assert codes == {f"NAN0{n:02d}" for n in range(2, 19)}
