"""The site's Markdown pages: one per rule code, and the index by family and by cause."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from nandoctor.core.registry import DOC_SECTIONS, Rule
from tools.site.cases import KINDS, Case
from tools.site.markdown import cell, code_span, fence, prose


@dataclass(frozen=True)
class Family:
    prefix: str  # the code prefix, e.g. NAN1
    slug: str
    title: str


FAMILIES = (
    Family("NAN0", "schema", "Prototxt text and schema (NAN0xx)"),
    Family("NAN1", "net", "Nets (NAN1xx)"),
    Family("NAN2", "solver", "Solvers and learning-rate schedules (NAN2xx)"),
    Family("NAN3", "log", "Training logs (NAN3xx)"),
    Family("NAN4", "data", "Data sets (NAN4xx)"),
    Family("NAN5", "debug", "debug_info: where the first non-finite value is born (NAN5xx)"),
    Family("NAN6", "torch", "PyTorch guard (NAN6xx)"),
    Family("NAN7", "runs", "Framework runs: HF Trainer, Lightning, TensorBoard (NAN7xx)"),
)

CAUSES = {
    "gradient_explosion": "values grow step after step until they overflow float32",
    "lr_policy": "the learning-rate schedule itself becomes NaN, negative, zero or grows",
    "loss_function": "a layer takes log, sqrt, 1/x or a power of something that can be 0 or negative",
    "bad_input": "a record of the data set holds NaN, inf, absurd values or cannot be read",
    "pooling": "a pooling window lies outside its input",
    "unknown": "the finding does not decide the cause by itself (a file Caffe refuses, a symptom)",
}

# what each fact a rule needs is, and the commands that report the rule's findings
READS = {
    "documents": ("prototxt text", ("nandoctor lint", "nandoctor diagnose")),
    "net": ("a net prototxt", ("nandoctor lint", "nandoctor diagnose")),
    "solver": ("a solver prototxt", ("nandoctor lint", "nandoctor lr", "nandoctor diagnose")),
    "trace": ("a Caffe training log", ("nandoctor log", "nandoctor diagnose", "nandoctor watch")),
    "data": ("a data scan", ("nandoctor scan-data", "nandoctor diagnose")),
    "torch": ("the PyTorch guard's replay of the failing step", ("nandoctor.torch",)),
    "run": ("an HF Trainer, Lightning or TensorBoard run", ("nandoctor diagnose RUN",)),
}
LINTED = {"documents", "net", "solver"}


def family_of(code: str) -> Family:
    for family in FAMILIES:
        if code.startswith(family.prefix):
            return family
    digit = code[3]
    return Family(code[:4], f"other-{digit}", f"Other rules (NAN{digit}xx)")


def page_name(code: str) -> str:
    return f"{code}.md"


def cause_anchor(cause: str) -> str:
    return f"cause-{cause.replace('_', '-')}"


def rule_page(rule: type[Rule], cases: list[Case], codes: set[str]) -> str:
    """The Markdown of one rule's page (in docs/rules/, beside the other rules' pages)."""
    family = family_of(rule.code)
    cause = rule.cause.value

    def link(code: str) -> str | None:
        return page_name(code) if code in codes and code != rule.code else None

    reads = [READS.get(n, (n, ())) for n in rule.needs]
    lines = [
        f"# {rule.code}: {prose(rule.title, link)}",
        "",
        "| Severity | Cause | Family | Reads |",
        "| --- | --- | --- | --- |",
        "| {} | [{}](../index.md#{}) | [{}](../index.md#family-{}) | {} |".format(
            rule.severity.value,
            cause,
            cause_anchor(cause),
            cell(family.title),
            family.slug,
            cell(", ".join(what for what, _ in reads)),
        ),
        "",
    ]
    commands = list(dict.fromkeys(c for _, cs in reads for c in cs))
    if commands:
        lines += ["Reported by " + ", ".join(code_span(c) for c in commands) + ".", ""]
    if set(rule.needs) <= LINTED:
        lines += [
            f"`nandoctor rules {rule.code}` prints this text. In a prototxt, "
            f"`# nandoctor: noqa: {rule.code}` at the end of a line silences this finding there; "
            f"`nandoctor lint --ignore {rule.code}` silences it everywhere.",
            "",
        ]
    else:
        lines += [f"`nandoctor rules {rule.code}` prints this text.", ""]
    docs = rule.docs()
    for section in (*DOC_SECTIONS, *(s for s in docs if s not in DOC_SECTIONS)):
        lines += [f"## {section}", "", prose(docs.get(section, "(not written yet)"), link), ""]
    lines += case_section(rule.code, cases)
    return "\n".join(lines).rstrip() + "\n"


def case_section(code: str, cases: list[Case]) -> list[str]:
    lines = ["## Cases", ""]
    if not cases:
        return [
            *lines,
            f"No case yet. A case is a file in `tests/cases/{code}/` named `fail_<name>.prototxt` (or `pass_`, "
            "`fix_`; `.log` and `.json` inputs too) whose header says what nandoctor finds in it.",
            "",
        ]
    lines += [f"The test suite runs each of these files through nandoctor ({case_counts(cases)}).", ""]
    for case in cases:
        lines += one_case(case)
    return lines


def one_case(case: Case) -> list[str]:
    title = case.name.replace("_", " ")
    lines = [f"### {case.kind}: {title}", "", f"File {code_span(case.path.as_posix())}.", ""]
    expected = case.expected
    if expected:
        lines += [f"Expected: {', '.join(code_span(e) for e in expected)}.", ""]
    elif case.kind == "pass":
        lines += ["Expected: no finding.", ""]
    lines += [fence(case.text, case.language)]
    if case.kind == "fix":
        if case.fixed is None:
            lines += ["The fixed text of this case is missing (a sibling `*.fixed.*` file).", ""]
        else:
            lines += [f"The fix turns it into {code_span(case.fixed_path.as_posix())}:", "", fence(diff(case), "diff")]
    return lines


def diff(case: Case) -> str:
    before = case.text.splitlines(keepends=True)
    after = (case.fixed or "").splitlines(keepends=True)
    out = difflib.unified_diff(before, after, fromfile=case.path.name, tofile=case.fixed_path.name, n=2)
    text = "".join(line if line.endswith("\n") else line + "\n" for line in out)
    return text or "(the fixed text equals the input)\n"


def index_page(rules: Iterable[type[Rule]], cases: dict[str, list[Case]]) -> str:
    rules = list(rules)
    with_cases = sum(1 for r in rules if cases.get(r.code))
    lines = [
        "# nandoctor rules",
        "",
        f"Every check nandoctor makes has a code, one page here ({len(rules)} rules), and the text "
        "`nandoctor rules CODE` prints: what it detects, why that leads to NaN, how to fix it, an "
        f"example, and the test cases it is checked on ({with_cases} of {len(rules)} rules have cases so far).",
        "",
        "`nandoctor lint --select NAN1 --ignore NAN140` picks rules by code or prefix as ruff does.",
        "",
        "## By family",
        "",
    ]
    families: dict[str, list[type[Rule]]] = {}
    for rule in rules:
        families.setdefault(family_of(rule.code).slug, []).append(rule)
    for slug, members in families.items():
        family = family_of(members[0].code)
        lines += [f"### {family.title} {{#family-{slug}}}", "", "| Code | Title | Severity | Cause | Cases |"]
        lines += ["| --- | --- | --- | --- | --- |"]
        for r in members:
            lines.append(
                f"| [{r.code}](rules/{page_name(r.code)}) | {cell(prose(r.title, lambda _c: None))} | "
                f"{r.severity.value} | [{r.cause.value}](#{cause_anchor(r.cause.value)}) | "
                f"{case_counts(cases.get(r.code, []))} |"
            )
        lines.append("")
    lines += ["## By cause", ""]
    by_cause: dict[str, list[type[Rule]]] = {}
    for rule in rules:
        by_cause.setdefault(rule.cause.value, []).append(rule)
    for cause in [*(c for c in CAUSES if c in by_cause), *sorted(c for c in by_cause if c not in CAUSES)]:
        lines += [f"### {cause} {{#{cause_anchor(cause)}}}", ""]
        if cause in CAUSES:
            lines += [CAUSES[cause][0].upper() + CAUSES[cause][1:] + ".", ""]
        lines += [
            f"- [{r.code}](rules/{page_name(r.code)}): {prose(r.title, lambda _c: None)}" for r in by_cause[cause]
        ]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def case_counts(cases: list[Case]) -> str:
    if not cases:
        return "none yet"
    return ", ".join(f"{sum(c.kind == k for c in cases)} {k}" for k in KINDS if any(c.kind == k for c in cases))
