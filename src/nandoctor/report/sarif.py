"""SARIF 2.1.0 output, so code-scanning dashboards can show findings on prototxt files."""

from __future__ import annotations

from typing import Any

from nandoctor import __version__
from nandoctor.core.registry import get_rule
from nandoctor.core.types import Finding, Severity

_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def to_sarif(findings: list[Finding]) -> dict[str, Any]:
    codes = sorted({f.code for f in findings})
    rules = []
    for code in codes:
        cls = get_rule(code)
        docs = cls.docs() if cls else {}
        rules.append(
            {
                "id": code,
                "name": cls.__name__ if cls else code,
                "shortDescription": {"text": cls.title if cls else code},
                "fullDescription": {"text": docs.get("What it detects", "")},
                "help": {"text": docs.get("How to fix", "")},
                "properties": {"cause": cls.cause.value if cls else "unknown"},
            }
        )
    results = []
    for f in findings:
        result: dict[str, Any] = {
            "ruleId": f.code,
            "level": _LEVEL[f.severity],
            "message": {"text": f.message + (f" Fix: {f.fix.description}" if f.fix else "")},
            "properties": {"cause": f.cause.value, "culprit": f.culprit},
        }
        if f.location is not None:
            region: dict[str, int] = {}
            if f.location.line:
                region["startLine"] = f.location.line
            if f.location.col:
                region["startColumn"] = f.location.col
            phys: dict[str, Any] = {"artifactLocation": {"uri": f.location.path}}
            if region:
                phys["region"] = region
            result["locations"] = [{"physicalLocation": phys}]
        results.append(result)
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "nandoctor",
                        "version": __version__,
                        "informationUri": "https://pypi.org/project/nandoctor/",
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }
