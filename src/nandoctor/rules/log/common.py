"""The shared body of the log rules: run one symptom detector per run (segment) of the trace."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import ClassVar

from nandoctor.core.registry import Facts, Rule
from nandoctor.core.types import Bearing, Cause, Evidence, Finding, Location
from nandoctor.log.symptom import Symptom
from nandoctor.log.symptoms import detected
from nandoctor.log.trace import Segment, Trace


class SymptomRule(Rule):
    """Base class (not registered): subclasses name a detector and the symptom kinds they report."""

    cause = Cause.UNKNOWN
    bears = Bearing.SYMPTOM
    needs = ("trace",)
    detector: ClassVar[Callable[[Trace, Segment], list[Symptom]]]
    kinds: ClassVar[tuple[str, ...]]

    def check(self, facts: Facts) -> Iterator[Finding]:
        trace: Trace = facts.trace
        detect = type(self).detector
        for seg in trace.segments:
            for sym in detected(detect, trace, seg):
                if sym.kind in self.kinds:
                    yield self.symptom_finding(trace, sym)

    def symptom_finding(self, trace: Trace, sym: Symptom) -> Finding:
        evidence = [Evidence(text, Location(trace.path, line), "log") for line, text in sym.evidence]
        location = Location(trace.path, sym.evidence[-1][0]) if sym.evidence else Location(trace.path)
        data = {"kind": sym.kind, "segment": sym.segment, "iteration": sym.iteration, **sym.data}
        message = f"run {sym.segment + 1}: {sym.message}" if len(trace.segments) > 1 else sym.message
        return self.finding(
            message, location, cause=sym.cause, evidence=evidence, culprit=sym.culprit, data=_plain(data)
        )


def _plain(value):
    """JSON-friendly data: nan/inf floats become their text, tuples lists."""
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        return value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
