"""The framework readers on run folders written by the real libraries (tools/framework_lab/)."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nandoctor.core.types import InputError
from nandoctor.runs import read_run, run_kind
from nandoctor.runs.console import read_console
from nandoctor.runs.pickled_args import fields_of, read_pickled_args
from tests.runs.framework_fixtures import need


def test_hf_state_merges_checkpoints_and_reads_args_without_unpickling():
    run = read_run(need("hf_explode_sgd"))
    assert run.kind == "transformers"
    assert len(run.files) == 3  # checkpoint-20, -40, -60
    steps = [p.step for p in run.points]
    assert steps == sorted(set(steps)) and steps[0] == 1 and steps[-1] == 60
    assert run.args["learning_rate"] == 0.9 and run.args["optim"] == "sgd" and run.args["max_grad_norm"] == 0
    assert run.args["logging_nan_inf_filter"] is True
    assert any(p.grad_norm is not None and math.isnan(p.grad_norm) and p.loss == 0.0 for p in run.points)


def test_hf_eval_entries_are_metrics_not_steps():
    run = read_run(need("hf_healthy_accum_eval"))
    assert [e.step for e in run.evals] == [10, 20, 30, 40]
    assert all("eval_loss" in e.metrics and "eval_runtime" not in e.metrics for e in run.evals)


def test_lightning_rows_of_one_step_are_merged():
    run = read_run(need("pl_healthy_val_tb"))
    assert run.kind == "lightning"
    p = run.points[5]
    assert p.loss is not None and p.lr == pytest.approx(0.01) and p.grad_norm is not None
    assert run.args["optim"] == "adam" and run.evals and "val_loss" in run.evals[0].metrics


def test_tensorboard_events_with_loss_scale():
    run = read_run(need("tb_healthy_amp"))
    assert run.kind == "tensorboard"
    assert len(run.points) == 80 and all(p.loss_scale is not None for p in run.points)


def test_resumed_lightning_run_reads_newest_version():
    run = read_run(need("pl_healthy_huber_resumed"))
    assert "version_1" in run.files[0]


def test_kind_of_a_caffe_folder_is_none():
    assert run_kind(Path(__file__).resolve().parents[2] / "src" / "nandoctor" / "examples" / "healthy") is None


def test_console_dicts_both_styles(tmp_path):
    p = tmp_path / "paste.txt"
    p.write_text(
        "{'loss': 0.88, 'grad_norm': 0.56, 'learning_rate': 2e-05, 'epoch': 0.03}\n"
        "{'loss': '0', 'grad_norm': 'nan', 'learning_rate': '2e-05', 'epoch': '0.1'}\n"
        "{'eval_loss': nan, 'eval_runtime': 0.1, 'epoch': 0.1}\n"
    )
    run = read_console(p)
    assert [pt.step for pt in run.points] == [1, 2]
    assert math.isnan(run.points[1].grad_norm) and run.points[1].loss == 0.0
    assert math.isnan(run.evals[0].metrics["eval_loss"]) and "eval_runtime" not in run.evals[0].metrics


def test_console_without_logs_is_an_input_error(tmp_path):
    p = tmp_path / "x.txt"
    p.write_text("hello\n")
    with pytest.raises(InputError):
        read_console(p)


class _Evil:
    def __reduce__(self):
        return (print, ("executed",))


def test_pickled_args_never_run_code(tmp_path, capsys):
    blob = pickle.dumps({"learning_rate": 0.5, "hook": _Evil(), "name": "x"})
    p = tmp_path / "training_args.bin"
    p.write_bytes(blob)
    fields = read_pickled_args(p)
    # a one-argument call reads as its argument (how enums are pickled); nothing is called
    assert fields["learning_rate"] == 0.5 and fields["name"] == "x"
    assert "executed" not in capsys.readouterr().out


@given(st.binary(max_size=300))
def test_pickled_args_survive_any_bytes(data):
    fields_of(data)  # never raises, never imports


def test_bad_trainer_state_is_an_input_error(tmp_path):
    (tmp_path / "trainer_state.json").write_text('{"log_history": [\n  {"loss": 1,,}]}')
    with pytest.raises(InputError) as exc:
        read_run(tmp_path)
    assert exc.value.line == 2
