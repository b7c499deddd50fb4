"""Shared helpers of the NAN4xx rules: turning a scan's issues into findings."""

from __future__ import annotations

import os
from collections.abc import Iterator

from nandoctor.core.types import Evidence, Finding, Fix, Location
from nandoctor.data.report import Issue, SourceReport

PER_RECORD = 20  # findings per (source, kind) before the rest are folded into one summary


def source_name(src: SourceReport) -> str:
    return os.path.basename(os.path.normpath(src.path)) or src.path


def record_location(src: SourceReport, issue: Issue) -> Location:
    return Location(src.path, record=issue.record)


def read_text(issue: Issue, src: SourceReport) -> str:
    read = issue.read
    if read is None or read.iteration is None:
        note = f" ({read.note})" if read is not None and read.note else ""
        return f"first read: unknown{note}"
    text = f"first read at iteration {read.iteration}"
    if src.phase == "TEST":
        text += f" (TEST batch {read.batch}, slot {read.slot})"
    else:
        text += f" (batch {read.batch} of batch_size {src.batch_size}, slot {read.slot})"
    if read.note:
        text += f"; {read.note}"
    return text


def clean_fix(src: SourceReport, what: str = "these records") -> Fix:
    out = f"{source_name(src)}_clean"
    command = f"nandoctor scan-data {src.path} --clean {out}"
    where = f", then point layer {src.layer}'s source at it" if src.layer else ""
    return Fix(f"Rebuild the data set without {what}: `{command}` writes a copy without them{where}.")


def issue_data(src: SourceReport, issue: Issue) -> dict:
    read = issue.read
    return {
        "source": src.path,
        "source_kind": src.kind,
        "layer": src.layer,
        "phase": src.phase,
        "record": issue.record,
        "index": issue.index,
        "file": issue.file,
        "row": issue.row,
        "first_iteration": read.iteration if read else None,
        "batch": read.batch if read else None,
        "slot": read.slot if read else None,
        **issue.detail,
    }


def per_record(rule, facts, kind: str, what: str, fix_what: str = "these records") -> Iterator[Finding]:
    """One finding per record (up to PER_RECORD per source), then one finding for the rest."""
    report = facts.data
    for src in report.sources:
        issues = [i for i in src.issues if i.kind == kind]
        for issue in issues[:PER_RECORD]:
            where = f"{source_name(src)} record {issue.record}" if issue.record else source_name(src)
            yield rule.finding(
                f"{where}: {issue.message}; {read_text(issue, src)}",
                record_location(src, issue),
                evidence=[Evidence(f"{what}: {issue.message}", record_location(src, issue), "data")],
                fix=clean_fix(src, fix_what),
                culprit=f"{source_name(src)} {issue.record}" if issue.record else source_name(src),
                data=issue_data(src, issue),
            )
        rest = issues[PER_RECORD:]
        if rest:
            first = min(
                (i for i in rest if i.read and i.read.iteration is not None),
                key=lambda i: i.read.iteration,
                default=None,
            )
            yield rule.finding(
                f"{source_name(src)}: {len(rest)} more records with {what}"
                + (f"; the earliest is read at iteration {first.read.iteration}" if first else ""),
                Location(src.path),
                evidence=[Evidence(f"{i.record}: {i.message}", record_location(src, i), "data") for i in rest[:10]],
                fix=clean_fix(src, fix_what),
                culprit=source_name(src),
                data={
                    "source": src.path,
                    "count": len(rest),
                    "records": [i.record for i in rest],
                    "indices": [i.index for i in rest],
                },
            )
