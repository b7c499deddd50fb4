"""The rule registry: every check is a small class with a stable code, a title and docs.

A rule's docstring *is* its documentation (as in ruff and sqlfluff) and must have
four sections, each introduced by a line ``## <heading>``:

    ## What it detects
    ## Why it leads to NaN
    ## How to fix
    ## Example

``nandoctor rules CODE`` prints exactly that text. A rule declares which facts it
needs (``needs``); the runner calls it only when all of them are present.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from nandoctor.core.types import Bearing, Cause, Evidence, Finding, Fix, Location, Severity

DOC_SECTIONS = ("What it detects", "Why it leads to NaN", "How to fix", "Example")
CODE_RE = re.compile(r"^NAN\d{3}$")


@dataclass
class Facts:
    """Everything the readers learned, handed to the rules. Any part may be missing.

    net       -- nandoctor.config.net.Net (a parsed net, every phase)
    solver    -- nandoctor.config.solver.Solver (a parsed solver)
    trace     -- nandoctor.log.trace.Trace (a parsed Caffe log)
    data      -- nandoctor.data.report.DataReport (a data scan)
    documents -- [(textformat.Document, root message type)] of every prototxt read
    options   -- command-line knobs ({"iters": 130}, {"input_shapes": ...}, {"top_shapes": ...})
    torch     -- nandoctor.torch.facts.TorchFacts (a PyTorch guard's first non-finite step)
    run       -- nandoctor.runs.timeline.RunTimeline (a HF Trainer, Lightning or TensorBoard run)
    """

    net: Any = None
    solver: Any = None
    trace: Any = None
    data: Any = None
    documents: list[Any] = field(default_factory=list)
    torch: Any = None
    run: Any = None
    options: dict[str, Any] = field(default_factory=dict)

    def has(self, name: str) -> bool:
        if name == "documents":
            return bool(self.documents)
        return getattr(self, name) is not None


class Rule:
    """Base class. Subclasses set the ClassVars, write the docstring and implement ``check``."""

    code: ClassVar[str]
    title: ClassVar[str]
    cause: ClassVar[Cause]
    severity: ClassVar[Severity] = Severity.WARNING
    needs: ClassVar[tuple[str, ...]] = ()
    # How the findings bear on the diagnosis; a rule with a cause must say (the engine votes by it).
    bears: ClassVar[Bearing | None] = None

    def votes(self, finding: Finding, ctx: Any) -> Iterable[Any] | None:
        """The rule's own votes for ``finding`` (``nandoctor.diagnose.signals.Signal``), given the
        diagnosis context ``ctx``; None leaves them to the engine's default for ``bears``."""
        return None

    def check(self, facts: Facts) -> Iterable[Finding]:  # pragma: no cover - abstract
        raise NotImplementedError

    def finding(
        self,
        message: str,
        location: Location | None = None,
        *,
        severity: Severity | None = None,
        cause: Cause | None = None,
        evidence: Iterable[Evidence] = (),
        fix: Fix | None = None,
        culprit: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> Finding:
        return Finding(
            code=self.code,
            severity=severity or self.severity,
            cause=cause or self.cause,
            message=message,
            location=location,
            evidence=tuple(evidence),
            fix=fix,
            culprit=culprit,
            data=data or {},
        )

    @classmethod
    def docs(cls) -> dict[str, str]:
        return parse_doc(cls.__doc__ or "")


_REGISTRY: dict[str, type[Rule]] = {}
_LOADED = False


def register(cls: type[Rule]) -> type[Rule]:
    """Class decorator: add a rule to the registry after checking it is complete."""
    if not CODE_RE.match(getattr(cls, "code", "")):
        raise ValueError(f"{cls.__name__}: code must look like NAN123")
    if cls.code in _REGISTRY and _REGISTRY[cls.code] is not cls:
        raise ValueError(f"duplicate rule code {cls.code}: {cls.__name__} and {_REGISTRY[cls.code].__name__}")
    missing = [s for s in DOC_SECTIONS if s not in cls.docs()]
    if missing:
        raise ValueError(f"{cls.code}: docstring lacks section(s) {missing}")
    _REGISTRY[cls.code] = cls
    return cls


def parse_doc(doc: str) -> dict[str, str]:
    """Split a rule docstring into its ``## heading`` sections (dedented, stripped)."""
    text = inspect.cleandoc(doc)
    sections: dict[str, str] = {}
    current: str | None = None
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith("## "):
            if current is not None:
                sections[current] = "\n".join(lines).strip()
            current, lines = line[3:].strip(), []
        elif current is not None:
            lines.append(line)
    if current is not None:
        sections[current] = "\n".join(lines).strip()
    return sections


def load_rules() -> None:
    """Import every module below ``nandoctor.rules`` so their rules register themselves."""
    global _LOADED
    if _LOADED:
        return
    import nandoctor.rules as pkg

    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        importlib.import_module(info.name)
    _LOADED = True


def area_rules(area: str) -> list[type[Rule]]:
    """The rules of one area (``data`` for NAN4xx, ...), importing only that area's modules.

    For a command that needs one family: ``scan-data`` starts faster without the log and net rules.
    """
    if not _LOADED:
        pkg = importlib.import_module(f"nandoctor.rules.{area}")
        for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            importlib.import_module(info.name)
    prefix = f"nandoctor.rules.{area}."
    return [_REGISTRY[c] for c in sorted(_REGISTRY) if _REGISTRY[c].__module__.startswith(prefix)]


def all_rules() -> list[type[Rule]]:
    load_rules()
    return [_REGISTRY[c] for c in sorted(_REGISTRY)]


def get_rule(code: str) -> type[Rule] | None:
    load_rules()
    return _REGISTRY.get(code.upper())


def select_rules(select: Iterable[str] = (), ignore: Iterable[str] = ()) -> list[type[Rule]]:
    """Rules whose code starts with any ``select`` prefix (all if none) and no ``ignore`` prefix."""
    sel = [s.upper() for s in select if s]
    ign = [s.upper() for s in ignore if s]
    out = []
    for cls in all_rules():
        if sel and not any(cls.code.startswith(s) for s in sel):
            continue
        if any(cls.code.startswith(s) for s in ign):
            continue
        out.append(cls)
    return out


def run_rules(facts: Facts, rules: Iterable[type[Rule]] | None = None) -> Iterator[Finding]:
    """Run every applicable rule on the facts; rules lacking a needed fact are skipped."""
    for cls in rules if rules is not None else all_rules():
        if all(facts.has(n) for n in cls.needs):
            yield from cls().check(facts)
