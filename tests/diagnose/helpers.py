"""Run ``nandoctor diagnose`` in-process and read its JSON, as CI systems consume it."""

from __future__ import annotations

import json

from nandoctor.cli.main import main


def diagnose_json(capsys, *argv: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["diagnose", *argv, "--format", "json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def expected_culprit(expected: dict) -> str | None:
    """expected.json's culprit without its parenthesised remark ("... (float_data contains nan)")."""
    culprit = expected.get("culprit")
    if culprit is None:
        return None
    return culprit.split(" (", 1)[0]
