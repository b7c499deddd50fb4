"""Every rule's data-driven cases in tests/cases/<CODE>/: the findings, their positions, culprits and fixes.

A case is one file ``<kind>_<name>.<ext>``, kind pass | fail | fix:

- ``.prototxt``: a net or a solver (header ``# root: NetParameter`` or ``SolverParameter``);
- ``.log``: a Caffe log excerpt in glog format;
- ``.json``: facts (``"data"``: a data report, ``"torch"``: a PyTorch guard's facts), with a
  top-level ``"case"`` object holding the header keys.

The header of a text file is its leading ``# key: value`` lines: ``expect: CODE line:col``
(repeatable, in any order; a pass case has none), ``culprit: TEXT`` (the first finding's, by position),
``parse: schemaless``, ``protobuf: MESSAGE`` (protobuf's words for the first finding),
``fixes-apply-cleanly: yes``, ``options: JSON`` (the command-line knobs), ``iters: N``
(the solver rules' horizon). The expected
findings are those of the directory's code and of every code an ``expect`` line names.
A fix case has a sibling ``<name>.fixed.<ext>``: the text after the findings' edits, byte
for byte. Every registered rule has a case directory with a pass and a fail case.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from nandoctor.config.edits import apply_edits
from nandoctor.config.net import load_net
from nandoctor.config.solver import load_solver
from nandoctor.config.textformat import ParseError, parse_file, parse_text
from nandoctor.core.registry import Facts, all_rules, get_rule, run_rules

CASES_DIR = Path(__file__).resolve().parent / "cases"
CASE_RE = re.compile(r"^(pass|fail|fix)_(.+)\.(prototxt|log|json)$")
CASES = sorted(p for p in CASES_DIR.glob("NAN*/*") if CASE_RE.match(p.name) and ".fixed." not in p.name)

# Rules whose cases are still to be written; the test below fails on a rule missing here
# that has no case, and on a rule listed here that has one (so the list only shrinks).
WITHOUT_CASES = frozenset(
    {
        "NAN303",
        "NAN306",
        "NAN307",
        "NAN502",
        "NAN601",
        "NAN602",
        "NAN610",
        "NAN611",
        "NAN620",
        "NAN625",
        "NAN630",
        "NAN631",
        "NAN632",
        "NAN640",
        "NAN650",
        "NAN651",
        "NAN652",
        "NAN660",
        "NAN670",
        "NAN701",
        "NAN702",
        "NAN703",
        "NAN704",
        "NAN705",
        "NAN706",
        "NAN707",
        "NAN708",
        "NAN709",
        "NAN710",
    }
)


def header(path: Path) -> dict[str, list[str]]:
    """The case's header keys, each with its values in order."""
    if path.suffix == ".json":
        case = json.loads(path.read_text()).get("case", {})
        return {k: v if isinstance(v, list) else [v] for k, v in case.items()}
    out: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if not line.startswith("# "):
            break
        key, _, value = line[2:].partition(": ")
        out.setdefault(key, []).append(value)
    return out


def _log_without_header(path: Path, tmp_path: Path) -> Path:
    """The log with its header lines blanked, so line numbers stay the file's."""
    lines = path.read_bytes().split(b"\n")
    n = next((i for i, line in enumerate(lines) if not line.startswith(b"# ")), len(lines))
    body = tmp_path / path.name
    body.write_bytes(b"\n" * n + b"\n".join(lines[n:]))
    return body


def facts_of(path: Path, h: dict[str, list[str]], tmp_path: Path) -> tuple[Facts, object]:
    """The Facts a case gives the rules, and the parsed document (prototxt cases)."""
    options = json.loads(h["options"][0]) if "options" in h else {}
    if "iters" in h:  # the solver rules' horizon (``nandoctor lr --iters``)
        options["iters"] = int(h["iters"][0])
    if path.suffix == ".prototxt":
        root = h["root"][0]
        doc = parse_file(path, None if h.get("parse") == ["schemaless"] else root)
        facts = Facts(documents=[(doc, root)], options=options)
        if "parse" not in h:
            if root == "NetParameter":
                facts.net = load_net(doc)
            elif root == "SolverParameter":
                facts.solver = load_solver(doc)
        return facts, doc
    if path.suffix == ".log":
        from nandoctor.log.parser import parse_log

        return Facts(trace=parse_log(_log_without_header(path, tmp_path), workers=1), options=options), None
    data = json.loads(path.read_text())
    facts = Facts(options=options)
    if "data" in data:
        from nandoctor.data.report import DataReport

        facts.data = DataReport.from_dict(data["data"])
    if "torch" in data:
        from nandoctor.torch.facts import TorchFacts

        facts.torch = TorchFacts.from_dict(data["torch"])
    return facts, None


