"""Write the rules site's sources (``mkdocs.yml``, ``docs/``) into a folder and build it with mkdocs.

The folder is the generator's own: it carries a marker file, and an existing ``docs/`` is
replaced only when the marker says the generator wrote it. Nothing is written outside it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from nandoctor.core.registry import all_rules
from tools.site.cases import Case, find_cases
from tools.site.pages import family_of, index_page, page_name, rule_page

REPO = Path(__file__).resolve().parents[2]
MARKER = ".nandoctor-rules-site"
SITE_NAME = "nandoctor rules"


@dataclass(frozen=True)
class Sources:
    folder: Path  # holds mkdocs.yml and docs/
    codes: tuple[str, ...]  # one page per code, docs/rules/<CODE>.md
    cases: dict[str, list[Case]]  # the cases shown, by code
    orphans: tuple[str, ...]  # codes that have cases but no registered rule

    @property
    def config(self) -> Path:
        return self.folder / "mkdocs.yml"


def write_sources(folder: Path, repo: Path = REPO) -> Sources:
    """Generate the Markdown of every rule page and the index, and the mkdocs config."""
    folder = folder.resolve()
    docs = folder / "docs"
    if docs.exists():
        if not (folder / MARKER).is_file():
            raise SystemExit(f"{folder}: not a folder this generator wrote ({MARKER} is missing); pick another")
        shutil.rmtree(docs)
    (docs / "rules").mkdir(parents=True)
    (folder / MARKER).write_text("written by python3 -m tools.site; safe to delete\n", encoding="utf-8")

    rules = all_rules()
    codes = {r.code for r in rules}
    cases = find_cases(repo)
    (docs / "index.md").write_text(index_page(rules, cases), encoding="utf-8")
    for rule in rules:
        page = rule_page(rule, cases.get(rule.code, []), codes)
        (docs / "rules" / page_name(rule.code)).write_text(page, encoding="utf-8")
    (folder / "mkdocs.yml").write_text(mkdocs_config(rules), encoding="utf-8")
    return Sources(
        folder=folder,
        codes=tuple(r.code for r in rules),
        cases={c: v for c, v in cases.items() if c in codes},
        orphans=tuple(sorted(set(cases) - codes)),
    )


def mkdocs_config(rules) -> str:
    """mkdocs.yml: the built-in readthedocs theme with nothing fetched from the network (no
    highlight.js from a CDN), every link checked, and .html links so the site reads from disk."""
    q = json.dumps  # a JSON string is a valid double-quoted YAML scalar
    lines = [
        f"site_name: {q(SITE_NAME)}",
        'site_description: "What each nandoctor finding means, why it leads to NaN and how to fix it"',
        "docs_dir: docs",
        "use_directory_urls: false",
        "strict: true",
        "theme:",
        "  name: readthedocs",
        "  highlightjs: false",
        "  navigation_depth: 2",
        "  collapse_navigation: true",
        "  prev_next_buttons_location: both",
        "markdown_extensions:",
        "  - toc:",
        "      permalink: true",
        "  - tables",
        "  - attr_list",
        "  - fenced_code",
        "validation:",
        "  nav:",
        "    omitted_files: warn",
        "    not_found: warn",
        "    absolute_links: warn",
        "  links:",
        "    not_found: warn",
        "    anchors: warn",
        "    absolute_links: warn",
        "    unrecognized_links: warn",
        "nav:",
        f"  - {q('All rules')}: index.md",
    ]
    family = None
    for rule in rules:
        if family_of(rule.code) != family:
            family = family_of(rule.code)
            lines.append(f"  - {q(family.title)}:")
        lines.append(f"    - {q(f'{rule.code} {rule.title}')}: rules/{page_name(rule.code)}")
    return "\n".join(lines) + "\n"


def build_html(sources: Sources, site_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``mkdocs build --strict`` of the sources (a warning, e.g. a broken link, fails it)."""
    site_dir = site_dir or sources.folder / "site"
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "--clean"]
    cmd += ["--config-file", str(sources.config), "--site-dir", str(site_dir)]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=sources.folder)
