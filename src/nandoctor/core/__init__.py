"""Plain data types and the rule registry shared by every subpackage."""

from nandoctor.core.registry import Facts, Rule, register
from nandoctor.core.types import (
    Cause,
    CauseScore,
    Diagnosis,
    Edit,
    Evidence,
    Finding,
    Fix,
    InputError,
    Location,
    Report,
    Severity,
    Verdict,
)

__all__ = [
    "Cause",
    "CauseScore",
    "Diagnosis",
    "Edit",
    "Evidence",
    "Facts",
    "Finding",
    "Fix",
    "InputError",
    "Location",
    "Report",
    "Rule",
    "Severity",
    "Verdict",
    "register",
]
