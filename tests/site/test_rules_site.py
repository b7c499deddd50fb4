"""The rules site, generated from the registered rules and the repository's cases and built with
``mkdocs build --strict`` (any warning, such as a broken link or anchor, fails it): one page per
code with its what/why/fix/example sections and its cases, every internal link resolving, nothing
fetched from the network, and a page that renders in headless Chromium at desktop and phone width
(a screenshot is kept in $NANDOCTOR_ARTIFACTS/site-screenshots, or pytest's temp folder).

Skipped when mkdocs is not installed (the test extra has it), the browser part when no Chromium is."""

from __future__ import annotations

import html
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from tools.site.build import REPO, build_html, write_sources

from nandoctor.core.registry import DOC_SECTIONS, all_rules
from tests.diagnose.browser import WIDTHS, find_chromium
from tests.site.page_probe import open_page

SECTION_IDS = {
    "What it detects": "what-it-detects",
    "Why it leads to NaN": "why-it-leads-to-nan",
    "How to fix": "how-to-fix",
    "Example": "example",
    "Cases": "cases",
}
SMALLEST_FONT = 12  # CSS px a reader can still read on a phone


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install -e '.[test]' brings it)")
    sources = write_sources(tmp_path_factory.mktemp("rules-site"), repo=REPO)
    done = build_html(sources)
    assert done.returncode == 0, done.stderr
    return sources, sources.folder / "site", done.stderr


