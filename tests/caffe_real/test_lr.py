"""The lr engine against the `Iteration N, lr = R` lines a real Caffe prints, for every BVLC policy.

Each case is a tiny DummyData run (no files); the engine's float32 rate, printed the way Caffe's
ostream prints it, must equal the text of every lr line, and the lines must appear exactly on the
display iterations. MultiStep Status lines must come where the engine says current_step advances.
"""

from __future__ import annotations

import numpy as np
import pytest

from nandoctor.config import lr
from nandoctor.config.solver import load_solver
from nandoctor.config.textformat import parse_file
from nandoctor.log.parser import parse_log
from tests.caffe_real import tiny

pytestmark = pytest.mark.caffe

BASE = 'net: "net.prototxt"\nmomentum: 0.9\nsolver_mode: CPU\nrandom_seed: 3\nsnapshot_after_train: false\n'
CASES = {
    "fixed": "base_lr: 0.01\nlr_policy: 'fixed'\ndisplay: 1\nmax_iter: 6",
    "step": "base_lr: 0.01\nlr_policy: 'step'\ngamma: 0.5\nstepsize: 3\ndisplay: 1\nmax_iter: 12",
    "exp": "base_lr: 0.01\nlr_policy: 'exp'\ngamma: 0.9\ndisplay: 1\nmax_iter: 12",
    "inv": "base_lr: 0.01\nlr_policy: 'inv'\ngamma: 0.1\npower: 0.75\ndisplay: 1\nmax_iter: 12",
    # stepvalues out of order: consumed one per iteration in file order
    "multistep": "base_lr: 0.01\nlr_policy: 'multistep'\ngamma: 0.5\nstepvalue: 2\nstepvalue: 7\nstepvalue: 4\n"
    "display: 1\nmax_iter: 12",
    "poly": "base_lr: 0.01\nlr_policy: 'poly'\npower: 0.5\ndisplay: 1\nmax_iter: 12",
    "sigmoid": "base_lr: 0.01\nlr_policy: 'sigmoid'\ngamma: 0.5\nstepsize: 6\ndisplay: 1\nmax_iter: 12",
    # only every third iteration prints its lr
    "inv_display3": "base_lr: 0.02\nlr_policy: 'inv'\ngamma: 0.3\npower: 1.5\ndisplay: 3\nmax_iter: 14",
    # a growing rate overflows float: Caffe prints `lr = inf`
    "exp_overflow": "base_lr: 0.01\nlr_policy: 'exp'\ngamma: 10\ndisplay: 1\nmax_iter: 44",
    # gamma unset: 0 after the first step
    "step_no_gamma": "base_lr: 0.01\nlr_policy: 'step'\nstepsize: 4\ndisplay: 1\nmax_iter: 9",
}


@pytest.fixture(scope="module")
def lr_runs(tmp_path_factory, caffe_bin, caffe_env):
    root = tmp_path_factory.mktemp("lr")
    runs = {}
    for name, text in CASES.items():
        folder = tiny.copy_fixture("dummy", root / name, solver_text=BASE + text.replace("'", '"') + "\n")
        runs[name] = tiny.train(caffe_bin, caffe_env, folder)
    return runs


def _params(folder):
    return lr.params_of(load_solver(parse_file(folder / "solver.prototxt")))


@pytest.mark.parametrize("name", list(CASES))
def test_printed_lr_equals_the_engine(lr_runs, name):
    run = lr_runs[name]
    assert run.returncode == 0, run.text[-2000:]
    params = _params(run.folder)
    trace = parse_log(run.log)
    printed = [(p.iteration, p.text) for p in trace.lr]
    stop = lr.horizon(params).stop
    rates = lr.schedule(params, stop)
    expected = [(int(i), lr.format_lr(rates[i])) for i in lr.display_points(params, stop)]
    assert printed == expected
    # the parser's value is the number Caffe printed
    for p in trace.lr:
        assert np.float32(p.value) == np.float32(float(p.text)) or not np.isfinite(p.value)


def test_exp_overflow_prints_inf_and_the_engine_knows_when(lr_runs):
    trace = parse_log(lr_runs["exp_overflow"].log)
    texts = {p.iteration: p.text for p in trace.lr}
    first_inf = min(i for i, t in texts.items() if t == "inf")
    rates = lr.schedule(_params(lr_runs["exp_overflow"].folder), 44)
    assert first_inf == int(np.flatnonzero(~np.isfinite(rates))[0])
    assert all(texts[i] == "inf" for i in texts if i >= first_inf)


def test_multistep_status_lines_where_the_engine_advances(lr_runs):
    trace = parse_log(lr_runs["multistep"].log)
    params = _params(lr_runs["multistep"].folder)
    assert [(e.iteration, e.step) for e in trace.segments[0].multistep] == [
        (it, k + 1) for k, it in enumerate(lr.multistep_advances(params.stepvalues))
    ]
    assert [e.iteration for e in trace.segments[0].multistep] == [2, 7, 8]  # 4 < 7 waits for 7, then at once


def test_learning_rate_policy_line(lr_runs):
    trace = parse_log(lr_runs["sigmoid"].log)
    assert trace.segments[0].info["lr_policy"] == "sigmoid"


def test_poly_past_max_iter_under_solver_step(tmp_path, caffe_env):
    """pycaffe's solver.step(n) ignores max_iter; poly then takes powf of a negative base: `lr = -nan`,
    and the engine's step horizon computes the same text."""
    text = BASE + 'base_lr: 0.01\nlr_policy: "poly"\npower: 0.5\ndisplay: 1\nmax_iter: 8\n'
    folder = tiny.copy_fixture("dummy", tmp_path / "poly_step", solver_text=text)
    run = tiny.pycaffe_step(caffe_env, folder, 12)
    assert run.returncode == 0, run.text[-2000:]
    params = _params(folder)
    h = lr.horizon(params, iters=12)
    rates = lr.schedule(params, h.stop)
    printed = [(p.iteration, p.text) for p in parse_log(run.log).lr]
    assert printed == [(i, lr.format_lr(rates[i])) for i in range(12)]
    assert printed[8] == (8, "0") and printed[9] == (9, "-nan")
