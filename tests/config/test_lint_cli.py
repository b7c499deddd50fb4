"""`nandoctor lint` as a user runs it: exit codes, text and JSON output, --select/--ignore,
--input-shape, a solver bringing its net along, and malformed input (one error, exit 2)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from nandoctor.cli.main import main
from tests.conftest import corpus_path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SEED_25 = FIXTURES / "net" / "seed_pool_25.prototxt"


def lint_json(capsys, *args) -> tuple[int, dict]:
    code = main(["lint", *map(str, args), "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_text_output_names_file_line_col_code_message_and_fix(capsys):
    assert main(["lint", str(SEED_25)]) == 1
    out = capsys.readouterr().out
    assert f"{SEED_25}:16:5: NAN101 error Pooling 'faulty_pooling'" in out
    assert "fix:" in out and "\x1b[" not in out  # plain text when not on a terminal


def test_clean_net_exits_zero_even_with_infos(capsys):
    code, data = lint_json(capsys, FIXTURES / "net" / "net_builds.prototxt")
    assert code == 0
    assert {f["severity"] for f in data["findings"]} == {"info"}


def test_json_select_and_ignore(capsys):
    code, data = lint_json(capsys, SEED_25)
    assert code == 1 and [f["code"] for f in data["findings"]] == ["NAN101"]
    f = data["findings"][0]
    assert f["location"] == {"path": str(SEED_25), "line": 16, "col": 5} and f["fix"]["edits"]
    assert lint_json(capsys, SEED_25, "--ignore", "NAN101")[1]["findings"] == []
    assert lint_json(capsys, SEED_25, "--select", "NAN2")[1]["findings"] == []
    assert [x["code"] for x in lint_json(capsys, SEED_25, "--select", "NAN1")[1]["findings"]] == ["NAN101"]


def test_input_shape_overrides_the_declared_one(capsys):
    # 26x26 has no empty window (the last one is [25, 28)), only the stride > kernel info
    code, data = lint_json(capsys, SEED_25, "--input-shape", "data=1,3,26,26")
    assert code == 0 and [f["code"] for f in data["findings"]] == ["NAN102"]


def test_a_solver_lints_the_net_it_names(tmp_path, capsys):
    shutil.copy(SEED_25, tmp_path / "net.prototxt")
    solver = tmp_path / "solver.prototxt"
    solver.write_text('net: "net.prototxt"\nbase_lr: 0.01\nlr_policy: "poly"\npower: 0.9\n')
    code, data = lint_json(capsys, solver)
    assert code == 1
    by_code = {f["code"]: f["location"]["path"] for f in data["findings"]}
    assert by_code["NAN101"] == str(tmp_path / "net.prototxt")  # found in the referenced net
    assert by_code["NAN201"] == str(solver)  # poly without max_iter: -nan at iteration 0
    assert data["inputs"] == [str(solver), str(tmp_path / "net.prototxt")]


def test_a_missing_referenced_net_is_a_warning_not_a_crash(tmp_path, capsys):
    solver = tmp_path / "solver.prototxt"
    solver.write_text('net: "nowhere.prototxt"\nbase_lr: 0.01\nlr_policy: "fixed"\nmax_iter: 10\n')
    code, data = lint_json(capsys, solver)
    assert code == 0 and "nowhere.prototxt" in data["problems"][0]


def test_malformed_input_is_one_error_with_position_and_exit_2(capsys):
    path = corpus_path("oracles", "malformed", "01.prototxt")  # the last layer's closing brace is missing
    assert main(["lint", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == f"nandoctor: {path}:21:1: Expected identifier, got:"
    assert "Traceback" not in captured.err and captured.out == ""


def test_missing_file_exits_2(tmp_path, capsys):
    assert main(["lint", str(tmp_path / "none.prototxt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nandoctor: ") and "none.prototxt" in err
