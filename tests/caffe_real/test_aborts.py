"""Broken solvers a real Caffe refuses: the FATAL line it prints, and nandoctor's pre-flight rule that predicts it.

For each case the solver is linted and run; the rule named must fire, and the fatal text it
predicts must be the message of Caffe's `F...] ` line (and the parser must read that line as the crash).
"""

from __future__ import annotations

import re
import signal

import pytest

from nandoctor.lint import lint_paths
from nandoctor.log.parser import parse_log
from tests.caffe_real import tiny

pytestmark = pytest.mark.caffe

BASE = 'net: "net.prototxt"\nsolver_mode: CPU\ndisplay: 1\nmax_iter: 3\nbase_lr: 0.01\nsnapshot_after_train: false\n'
# When Caffe stops: "setup" while it builds the solver (no iteration runs), "lr" when it first computes the
# rate (after iteration 0's forward/backward and display, before its lr line), "update" after the lr line.
# name -> (solver lines, the rule that must predict the abort, when Caffe stops)
CASES = {
    "step_without_stepsize": ('lr_policy: "step"\ngamma: 0.1', "NAN200", "lr"),
    "sigmoid_without_stepsize": ('lr_policy: "sigmoid"\ngamma: 0.1', "NAN200", "lr"),
    "exp_negative_gamma": ('lr_policy: "exp"\ngamma: -0.5', "NAN200", "lr"),
    "unknown_policy": ('lr_policy: "plateau"', "NAN200", "lr"),
    "policy_unset": ("", "NAN200", "lr"),
    "average_loss_0": ('lr_policy: "fixed"\naverage_loss: 0', "NAN221", "setup"),
    "momentum_with_adagrad": ('lr_policy: "fixed"\ntype: "AdaGrad"\nmomentum: 0.9', "NAN211", "setup"),
    "momentum_with_rmsprop": ('lr_policy: "fixed"\ntype: "RMSProp"\nmomentum: 0.9', "NAN211", "setup"),
    "rms_decay_1": ('lr_policy: "fixed"\ntype: "RMSProp"\nrms_decay: 1', "NAN213", "setup"),
    "both_solver_types": ('lr_policy: "fixed"\ntype: "SGD"\nsolver_type: NESTEROV', "NAN214", "setup"),
    "unknown_solver_type": ('lr_policy: "fixed"\ntype: "Adamm"', "NAN215", "setup"),
    "unknown_regularization": (
        'lr_policy: "fixed"\nweight_decay: 0.001\nregularization_type: "L3"',
        "NAN217",
        "update",
    ),
}
FATAL_RE = re.compile(r"^F\d{4,8} [\d:.]+ +\d+ (\S+:\d+)\] (.*)$", re.M)


@pytest.fixture(scope="module")
def aborted(tmp_path_factory, caffe_bin, caffe_env):
    root = tmp_path_factory.mktemp("aborts")
    runs = {}
    for name, (lines, _, _) in CASES.items():
        folder = tiny.copy_fixture("dummy", root / name, solver_text=BASE + lines + "\n")
        runs[name] = tiny.train(caffe_bin, caffe_env, folder)
    return runs


@pytest.mark.parametrize("name", list(CASES))
def test_the_rule_predicts_the_fatal_line(aborted, name):
    run = aborted[name]
    assert run.returncode == -signal.SIGABRT  # glog aborts on FATAL (a shell shows exit code 134)
    where, message = FATAL_RE.search(run.text).groups()
    code = CASES[name][1]
    report, _ = lint_paths([run.folder / "solver.prototxt"])
    predicted = [f for f in report.findings if f.code == code]
    assert predicted, f"{code} did not fire"
    fatal = predicted[0].data.get("fatal") if predicted[0].data else None
    caffe_says = message.rstrip()  # CHECK_* lines end in a space when no message follows the values
    if fatal is None:
        assert caffe_says in predicted[0].message
    elif "] " in fatal:
        assert fatal.rstrip() == f"{where}] {caffe_says}"
    else:
        assert fatal.rstrip() == caffe_says
    assert "Check failure stack trace" in run.text or "Unknown" in caffe_says


@pytest.mark.parametrize("name", list(CASES))
def test_the_parser_reads_the_abort(aborted, name):
    run = aborted[name]
    trace = parse_log(run.log)
    _, message = FATAL_RE.search(run.text).groups()
    assert any(message.rstrip() in c.message for c in trace.crashes)
    stage = CASES[name][2]
    assert [p.iteration for p in trace.train] == ([] if stage == "setup" else [0])
    assert [p.iteration for p in trace.lr] == ([0] if stage == "update" else [])


def test_a_field_set_twice(tmp_path, caffe_bin, caffe_env):
    """protobuf's own wording for a non-repeated field given twice, and the schema rule naming it."""
    folder = tiny.copy_fixture("dummy", tmp_path / "dup", solver_text=BASE + 'lr_policy: "fixed"\nbase_lr: 0.02\n')
    run = tiny.train(caffe_bin, caffe_env, folder)
    assert run.returncode == -signal.SIGABRT
    assert 'Error parsing text-format caffe.SolverParameter: 8:8: Non-repeated field "base_lr" is specified ' \
           "multiple times." in run.text  # fmt: skip
    assert "Failed to parse SolverParameter file: solver.prototxt" in run.text
    report, _ = lint_paths([folder / "solver.prototxt"])
    dup = [f for f in report.findings if f.code == "NAN010"]
    assert dup and "base_lr" in dup[0].message and dup[0].location.line == 8
