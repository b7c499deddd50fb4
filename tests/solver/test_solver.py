"""The Solver model: values and defaults, solver type, net sources, exact edits; the lr CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nandoctor.cli.main import main
from nandoctor.config import lr
from nandoctor.config.edits import apply_edits, insert_edit, replace_edit
from nandoctor.config.solver import load_solver
from nandoctor.config.textformat import parse_text
from nandoctor.core.types import InputError
from tests.conftest import corpus_path

CASES = Path(__file__).resolve().parents[1] / "cases"


def solver_of(text: str, path: str = "/runs/a/solver.prototxt"):
    return load_solver(parse_text(text, path))


def test_values_defaults_and_last_wins():
    s = solver_of('base_lr: 0.01\nbase_lr: 0.02\nlr_policy: "step"\nstepvalue: 5\nstepvalue: 7\n')
    assert s.value("base_lr") == 0.02  # protobuf: the last occurrence wins
    assert s.location("base_lr").line == 2
    assert s.value("gamma") == 0.0 and not s.is_set("gamma")
    assert s.value("delta") == 1e-8 and s.value("momentum2") == 0.999 and s.value("clip_gradients") == -1
    assert s.value("stepvalue") == [5, 7]
    assert s.value("solver_mode") == "GPU"
    assert s.value("not_a_field") is None


def test_enum_by_number_and_special_floats():
    s = solver_of("solver_mode: 0\nbase_lr: -inf\ngamma: nan\nsnapshot_after_train: 0\n")
    assert s.value("solver_mode") == "CPU"
    assert s.value("base_lr") == float("-inf")
    assert s.value("snapshot_after_train") is False
    assert str(s.value("gamma")) == "nan"


def test_solver_type_resolution():
    assert solver_of("base_lr: 1\n").solver_type == "SGD"
    assert solver_of("solver_type: ADADELTA\n").solver_type == "AdaDelta"
    assert solver_of("solver_type: 3\n").solver_type == "RMSProp"
    s = solver_of('solver_type: SGD\ntype: "Adam"\n')
    assert s.solver_type == "Adam" and s.solver_type_conflict


def test_net_sources_resolve_against_the_solver_folder():
    s = solver_of('net: "train_val.prototxt"\ntest_iter: 10\ntest_iter: 5\n')
    src = s.net_sources()
    assert src["train"] == Path("/runs/a/train_val.prototxt")
    assert src["test"] == [Path("/runs/a/train_val.prototxt")] * 2
    s = solver_of('train_net: "/abs/train.prototxt"\ntest_net: "test.prototxt"\ntest_iter: 3\n')
    src = s.net_sources()
    assert src["train"] == Path("/abs/train.prototxt") and src["test"] == [Path("/runs/a/test.prototxt")]
    s = solver_of('net_param { name: "n" layer { name: "d" type: "Input" } }\ntest_iter: 1\n')
    src = s.net_sources()
    assert src["train"].get("name") == "n" and src["test"][0] is src["train"]
    assert src["train_source"].field == "net_param" and src["train_source"].location.line == 1


def test_replace_and_insert_edits():
    text = "# solver\nbase_lr: 0.01  # lr\nnet_param {\n  name: 'x'\n}  # end\n"
    s = solver_of(text)
    e = replace_edit(s.path, s.field("base_lr").value, "0.001")
    assert (e.old, e.line, e.col) == ("0.01", 2, 10)
    e2 = insert_edit(s, "max_iter", "100")
    assert (
        apply_edits(text, [e, e2])
        == "# solver\nbase_lr: 0.001  # lr\nnet_param {\n  name: 'x'\n}  # end\nmax_iter: 100\n"
    )
    empty = solver_of("# nothing\n")
    assert apply_edits("# nothing\n", [insert_edit(empty, "base_lr", "0.01")]) == "base_lr: 0.01\n# nothing\n"
    with pytest.raises(ValueError):  # the file no longer holds the old text where the edit says
        apply_edits(text.replace("0.01", "0.02"), [e])


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["base_lr", "gamma", "max_iter", "display"]), st.integers(0, 10**6)), max_size=6
    ),
    st.sampled_from(["\n", "\r\n"]),
    st.sampled_from(["", "  ", "\t"]),
    st.booleans(),
)
def test_edits_keep_the_file_parseable(fields, newline, indent, final_newline):
    text = newline.join(f"{indent}{n}: {v}  # c" for n, v in fields) + (newline if final_newline and fields else "")
    s = solver_of(text)
    edits = [insert_edit(s, "stepsize", "123")]
    if fields:
        edits.append(replace_edit(s.path, s.field(fields[-1][0]).value, "7"))
    out = apply_edits(text, edits)
    s2 = solver_of(out)
    assert s2.value("stepsize") == 123
    if fields:
        assert s2.value(fields[-1][0]) == 7
    assert ("\r\n" in out) == ("\r\n" in text)  # the file's own newline style (LF when it has none)


def test_lr_params_reject_what_caffe_rejects():
    with pytest.raises(InputError) as exc:
        lr.LrParams.from_solver(solver_of('lr_policy: "step"\nstepsize: 1.5\n'))
    assert exc.value.line == 2
    with pytest.raises(InputError):
        lr.LrParams.from_solver(solver_of('lr_policy: "step"\nbase_lr: "high"\n'))
    with pytest.raises(InputError):
        lr.LrParams.from_solver(solver_of("max_iter: 3000000000\n"))


# --- the lr command ------------------------------------------------------------------------


def test_cli_clean_solver_exit_0(capsys):
    assert main(["lr", str(CASES / "NAN204/pass_default.prototxt")]) == 0
    out = capsys.readouterr().out
    assert "       100  0.001" in out and "caffe train: iterations 0..399" in out


def test_cli_findings_json_csv_and_plot(tmp_path, capsys):
    path = str(CASES / "NAN201/fail_poly_past_max_iter.prototxt")
    assert main(["lr", path, "--iters", "150", "--format", "json", "--plot", str(tmp_path / "lr.png")]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["horizon"] == {"runner": "step", "iterations": 150, "evaluated": 150}
    assert {"iteration": 101, "lr": "-nan"} in data["schedule"]
    assert data["findings"][0]["code"] == "NAN201"
    assert (tmp_path / "lr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["lr", path, "--iters", "150", "--format", "csv"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "iteration,lr" and "100,0" in lines and "101,-nan" in lines


def test_cli_text_keeps_the_first_zero_rate_when_sampling(capsys):
    """poly past max_iter: 0 at 100, -nan from 101; a sampled table still shows both moments."""
    path = str(CASES / "NAN201/fail_poly_past_max_iter.prototxt")
    assert main(["lr", path, "--iters", "150"]) == 1
    out = capsys.readouterr().out
    assert "       100  0\n" in out and "       101  -nan" in out


def test_cli_abort_and_input_errors(tmp_path, capsys):
    assert main(["lr", str(CASES / "NAN200/fix_step_no_stepsize.prototxt")]) == 1
    assert "sgd_solver.cpp:33] Check failed" in capsys.readouterr().out
    assert main(["lr", str(tmp_path / "missing.prototxt")]) == 2
    bad = tmp_path / "bad.prototxt"
    bad.write_text('lr_policy: "step"\nstepsize: 2.5\n')
    assert main(["lr", str(bad)]) == 2
    assert "bad.prototxt:2:1: stepsize: expected a 32-bit integer" in capsys.readouterr().err


def test_cli_on_a_corpus_run(capsys):
    run = corpus_path("caffe-runs", "r59")
    assert main(["lr", str(run / "solver.prototxt"), "--format", "csv"]) == 1
    rows = dict(line.split(",") for line in capsys.readouterr().out.splitlines()[1:])
    assert rows["160"] == "1" and rows["320"] == "100"


def test_cli_unchecked_shows_the_legacy_arithmetic(capsys):
    path = str(corpus_path("oracles", "lr", "31_inv_negative_gamma.prototxt"))
    assert main(["lr", path, "--format", "csv"]) == 1
    assert capsys.readouterr().out.splitlines() == ["iteration,lr"]
    assert main(["lr", path, "--format", "csv", "--unchecked"]) == 1
    rows = dict(line.split(",") for line in capsys.readouterr().out.splitlines()[1:])
    assert rows["0"] == "0.01" and rows["100"] == "inf" and rows["101"] == "-nan"  # 1 - 0.01*100 = 0
