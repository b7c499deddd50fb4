"""``# nandoctor: noqa`` comments in prototxt files: silence findings on their line.

``# nandoctor: noqa: NAN101, NAN140`` silences those codes on the line it ends;
a bare ``# nandoctor: noqa`` silences every finding there. As in ruff, the codes are
exact (no prefixes) and a finding counts as on the line where its location starts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from nandoctor.core.types import Finding

_NOQA = re.compile(r"#.*?\bnandoctor:\s*noqa\b(?P<colon>\s*:\s*(?P<codes>NAN\d{3}(?:[\s,]+NAN\d{3})*))?", re.I)
ALL = None  # a bare noqa: every code


def noqa_lines(text: str) -> dict[int, frozenset[str] | None]:
    """line (1-based) -> the codes silenced there, or None for all of them."""
    out: dict[int, frozenset[str] | None] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if "noqa" not in line.lower():
            continue
        m = _NOQA.search(line)
        if m is None:
            continue
        codes = m.group("codes")
        out[number] = frozenset(c.upper() for c in re.findall(r"NAN\d{3}", codes, re.I)) if codes else ALL
    return out


def silenced(finding: Finding, lines_by_path: dict[str, dict[int, frozenset[str] | None]]) -> bool:
    loc = finding.location
    if loc is None or loc.line is None:
        return False
    lines = lines_by_path.get(loc.path)
    if not lines or loc.line not in lines:
        return False
    codes = lines[loc.line]
    return codes is ALL or finding.code in codes


def drop_silenced(findings: Iterable[Finding], texts: dict[str, str]) -> tuple[list[Finding], int]:
    """The findings no noqa comment silences, and how many were silenced. ``texts``: path -> file text."""
    findings = list(findings)
    lines_by_path = {path: noqa_lines(text) for path, text in texts.items()}
    kept = [f for f in findings if not silenced(f, lines_by_path)]
    return kept, len(findings) - len(kept)
