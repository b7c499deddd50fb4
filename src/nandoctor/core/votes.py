"""The rule -> engine contract: a rule's finding becomes votes for causes.

A ``Signal`` is one reason to believe (positive weight) or doubt (negative weight) a cause,
tied to the finding that shows it, with the culprit it names. A rule says how its findings
bear on the diagnosis with ``bears`` (``nandoctor.core.types.Bearing``), which picks the
engine's default votes for that kind of evidence, and may give its own in ``votes(finding,
ctx)``. ``VoteContext`` is what a rule may weigh its finding against.

The weights are on one scale: STRONG (the log or debug_info shows the cause directly), MATCH
(a bad record read in the window that made the NaN), PREDICTED (a config fact that makes the
cause certain when the run reaches it), HINT (consistent with the cause, not specific to it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nandoctor.core.types import Cause, Evidence, Finding

STRONG = 5.0
MATCH = 6.0
PREDICTED = 3.0
HINT = 1.0


@dataclass(frozen=True, slots=True)
class Signal:
    cause: Cause
    weight: float
    reason: str
    finding: Finding | None = None
    culprit: str | None = None
    culprit_rank: float = 0.0  # the highest-ranked culprit of a cause is the one named
    evidence: tuple[Evidence, ...] = ()  # for signals that no single finding carries
    # a symptom of whatever made the step too large: discounted when the chain shows a cause upstream
    symptom: bool = False
    delayed: bool = False  # a bad record read before the loss drifted, whose harm builds up

    @property
    def key(self) -> str:
        return self.finding.code if self.finding is not None else self.reason


@dataclass(frozen=True, slots=True)
class VoteContext:
    timeline: Any  # nandoctor.diagnose.timeline.Timeline
    heads: dict[str, str] = field(default_factory=dict)  # loss top / loss layer -> loss layer (TRAIN)
    net: Any = None  # the TRAIN net, when configs were read

    @property
    def several_heads(self) -> bool:
        return len(set(self.heads.values())) > 1

    def loss_weight_culprit(self, f: Finding) -> str | None:
        """``<loss layer>.loss_weight`` for a finding naming a loss output (top) or a loss layer."""
        name = f.data.get("loss_head") or f.data.get("output") or f.data.get("layer") or f.culprit
        if not name:
            return None
        return f"{self.heads.get(name, name)}.loss_weight"


def candidates(f: Finding) -> list[Cause]:
    """The causes a symptom finding lists as consistent with it."""
    out = []
    for c in f.data.get("candidates", []) or []:
        try:
            out.append(Cause(c))
        except ValueError:
            continue
    return out
