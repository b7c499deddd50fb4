"""The site's case reader and pages on a repository laid out in both conventions (tests/cases/<CODE>/
and the older tests/fixtures/config/), written here file by file; no mkdocs needed."""

from __future__ import annotations

from pathlib import Path

import pytest
from tools.site.build import MARKER, REPO, write_sources
from tools.site.cases import CaseError, find_cases

POOL = """# root: NetParameter
# expect: NAN101 4:3
# culprit: pool
layer { name: "data" type: "Input" top: "x" input_param { shape { dim: 1 dim: 3 dim: 25 dim: 25 } } }
layer {
  name: "pool" type: "Pooling" bottom: "x" top: "y"
  pooling_param { pool: AVE kernel_size: 3 stride: 5 }
}
"""
POOL_FIXED = POOL.replace("kernel_size: 3 stride: 5", "kernel_size: 5 stride: 5")


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "repo"
    write(root, "tests/cases/NAN101/fail_last_window_empty.prototxt", POOL)
    write(root, "tests/cases/NAN101/fix_wider_kernel.prototxt", POOL)
    write(root, "tests/cases/NAN101/fix_wider_kernel.fixed.prototxt", POOL_FIXED)
    write(root, "tests/cases/NAN101/pass_touching.prototxt", "# root: NetParameter\n" + POOL_FIXED.split("\n", 3)[3])
    write(root, "tests/cases/NAN101/README.md", "not a case\n")
    write(
        root,
        "tests/cases/NAN630/fail_nan_batch.json",
        '{"case": {"expect": ["NAN630"], "culprit": "batch[0]"}, "batch": {"nonfinite": 3}}\n',
    )
    write(root, "tests/cases/NAN300/fail_loss_nan.log", "# expect: NAN300 2\nI1208 solver.cpp:218] loss = nan\n")
    # the same case in both places: tests/cases wins; a case only in the old place is still read
    write(root, "tests/cases/NAN002/fail_kernel.prototxt", "# root: NetParameter\n# expect: NAN002 2:1\nkernel: 3\n")
    write(root, "tests/fixtures/config/NAN002_fail_kernel.prototxt", "# root: NetParameter\nstale copy\n")
    write(root, "tests/fixtures/config/NAN002_pass_kernel_size.prototxt", "# root: NetParameter\nname: 'n'\n")
    return root


def test_cases_are_read_from_both_places_with_their_headers(repo):
    cases = find_cases(repo)
    assert sorted(cases) == ["NAN002", "NAN101", "NAN300", "NAN630"]
    assert [(c.kind, c.name) for c in cases["NAN101"]] == [
        ("fail", "last_window_empty"),
        ("fix", "wider_kernel"),
        ("pass", "touching"),
    ]
    fail, fix, _ = cases["NAN101"]
    assert fail.header == {"root": ["NetParameter"], "expect": ["NAN101 4:3"], "culprit": ["pool"]}
    assert fail.text == POOL and fail.language == "text"
    assert fix.fixed == POOL_FIXED and fix.fixed_path == Path("tests/cases/NAN101/fix_wider_kernel.fixed.prototxt")
    assert fail.fixed is None
    (json_case,) = cases["NAN630"]
    assert json_case.language == "json" and json_case.expected == ["NAN630"]
    assert json_case.header["culprit"] == ["batch[0]"]
    assert cases["NAN300"][0].expected == ["NAN300 2"]
    kernel, kernel_size = cases["NAN002"]
    assert kernel.path == Path("tests/cases/NAN002/fail_kernel.prototxt") and "stale" not in kernel.text
    assert kernel_size.path == Path("tests/fixtures/config/NAN002_pass_kernel_size.prototxt")


def test_a_broken_json_case_is_named(repo):
    write(repo, "tests/cases/NAN630/fail_broken.json", '{"case": {"expect": "NAN630"},\n')
    with pytest.raises(CaseError, match=r"fail_broken\.json: not JSON: line 2"):
        find_cases(repo)
    write(repo, "tests/cases/NAN630/fail_broken.json", '{"expect": "NAN630"}\n')
    with pytest.raises(CaseError, match=r'header in a "case" object'):
        find_cases(repo)


def test_pages_show_each_case_its_fix_as_a_diff_and_say_when_there_is_none(repo, tmp_path):
    sources = write_sources(tmp_path / "out", repo=repo)
    assert sources.orphans == ()
    page = (sources.folder / "docs" / "rules" / "NAN101.md").read_text()
    for title in ("### fail: last window empty", "### fix: wider kernel", "### pass: touching"):
        assert title in page
    assert "Expected: `NAN101 4:3`." in page and "Expected: no finding." in page
    assert "  pooling_param { pool: AVE kernel_size: 3 stride: 5 }" in page  # the input, as the file has it
    assert "-  pooling_param { pool: AVE kernel_size: 3 stride: 5 }\n+  pooling_param { pool: AVE kernel_size: 5" in (
        page
    )
    assert "The test suite runs each of these files through nandoctor (1 fail, 1 fix, 1 pass)." in page
    assert '"nonfinite": 3' in (sources.folder / "docs" / "rules" / "NAN630.md").read_text()
    assert "No case yet." in (sources.folder / "docs" / "rules" / "NAN140.md").read_text()
    assert "No case yet." not in page


def test_a_fix_case_without_its_fixed_file_says_so(repo, tmp_path):
    (repo / "tests/cases/NAN101/fix_wider_kernel.fixed.prototxt").unlink()
    sources = write_sources(tmp_path / "out", repo=repo)
    assert "The fixed text of this case is missing" in (sources.folder / "docs/rules/NAN101.md").read_text()


def test_cases_of_a_code_no_rule_has_are_reported(repo, tmp_path):
    write(repo, "tests/cases/NAN999/fail_x.prototxt", "# expect: NAN999 1:1\n")
    assert write_sources(tmp_path / "out", repo=repo).orphans == ("NAN999",)


def test_every_case_in_the_repository_belongs_to_a_rule(tmp_path):
    assert write_sources(tmp_path / "out", repo=REPO).orphans == ()


def test_the_generator_replaces_only_its_own_folder(repo, tmp_path):
    foreign = tmp_path / "foreign"
    write(foreign, "docs/notes.md", "someone's notes\n")
    with pytest.raises(SystemExit, match=MARKER):
        write_sources(foreign, repo=repo)
    assert (foreign / "docs" / "notes.md").read_text() == "someone's notes\n"
    out = tmp_path / "out"
    write_sources(out, repo=repo)
    write(out, "docs/rules/NAN777.md", "left over from an earlier run\n")
    write_sources(out, repo=repo)
    assert not (out / "docs/rules/NAN777.md").exists()
