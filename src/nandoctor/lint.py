"""Static checks of config files: parse, build the units, run the registered rules.

Each net and each solver is checked as its own unit so a rule sees one net or one
solver at a time; findings are de-duplicated because a net file named by a solver
and also given on the command line is read once but could be reached twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nandoctor.config.load import ConfigSet, load_configs
from nandoctor.core.registry import Facts, Rule, run_rules, select_rules
from nandoctor.core.types import Finding, Report


def facts_units(configs: ConfigSet, options: dict[str, Any] | None = None) -> list[Facts]:
    """One Facts per document (schema rules), per net (net rules) and per solver (solver rules)."""
    opts = dict(options or {})
    units = [Facts(documents=[pair], options=opts) for pair in configs.documents]
    units += [Facts(net=net, options=opts) for net in configs.nets]
    units += [Facts(solver=solver, options=opts) for solver in configs.solvers]
    return units


def _dedupe(findings: Iterable[Finding]) -> list[Finding]:
    seen: set[tuple] = set()
    out = []
    for f in findings:
        loc = f.location
        key = (f.code, f.message, loc.path if loc else None, loc.line if loc else None, loc.col if loc else None)
        if key in seen:
            continue
        seen.add(key)
        out.append(f)
    return out


def lint_configs(
    configs: ConfigSet,
    options: dict[str, Any] | None = None,
    rules: list[type[Rule]] | None = None,
) -> list[Finding]:
    chosen = rules if rules is not None else select_rules()
    by_needs = [r for r in chosen if r.needs]
    found: list[Finding] = []
    for unit in facts_units(configs, options):
        # a unit only carries one kind of fact, so rules that need two kinds run in a combined unit below
        found.extend(run_rules(unit, [r for r in by_needs if len(r.needs) == 1]))
    combined = Facts(
        net=configs.train_net,
        solver=configs.solvers[0] if configs.solvers else None,
        documents=list(configs.documents),
        options=dict(options or {}),
    )
    found.extend(run_rules(combined, [r for r in by_needs if len(r.needs) > 1]))
    return _dedupe(found)


def lint_paths(
    paths: list[str | Path],
    options: dict[str, Any] | None = None,
    select: Iterable[str] = (),
    ignore: Iterable[str] = (),
) -> tuple[Report, ConfigSet]:
    configs = load_configs(paths)
    report = Report(inputs=[d.path for d, _ in configs.documents])
    report.extend(lint_configs(configs, options, select_rules(select, ignore)))
    return report, configs
