"""Read a rule's data-driven cases from the repository, in both places they live.

``tests/cases/<CODE>/<kind>_<name>.<ext>``: kind is pass, fail or fix; ext is prototxt, log or
json. A text case starts with ``# key: value`` header lines (``expect: NAN101 5:3``,
``culprit: pool1``, ``root: NetParameter``); a JSON case keeps its header in a top-level
``"case"`` object. A fix case has a sibling ``<kind>_<name>.fixed.<ext>`` (or
``<name>.fixed.<ext>``) holding the exact text the fix produces.

``tests/fixtures/config/<CODE>_<kind>_<name>.prototxt``: the schema rules' older cases, same header.

When a case is in both places (moved, not yet deleted), the one under tests/cases wins.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

KINDS = ("fail", "fix", "pass")  # the order a page shows them in
EXTENSIONS = ("prototxt", "log", "json")
CASE_NAME = re.compile(rf"^(?P<kind>{'|'.join(KINDS)})_(?P<name>.+)\.(?P<ext>{'|'.join(EXTENSIONS)})$")
FIXTURE_NAME = re.compile(rf"^(?P<code>NAN\d{{3}})_(?P<kind>{'|'.join(KINDS)})_(?P<name>.+)\.prototxt$")
HEADER_LINE = re.compile(r"^# (?P<key>[A-Za-z][\w-]*): ?(?P<value>.*)$")
CODE_DIR = re.compile(r"^NAN\d{3}$")


class CaseError(ValueError):
    """A case file that cannot be read as a case; names the file."""

    def __init__(self, path: Path, message: str):
        super().__init__(f"{path}: {message}")
        self.path = path


@dataclass(frozen=True)
class Case:
    code: str
    kind: str  # pass | fail | fix
    name: str
    path: Path  # relative to the repository
    header: dict[str, list[str]]  # every header key with its values, in file order
    text: str  # the whole file, header included
    language: str  # the fence's info string: text or json
    fixed: str | None = None  # a fix case's exact fixed text
    fixed_path: Path | None = None

    @property
    def expected(self) -> list[str]:
        return self.header.get("expect", [])


def text_header(text: str) -> dict[str, list[str]]:
    """The leading ``# key: value`` lines of a text case: each key with its values, in file order."""
    header: dict[str, list[str]] = {}
    for line in text.splitlines():
        m = HEADER_LINE.match(line)
        if m is None:
            break
        header.setdefault(m["key"], []).append(m["value"].strip())
    return header


def read_case(path: Path) -> tuple[dict[str, list[str]], str]:
    """A case file's header and its whole text (shown as it is, so positions match the file)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise CaseError(path, f"not UTF-8 text ({e.reason})") from None
    if path.suffix != ".json":
        return text_header(text), text
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise CaseError(path, f"not JSON: line {e.lineno} column {e.colno}: {e.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("case"), dict):
        raise CaseError(path, 'a JSON case is an object with its header in a "case" object')
    header = {str(k): [str(x) for x in v] if isinstance(v, list) else [str(v)] for k, v in data["case"].items()}
    return header, text


def fixed_sibling(path: Path, kind: str, name: str, ext: str) -> Path | None:
    """A fix case's file of the exact fixed text."""
    if kind != "fix":
        return None
    for sibling in (path.with_name(f"{kind}_{name}.fixed.{ext}"), path.with_name(f"{name}.fixed.{ext}")):
        if sibling.is_file():
            return sibling
    return None


def _case(path: Path, repo: Path, code: str, kind: str, name: str, ext: str) -> Case:
    header, text = read_case(path)
    sibling = fixed_sibling(path, kind, name, ext)
    return Case(
        code=code,
        kind=kind,
        name=name,
        path=path.relative_to(repo),
        header=header,
        text=text,
        language="json" if ext == "json" else "text",
        fixed=sibling.read_text(encoding="utf-8") if sibling else None,
        fixed_path=sibling.relative_to(repo) if sibling else None,
    )


def _case_files(repo: Path) -> Iterable[tuple[Path, str, str, str, str]]:
    cases = repo / "tests" / "cases"
    if cases.is_dir():
        for folder in sorted(p for p in cases.iterdir() if p.is_dir() and CODE_DIR.match(p.name)):
            for path in sorted(folder.iterdir()):
                m = CASE_NAME.match(path.name)
                if m and path.is_file() and not m["name"].endswith(".fixed"):
                    yield path, folder.name, m["kind"], m["name"], m["ext"]
    fixtures = repo / "tests" / "fixtures" / "config"
    if fixtures.is_dir():
        for path in sorted(fixtures.iterdir()):
            m = FIXTURE_NAME.match(path.name)
            if m and path.is_file():
                yield path, m["code"], m["kind"], m["name"], "prototxt"


def find_cases(repo: Path) -> dict[str, list[Case]]:
    """code -> its cases (fail, fix, pass; by name), from tests/cases first, then the old fixtures."""
    found: dict[str, dict[tuple[str, str], Case]] = {}
    for path, code, kind, name, ext in _case_files(repo):
        by_key = found.setdefault(code, {})
        if (kind, name) not in by_key:  # tests/cases is read first and wins
            by_key[kind, name] = _case(path, repo, code, kind, name, ext)
    return {
        code: sorted(by_key.values(), key=lambda c: (KINDS.index(c.kind), c.name))
        for code, by_key in sorted(found.items())
    }
