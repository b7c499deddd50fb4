"""The shared body of the schema rules: validate each document once, keep one rule's findings."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from nandoctor.config.forks import chosen_flavor, severity_for
from nandoctor.config.validate import validate_cached
from nandoctor.core.registry import Facts, Rule
from nandoctor.core.types import Bearing, Cause, Finding


class SchemaRule(Rule):
    """Base class (not registered): subclasses set ``code`` to one of ``config.validate``'s codes."""

    cause = Cause.UNKNOWN
    bears = Bearing.PREDICTION
    needs = ("documents",)

    def check(self, facts: Facts) -> Iterator[Finding]:
        flavor = chosen_flavor(facts.options)
        for doc, root in facts.documents:
            for finding in validate_cached(doc, root):
                if finding.code != self.code:
                    continue
                fork = finding.data.get("fork")
                if fork is not None and flavor is not None:
                    # the user said which Caffe runs the file: another fork's construct breaks there
                    finding = replace(finding, severity=severity_for(fork, flavor))
                yield finding
