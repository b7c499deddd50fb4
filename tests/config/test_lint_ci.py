"""`nandoctor lint` where users run it: as the pre-commit hook this repository publishes, as a
CI step with GitHub workflow annotations, with ruff-style --select/--ignore/--exit-zero, and
with ``# nandoctor: noqa`` comments in the prototxt."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nandoctor.cli.main import main
from nandoctor.config.noqa import noqa_lines
from nandoctor.core.types import Cause, Finding, Fix, Location, Severity
from nandoctor.report.github import annotation

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
SEED_25 = FIXTURES / "net" / "seed_pool_25.prototxt"  # NAN101 at 16:5 (`stride: 5`)
CLEAN = FIXTURES / "net" / "net_builds.prototxt"


def with_comment(tmp_path, line: int, comment: str) -> Path:
    lines = SEED_25.read_text().splitlines()
    lines[line - 1] += "  " + comment
    out = tmp_path / "net.prototxt"
    out.write_text("\n".join(lines) + "\n")
    return out


def lint_json(capsys, *args) -> tuple[int, dict]:
    code = main(["lint", *map(str, args), "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


# -- noqa -------------------------------------------------------------------------------


@pytest.mark.parametrize("comment", ["# nandoctor: noqa: NAN101", "# nandoctor: noqa", "# why: nandoctor: NOQA:nan101"])
def test_noqa_on_the_finding_line_silences_it(tmp_path, capsys, comment):
    code, data = lint_json(capsys, with_comment(tmp_path, 16, comment))
    assert (code, data["findings"], data["silenced"]) == (0, [], 1)


@pytest.mark.parametrize(
    ("line", "comment"),
    [(16, "# nandoctor: noqa: NAN102"), (15, "# nandoctor: noqa: NAN101"), (16, "# noqa: NAN101")],
    ids=["other code", "other line", "not ours"],
)
def test_noqa_elsewhere_or_for_another_code_keeps_the_finding(tmp_path, capsys, line, comment):
    code, data = lint_json(capsys, with_comment(tmp_path, line, comment))
    assert code == 1 and [f["code"] for f in data["findings"]] == ["NAN101"] and data["silenced"] == 0


def test_noqa_lines_reads_lists_of_codes():
    text = 'a: 1  # nandoctor: noqa: NAN101, NAN140 NAN2\nb: 2 # nandoctor: noqa\nc: "# nandoctor"\n'
    assert noqa_lines(text) == {1: frozenset({"NAN101", "NAN140"}), 2: None}


def test_text_output_counts_what_noqa_silenced(tmp_path, capsys):
    assert main(["lint", str(with_comment(tmp_path, 16, "# nandoctor: noqa: NAN101"))]) == 0
    assert "(1 silenced by noqa comments)" in capsys.readouterr().out


# -- --select / --ignore / --exit-zero ----------------------------------------------------


def test_exit_zero_reports_but_does_not_fail(capsys):
    code, data = lint_json(capsys, SEED_25, "--exit-zero")
    assert code == 0 and [f["code"] for f in data["findings"]] == ["NAN101"]


def test_select_all_and_ignore_all(capsys):
    assert [f["code"] for f in lint_json(capsys, SEED_25, "--select", "ALL")[1]["findings"]] == ["NAN101"]
    assert lint_json(capsys, SEED_25, "--ignore", "ALL")[1]["findings"] == []


@pytest.mark.parametrize("option", ["--select", "--ignore"])
def test_a_selector_naming_no_rule_is_bad_input(capsys, option):
    assert main(["lint", str(SEED_25), option, "NAN9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"nandoctor: {option} NAN9: no rule code starts with it") and "Traceback" not in err


# -- --format github ----------------------------------------------------------------------

ANNOTATION = re.compile(r"^::(error|warning|notice) (?P<props>[^:]*)::(?P<message>.*)$")


def test_github_format_is_one_workflow_command_per_finding(capsys):
    assert main(["lint", str(SEED_25), "--format", "github"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    m = ANNOTATION.match(lines[0])
    assert m and m.group(1) == "error"
    props = dict(p.split("=", 1) for p in m.group("props").split(","))
    assert props == {"file": str(SEED_25), "line": "16", "col": "5", "title": "NAN101"}
    assert "faulty_pooling" in m.group("message") and "%0Afix: " in m.group("message")


def test_github_format_levels_for_warnings_and_notes(capsys):
    assert main(["lint", str(CLEAN), "--format", "github"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line.startswith("::notice file=") for line in lines)


def test_github_annotations_escape_what_the_runner_decodes():
    f = Finding(
        code="NAN999",
        cause=Cause.UNKNOWN,
        message="100% bad\nsecond line",
        severity=Severity.WARNING,
        location=Location("dir,with:odd/net.prototxt", 3, 7),
        fix=Fix("set x: 1"),
    )
    line = annotation(f)
    assert (
        line
        == "::warning file=dir%2Cwith%3Aodd/net.prototxt,line=3,col=7,title=NAN999::100%25 bad%0Asecond line%0Afix: set x: 1"
    )
    assert "\n" not in line


# -- the pre-commit hook -------------------------------------------------------------------


def hook() -> dict:
    (h,) = [h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text()) if h["id"] == "nandoctor-lint"]
    return h


def test_the_hook_runs_lint_on_prototxt_files_only():
    h = hook()
    assert h["language"] == "python" and h["entry"].split()[0] == "nandoctor"
    pattern = re.compile(h["files"])
    assert pattern.search("models/train_val.prototxt") and pattern.search("solver.prototxt")
    assert not pattern.search("train.log") and not pattern.search("net.prototxt.orig")


def run_hook(files: list[Path]) -> subprocess.CompletedProcess:
    """Run the hook's entry the way pre-commit does: entry + args + the matched file names."""
    entry = shlex.split(hook()["entry"])
    assert entry[0] == "nandoctor"  # the console script; here run from this checkout
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "nandoctor", *entry[1:], *hook().get("args", []), *map(str, files)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)


def test_the_hook_fails_a_commit_with_a_nan_prone_net_and_passes_clean_ones():
    bad = run_hook([CLEAN, SEED_25])
    assert bad.returncode == 1 and f"{SEED_25}:16:5: NAN101 error" in bad.stdout
    good = run_hook([CLEAN, FIXTURES / "net" / "net_builds.prototxt"])
    assert good.returncode == 0, good.stdout + good.stderr
