"""The lab's own reading of a Caffe log, on hand-written lines in each of glog's prefixes."""

from __future__ import annotations

from tools.lab import truth

YEAR = "I20261207 20:54:07.505870 11228 solver.cpp:239] "
NOYEAR = "I1207 20:54:07.505870 11228 solver.cpp:239] "


def test_first_nonfinite_display_and_value():
    log = "\n".join(
        [
            YEAR + "Iteration 0 (-1.4013e-45 iter/s, 0s/10 iters), loss = 2.68295",
            YEAR + "    Train net output #0: loss = 2.68295 (* 1 = 2.68295 loss)",
            YEAR + "Iteration 10 (714.286 iter/s, 0.014s/10 iters), loss = inf",
            YEAR + "    Train net output #0: loss = inf (* 1 = inf loss)",
            YEAR + "Iteration 20 (714.286 iter/s, 0.014s/10 iters), loss = -nan",
        ]
    )
    t = truth.read(log, 0)
    assert (t.first_nan_iteration, t.first_nan_iteration_strict, t.first_nonfinite_loss_value) == (10, 20, "inf")
    assert t.first_nonfinite_output_iteration == 10
    assert t.outcome == "nonfinite" and t.displays == 3


def test_test_phase_nan_without_a_train_nan():
    log = "\n".join(
        [
            NOYEAR + "Iteration 0, Testing net (#0)",
            NOYEAR + "    Test net output #0: accuracy = 0.1",
            NOYEAR + "    Test net output #1: loss = nan (* 1 = nan loss)",
            NOYEAR + "Iteration 0 (0 iter/s, 0s/10 iters), loss = 2.3",
        ]
    )
    t = truth.read(log, 0)
    assert t.first_nan_iteration is None and t.first_nonfinite_test_iteration == 0
    assert t.outcome == "nonfinite"


def test_abort_with_and_without_the_year():
    for prefix in (
        "F20261207 20:54:06.749258 11191 sgd_solver.cpp:39] ",
        "F1207 20:54:06.749258 11191 sgd_solver.cpp:39] ",
    ):
        t = truth.read(
            prefix + "Check failed: this->param_.gamma() >= 0 (-0.9 vs. 0) \n*** Check failure stack trace: ***", -6
        )
        assert t.abort_message == "Check failed: this->param_.gamma() >= 0 (-0.9 vs. 0)"
        assert t.outcome == "abort"


def test_a_finite_run_that_crashed_is_not_healthy():
    t = truth.read(YEAR + "Iteration 0 (0 iter/s, 0s/10 iters), loss = 2.3", -11)
    assert t.outcome == "crash"
    assert truth.read(YEAR + "Iteration 0 (0 iter/s, 0s/10 iters), loss = 2.3", 0).outcome == "healthy"


def test_nonfinite_tokens():
    assert all(truth.nonfinite(t) for t in ("nan", "-nan", "inf", "-inf", "NaN"))
    assert not any(truth.nonfinite(t) for t in ("1e38", "0", "-3.2", "loss", "nan("))