def _position(f) -> str:
    loc = f.location
    return f"{f.code} {loc.line}:{loc.col}" if loc is not None and loc.line is not None else f"{f.code} -"


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_rule_case(path: Path, tmp_path: Path):
    code = path.parent.name
    kind = CASE_RE.match(path.name).group(1)
    h = header(path)
    expect = h.get("expect", [])
    assert (kind == "pass") == (not expect), "a pass case expects nothing, a fail or fix case something"
    facts, doc = facts_of(path, h, tmp_path)
    codes = {code} | {e.split()[0] for e in expect}
    rules = [get_rule(c) for c in sorted(codes)]
    assert all(rules), f"no registered rule for one of {sorted(codes)}"
    findings = sorted(run_rules(facts, rules), key=lambda f: (f.location is None, _position_key(f)))
    assert sorted(_position(f) for f in findings) == sorted(expect)
    if "culprit" in h:
        assert findings[0].culprit == h["culprit"][0]
    if "protobuf" in h:
        first = findings[0]
        root = h["root"][0]
        line = f"Error parsing text-format caffe.{root}: {first.location.line}:{first.location.col}: {h['protobuf'][0]}"
        assert first.evidence[0].text == line
        assert first.data["protobuf_message"] == h["protobuf"][0]
    if h.get("parse") == ["schemaless"]:  # protobuf's parser, which knows the schema, stops right there
        with pytest.raises(ParseError) as info:
            parse_file(path, h["root"][0])
        first = findings[0]
        assert (info.value.line, info.value.col, info.value.message) == (
            first.location.line,
            first.location.col,
            h["protobuf"][0],
        )
    if h.get("fixes-apply-cleanly") == ["yes"]:
        root = h["root"][0]
        edits = [e for f in findings for e in f.fix.edits]
        assert edits and all(f.fix and f.fix.edits for f in findings)
        fixed = parse_text(apply_edits(doc.text, edits), str(path), root)
        refound = run_rules(Facts(documents=[(fixed, root)]), rules)
        assert not [f for f in refound if f.code in codes]
    fixed_path = path.with_name(f"{CASE_RE.match(path.name).group(2)}.fixed{path.suffix}")
    assert (kind == "fix") == fixed_path.exists(), "a fix case, and only one, has its .fixed sibling"
    if kind == "fix":
        edits = [e for f in findings if f.code == code and f.fix for e in f.fix.edits]
        assert edits, "a fix case's findings carry edits"
        text = path.read_bytes().decode("utf-8")
        assert apply_edits(text, edits).encode("utf-8") == fixed_path.read_bytes()


def _position_key(f):
    loc = f.location
    return (loc.line or 0, loc.col or 0) if loc is not None else (0, 0)


def test_every_registered_rule_has_cases():
    have: dict[str, set[str]] = {}
    for p in CASES:
        have.setdefault(p.parent.name, set()).add(CASE_RE.match(p.name).group(1))
    registered = {r.code for r in all_rules()}
    assert set(have) <= registered, f"case directories of no rule: {sorted(set(have) - registered)}"
    complete = {c for c, kinds in have.items() if "pass" in kinds and kinds & {"fail", "fix"}}
    missing = registered - complete
    assert missing - WITHOUT_CASES == set(), f"rules without a pass and a fail case: {sorted(missing - WITHOUT_CASES)}"
    assert WITHOUT_CASES & complete == set(), (
        f"now covered, drop from WITHOUT_CASES: {sorted(WITHOUT_CASES & complete)}"
    )
