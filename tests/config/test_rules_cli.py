"""`nandoctor rules` lists every registered rule; `nandoctor rules CODE` prints its four doc sections."""

from __future__ import annotations

import json

from nandoctor.cli.main import main
from nandoctor.core.registry import DOC_SECTIONS, all_rules, get_rule


def test_list_names_every_rule(capsys):
    assert main(["rules", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["code"] for r in listed] == [cls.code for cls in all_rules()]
    assert {"NAN002", "NAN100", "NAN101", "NAN201", "NAN401"} <= {r["code"] for r in listed}
    assert main(["rules"]) == 0
    text = capsys.readouterr().out
    assert all(cls.code in text for cls in all_rules())


def test_one_rule_prints_its_docs(capsys):
    assert main(["rules", "nan100"]) == 0  # codes are case-insensitive
    out = capsys.readouterr().out
    assert out.startswith("NAN100 Caffe refuses to build this net")
    for section in DOC_SECTIONS:
        assert section in out
        assert get_rule("NAN100").docs()[section].splitlines()[0] in out


def test_unknown_code_is_an_input_error(capsys):
    assert main(["rules", "NAN999"]) == 2
    assert "no rule 'NAN999'" in capsys.readouterr().err
