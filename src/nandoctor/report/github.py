"""GitHub Actions workflow commands: one ``::error file=…,line=…,col=…,title=NAN123::message`` line per finding.

A CI step that runs ``nandoctor lint --format github`` gets each finding shown inline on the
pull request's diff. Severities map to the three annotation levels (error, warning,
notice). The values are escaped the way the runner decodes them: ``%``, CR and LF in the
message; additionally ``:`` and ``,`` in the properties.
"""

from __future__ import annotations

from collections.abc import Iterable

from nandoctor.core.types import Finding, Severity

LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(f: Finding) -> str:
    props = []
    loc = f.location
    if loc is not None:
        props.append(f"file={escape_property(loc.path)}")
        if loc.line is not None:
            props.append(f"line={loc.line}")
            if loc.col is not None:
                props.append(f"col={loc.col}")
            if loc.end_line is not None:
                props.append(f"endLine={loc.end_line}")
                if loc.end_col is not None:
                    props.append(f"endColumn={loc.end_col}")
    props.append(f"title={escape_property(f.code)}")
    message = f.message
    if f.fix is not None:
        message += f"\nfix: {f.fix.description}"
    return f"::{LEVEL[f.severity]} {','.join(props)}::{escape_data(message)}"


def to_github(findings: Iterable[Finding]) -> str:
    return "".join(annotation(f) + "\n" for f in findings)