class _Page(HTMLParser):
    """Every id, every link or resource reference, and the text under each h1/h2 of a page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.refs: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.headings: list[tuple[str, str | None, list[str]]] = []  # (tag, id, text after it)
        self._in_heading: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        for attr in ("href", "src"):
            if a.get(attr) is not None:
                self.refs.append((tag, attr, a[attr]))
        if tag == "link" and "stylesheet" not in (a.get("rel") or ""):
            self.refs[-1:] = [(tag, "href-other", a.get("href", ""))] if a.get("href") else []
        if tag in ("h1", "h2"):
            self.headings.append((tag, a.get("id"), []))
            self._in_heading = tag

    def handle_endtag(self, tag):
        if tag == self._in_heading:
            self._in_heading = None

    def handle_data(self, data):
        if self.headings:
            self.headings[-1][2].append(data)


def parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def words(text: str) -> str:
    return " ".join(re.sub(r"[`*\\]", "", text).split())


def test_the_site_builds_strictly(built):
    _, site, log = built
    assert "WARNING" not in log and "ERROR" not in log, log
    assert (site / "index.html").is_file() and (site / "search" / "search_index.json").is_file()


def test_one_page_per_registered_code_with_its_documentation(built):
    sources, site, _ = built
    rules = all_rules()
    assert [r.code for r in rules] == list(sources.codes)
    assert sorted(p.stem for p in (site / "rules").glob("NAN*.html")) == [r.code for r in rules]
    for rule in rules:
        page = parse(site / "rules" / f"{rule.code}.html")
        h1 = [h for h in page.headings if h[0] == "h1"]
        assert len(h1) == 1 and words("".join(h1[0][2][:1])).startswith(f"{rule.code}: "), rule.code
        sections = {hid: words("".join(text)) for tag, hid, text in page.headings if tag == "h2"}
        assert set(SECTION_IDS.values()) <= set(sections), (rule.code, sorted(sections))
        docs = rule.docs()
        for section in DOC_SECTIONS:
            text = sections[SECTION_IDS[section]]
            assert words(docs[section])[:40] in text, (rule.code, section)  # the docstring's words, as written


def test_each_case_is_shown_on_its_rules_page(built):
    sources, site, _ = built
    assert sources.cases, "the repository has cases (tests/cases or tests/fixtures/config)"
    for code in sources.codes:
        page = html.unescape((site / "rules" / f"{code}.html").read_text(encoding="utf-8"))
        cases = sources.cases.get(code, [])
        if not cases:
            assert "No case yet." in page, code
        for case in cases:
            assert f"<code>{case.path.as_posix()}</code>" in page, (code, case.path)
            assert case.text in page, (code, case.path)  # the whole file, verbatim
            for expected in case.expected:
                assert f"<code>{expected}</code>" in page, (code, expected)


def test_the_index_lists_every_rule_by_family_and_by_cause(built):
    sources, site, _ = built
    text = (site / "index.html").read_text(encoding="utf-8")
    page, main = parse(site / "index.html"), _Page()
    main.feed(text[text.index('role="main"') : text.index("<footer")])  # the page, without its navigation
    targets = [v for tag, _, v in main.refs if tag == "a" and re.fullmatch(r"rules/NAN\d{3}\.html", v)]
    for code in sources.codes:
        assert targets.count(f"rules/{code}.html") == 2, code  # once in its family's table, once under its cause
    causes = {r.cause.value for r in all_rules()}
    assert {f"cause-{c.replace('_', '-')}" for c in causes} <= page.ids
    assert {"family-schema", "family-net", "family-solver", "family-torch"} <= page.ids


def test_every_internal_link_resolves_and_nothing_comes_from_the_network(built):
    _, site, _ = built
    pages = sorted(site.rglob("*.html"))
    parsed = {p: parse(p) for p in pages}
    checked = 0
    for path, page in parsed.items():
        for tag, attr, value in page.refs:
            url = urlsplit(value)
            if url.scheme in ("http", "https"):
                assert tag == "a", f"{path.name}: <{tag} {attr}={value}> would be fetched from the network"
                continue
            if url.scheme or value.startswith("//"):
                assert url.scheme == "mailto", (path.name, value)
                continue
            if url.path.startswith("/"):  # 404.html links from the site's root, wherever it is served
                target = site / unquote(url.path).lstrip("/")
            else:
                target = (path.parent / unquote(url.path)).resolve() if url.path else path
            if target.is_dir():
                target = target / "index.html"
            assert target.is_file(), f"{path.relative_to(site)}: {value} points at nothing"
            if url.fragment and target.suffix == ".html":
                ids = parsed[target].ids if target in parsed else parse(target).ids
                assert unquote(url.fragment) in ids, f"{path.relative_to(site)}: no #{url.fragment} in {target.name}"
            checked += 1
    assert checked > 20 * len(pages)  # the nav alone links every page from every page


@pytest.fixture(scope="module")
def chromium() -> str:
    browser = find_chromium()
    if browser is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    return browser


def test_a_rule_page_renders_in_a_browser(built, chromium, tmp_path):
    sources, site, _ = built
    code = next(c for c in sources.codes if any(case.kind == "fail" for case in sources.cases.get(c, [])))
    base = os.environ.get("NANDOCTOR_ARTIFACTS")
    shots = Path(base) if base else tmp_path
    seen = open_page(chromium, site, f"rules/{code}.html", tmp_path, shots / "site-screenshots" / f"{code}.png")

    # mkdocs' search worker says when it has loaded; anything else on the console is a problem
    console = [line for line in seen.console if '"All search scripts loaded, building Lunr index..."' not in line]
    assert console == [], "the page logs nothing else to the console"
    assert set(seen.frames) == set(WIDTHS), "both frames loaded and measured"
    for name, frame in seen.frames.items():
        where = f"{code} at {name} width"
        assert frame["errors"] == [], where
        assert frame["scroll_width"] <= frame["viewport"] == WIDTHS[name], f"{where}: no sideways scrolling"
        assert frame["stylesheets"] >= 2 and "Roboto Slab" in frame["title"]["family"], (
            f"{where}: the theme's CSS applies"
        )
        title = frame["title"]
        assert title["text"].startswith(f"{code}: ") and not title["hidden"], where
        assert title["width"] > 0 and title["left"] >= 0 and title["right"] <= frame["viewport"], where
        assert [s["text"].strip(" ¶") for s in frame["sections"]][: len(SECTION_IDS)] == list(SECTION_IDS), where
        for part in (title, *frame["sections"], frame["code"]):
            assert part["font"] >= SMALLEST_FONT and part["height"] > 0, f"{where}: {part['text'][:30]} legible"
    assert seen.frames["desktop"]["nav"]["width"] > 200, "the rule list sits beside the page on a desktop"
