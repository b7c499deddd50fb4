"""Plain data shared by every part of nandoctor.

Readers produce facts, rules turn facts into :class:`Finding` objects, the
diagnosis ranks them and the front ends render them.  Nothing here does any
work beyond describing itself, so every subpackage can depend on it freely.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Cause(StrEnum):
    """The five ways a Caffe run goes NaN, plus the honest sixth answer."""

    GRADIENT_EXPLOSION = "gradient_explosion"
    LR_POLICY = "lr_policy"
    LOSS_FUNCTION = "loss_function"
    BAD_INPUT = "bad_input"
    POOLING = "pooling"
    UNKNOWN = "unknown"


class Bearing(StrEnum):
    """How a rule's findings bear on the diagnosis: which kind of evidence they are."""

    PREDICTION = "prediction"  # a config fact: present from iteration 0, fails when the run reaches it
    SYMPTOM = "symptom"  # what the training log shows happening
    RECORD = "record"  # a data record, acting from the iteration its batch is read
    ORIGIN = "origin"  # debug_info: the layer where a non-finite value is born or grows
    GUARD = "guard"  # the PyTorch guard's own observation of one step


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 0, "warning": 1, "info": 2}[self.value]


@dataclass(frozen=True, slots=True)
class Location:
    """A place in an input: a file position (1-based line/column), a log line or a record."""

    path: str
    line: int | None = None
    col: int | None = None
    end_line: int | None = None
    end_col: int | None = None
    record: str | None = None  # data set key or "file.h5:data[12]"

    def __str__(self) -> str:
        text = self.path
        if self.line is not None:
            text += f":{self.line}"
            if self.col is not None:
                text += f":{self.col}"
        if self.record is not None:
            text += f" [{self.record}]"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in _fields(self).items() if v is not None}


@dataclass(frozen=True, slots=True)
class Evidence:
    """One observation that supports a finding: a log line, a prototxt field, a record, a number."""

    text: str
    location: Location | None = None
    kind: str = "computed"  # prototxt | log | data | computed

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "text": self.text}
        if self.location is not None:
            out["location"] = self.location.to_dict()
        return out


@dataclass(frozen=True, slots=True)
class Edit:
    """Replace ``old`` at character offsets [start, end) of ``path`` with ``new``.

    ``line``/``col`` describe ``start`` for people; offsets are what gets applied.
    An insertion has start == end and old == "".
    """

    path: str
    start: int
    end: int
    old: str
    new: str
    line: int | None = None
    col: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return _fields(self)


@dataclass(frozen=True, slots=True)
class Fix:
    """What to change: a sentence for people and, where possible, exact edits."""

    description: str
    edits: tuple[Edit, ...] = ()
    safe: bool = True  # False when the edit changes training behaviour beyond removing the NaN

    def to_dict(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "safe": self.safe,
            "edits": [e.to_dict() for e in self.edits],
        }


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    severity: Severity
    cause: Cause
    message: str
    location: Location | None = None
    evidence: tuple[Evidence, ...] = ()
    fix: Fix | None = None
    culprit: str | None = None  # layer name, solver field or record the finding blames
    data: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "code": self.code,
            "severity": self.severity.value,
            "cause": self.cause.value,
            "message": self.message,
        }
        if self.location is not None:
            out["location"] = self.location.to_dict()
        if self.culprit is not None:
            out["culprit"] = self.culprit
        out["evidence"] = [e.to_dict() for e in self.evidence]
        out["fix"] = self.fix.to_dict() if self.fix else None
        if self.data:
            out["data"] = self.data
        return out


@dataclass(slots=True)
class Report:
    """Findings over a set of inputs, in the order they were produced."""

    inputs: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def extend(self, findings) -> None:
        self.findings.extend(findings)

    def sorted(self) -> list[Finding]:
        def key(f: Finding):
            loc = f.location
            return (
                loc.path if loc else "",
                loc.line or 0 if loc else 0,
                loc.col or 0 if loc else 0,
                f.code,
            )

        return sorted(self.findings, key=key)

    @property
    def worst(self) -> Severity | None:
        if not self.findings:
            return None
        return min((f.severity for f in self.findings), key=lambda s: s.rank)

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": list(self.inputs), "findings": [f.to_dict() for f in self.sorted()]}


@dataclass(frozen=True, slots=True)
class CauseScore:
    """One ranked cause in a diagnosis."""

    cause: Cause
    confidence: float
    culprit: str | None
    evidence: tuple[Evidence, ...] = ()
    fixes: tuple[Fix, ...] = ()
    explanation: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "cause": self.cause.value,
            "confidence": round(self.confidence, 3),
            "culprit": self.culprit,
            "explanation": self.explanation,
            "evidence": [e.to_dict() for e in self.evidence],
            "fixes": [f.to_dict() for f in self.fixes],
        }


class Verdict(StrEnum):
    NAN = "nan"
    DIVERGING = "diverging"
    WILL_FAIL = "will_fail"
    HEALTHY = "healthy"
    INCONCLUSIVE = "inconclusive"


@dataclass(slots=True)
class Diagnosis:
    verdict: Verdict
    causes: list[CauseScore] = field(default_factory=list)
    first_nonfinite_iteration: int | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)
    ruled_out: list[tuple[Cause, str]] = field(default_factory=list)  # causes the evidence speaks against, and why
    warnings: list[str] = field(default_factory=list)  # a run that did not fail but is not well

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "first_nonfinite_iteration": self.first_nonfinite_iteration,
            "causes": [c.to_dict() for c in self.causes],
            "inputs": self.inputs,
            "next_steps": list(self.next_steps),
            "ruled_out": [{"cause": c.value, "why": why} for c, why in self.ruled_out],
            "warnings": list(self.warnings),
            "findings": [f.to_dict() for f in self.findings],
        }


class InputError(Exception):
    """Bad user input: rendered as ``path:line:col: message`` with exit code 2, never a traceback."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None, col: int | None = None):
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.col = col

    def __str__(self) -> str:
        where = ""
        if self.path:
            where = self.path
            if self.line is not None:
                where += f":{self.line}"
                if self.col is not None:
                    where += f":{self.col}"
            where += ": "
        return where + self.message


def _fields(obj) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}
