"""The schema rules as registered rules: complete docs, the documents they need, one code per problem."""

from __future__ import annotations

from nandoctor.config.schema_problems import ALL_CODES
from nandoctor.config.textformat import parse_text
from nandoctor.core.registry import DOC_SECTIONS, Facts, all_rules, run_rules, select_rules

SCHEMA_CODES = sorted(ALL_CODES)


def config_rules():
    return [r for r in all_rules() if r.__module__.startswith("nandoctor.rules.config.")]


FORK_FILE = "NAN019"  # not a schema problem: the one finding per file that names the fork it needs


def test_every_schema_code_is_one_registered_rule_of_this_package():
    assert sorted(r.code for r in config_rules() if r.code != FORK_FILE) == SCHEMA_CODES
    assert FORK_FILE not in SCHEMA_CODES
    assert all("NAN002" <= code <= "NAN049" for code in SCHEMA_CODES)


def test_rules_document_themselves_and_need_documents():
    for rule in config_rules():
        docs = rule.docs()
        assert all(docs.get(section) for section in DOC_SECTIONS), rule.code
        assert rule.needs == ("documents",)
        assert rule.title


def test_rules_skip_without_documents_and_report_per_document():
    rules = select_rules(["NAN0"])
    assert list(run_rules(Facts(), rules)) == []
    net = parse_text("layer { type: 'Pooling' pooling_param { kernel: 3 } }", "net.prototxt")
    solver = parse_text("lr_policy: step\neval_type: 'detection'", "solver.prototxt")
    findings = list(run_rules(Facts(documents=[(net, "NetParameter"), (solver, "SolverParameter")]), rules))
    assert sorted((f.location.path, f.code) for f in findings) == [
        ("net.prototxt", "NAN002"),
        ("solver.prototxt", "NAN003"),
        ("solver.prototxt", "NAN016"),
        ("solver.prototxt", FORK_FILE),
    ]
