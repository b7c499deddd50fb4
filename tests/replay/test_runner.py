"""Running Caffe on a replay, end to end with a stand-in `caffe`: reproduce, early stop, timeout, crash,
signals; no process may outlive the run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from nandoctor.log.debug_analysis import localize
from nandoctor.log.parser import parse_log
from nandoctor.replay.plan import prepare_replay
from nandoctor.replay.runner import find_caffe, run_caffe
from tests.replay.conftest import alive, env_with
from tests.replay.debuglog import DebugLog


def recording(path, iterations=40, nan_from=6):
    """A debug_info log whose fc layer explodes from iteration 3 and is nan from ``nan_from``."""
    log = DebugLog(loss_weights={"loss": 1})
    for it in range(iterations):
        scale = 1.0 if it < 3 or it >= nan_from else 1e4 ** min(it - 2, 8)
        bad = it >= nan_from
        log.fwd("data", 0.5).fwd("fc", "nan" if bad else 0.2 * scale).param("fc", 0, "nan" if bad else 0.1)
        log.fwd("loss", "nan" if bad else 2.0 * scale).back("loss", "fc", "nan" if bad else 0.1 * scale)
        log.back("fc", "data", "nan" if bad else 0.05 * scale).pdiff("fc", 0, "nan" if bad else 0.3 * scale)
        log.end(it, "nan" if bad else f"{2.0 * scale:g}")
        log.lines.append(f"I20261123 10:00:00.000000  4242 sgd_solver.cpp:112] Iteration {it}, lr = 0.01")
    path.write_text(log.text())
    return path


def test_find_caffe_order(fake_caffe, monkeypatch, tmp_path):
    assert find_caffe(str(fake_caffe)).argv == (str(fake_caffe),)
    assert find_caffe(None, {"CAFFE_BIN": str(fake_caffe), "PATH": ""}).where == "$CAFFE_BIN"
    assert find_caffe(None, {"PATH": str(fake_caffe.parent)}).where == "PATH"
    with pytest.raises(FileNotFoundError):
        find_caffe(str(tmp_path / "missing"))
    monkeypatch.setattr(sys, "path", [p for p in sys.path if "caffe" not in p])
    assert find_caffe(None, {"PATH": str(tmp_path)}) is None


def test_replay_reproduces_and_is_read_back(run_dir, fake_caffe, tmp_path):
    plan = prepare_replay(run_dir, tmp_path / "out")
    caffe = find_caffe(str(fake_caffe))
    env = env_with(FAKE_RECORDING=str(recording(tmp_path / "rec.log")), FAKE_ARGS=str(tmp_path / "args"))
    seen = []
    result = run_caffe(plan.command(caffe), plan.run.cwd, plan.log_path, stop_after=2, env=env, progress=seen.append)
    cwd, *argv = (tmp_path / "args").read_text().splitlines()
    assert cwd == str(run_dir.resolve()) and argv[0] == "train" and argv[1].endswith("solver_debug.prototxt")
    assert argv[2].endswith("run_iter_2.solverstate")
    assert result.status == "reproduced" and result.progress.first_nonfinite == 6
    assert seen and seen[-1].iteration is not None
    trace = parse_log(plan.log_path)
    # max_iter of the copy is 9 (nan at 4 in the original log + 5): the stand-in stops there unless we do first
    assert trace.train[-1].iteration <= 9
    loc = localize(trace)
    # the recording's fc grows 1e4x per iteration from 3: the loss gradient is the first to jump
    assert (loc.layer, loc.phase, loc.iteration, loc.explosion) == ("loss", "backward", 3, True)
    assert loc.path == ["loss", "fc", "data"]


def test_stops_a_few_iterations_after_the_first_nan(run_dir, fake_caffe, tmp_path):
    (run_dir / "train.log").unlink()  # no log: a long horizon, so only the early stop ends the run
    plan = prepare_replay(run_dir, tmp_path / "out", horizon=1000)
    env = env_with(FAKE_RECORDING=str(recording(tmp_path / "rec.log", iterations=400)), FAKE_DELAY="0.001",
                   FAKE_PIDFILE=str(tmp_path / "pid"))  # fmt: skip
    result = run_caffe(plan.command(find_caffe(str(fake_caffe))), plan.run.cwd, plan.log_path, stop_after=3, env=env)
    assert result.status == "reproduced" and result.stopped_by_us
    assert result.returncode == 0  # the stand-in, like Caffe, stops cleanly on SIGINT
    last = parse_log(plan.log_path).train[-1].iteration
    assert 9 <= last < 30
    assert "Optimization stopped early." in plan.log_path.read_text()
    assert not alive(int((tmp_path / "pid").read_text()))


def test_timeout_kills_a_hanging_caffe_and_its_children(run_dir, fake_caffe, tmp_path):
    plan = prepare_replay(run_dir, tmp_path / "out")
    env = env_with(FAKE_HANG="1", FAKE_IGNORE_INT="1", FAKE_PIDFILE=str(tmp_path / "pid"),
                   FAKE_CHILD=str(tmp_path / "child"))  # fmt: skip
    start = time.monotonic()
    result = run_caffe(plan.command(find_caffe(str(fake_caffe))), plan.run.cwd, plan.log_path, timeout=1.0,
                       grace=0.3, env=env)  # fmt: skip
    assert result.status == "timeout" and result.stopped_by_us
    assert result.returncode == -signal.SIGKILL  # SIGINT and SIGTERM ignored: killed
    assert time.monotonic() - start < 15
    for name in ("pid", "child"):
        assert not alive(int((tmp_path / name).read_text()))


def test_crash_exit_codes(run_dir, fake_caffe, tmp_path):
    plan = prepare_replay(run_dir, tmp_path / "out")
    healthy = tmp_path / "healthy.log"
    healthy.write_text("I1123 10:00:00.000000  1 solver.cpp:239] Iteration 0 (1 iter/s, 1s/1 iters), loss = 2.3\n")
    cmd = plan.command(find_caffe(str(fake_caffe)))
    result = run_caffe(cmd, plan.run.cwd, plan.log_path, env=env_with(FAKE_RECORDING=str(healthy), FAKE_EXIT="abort"))
    assert result.status == "crashed" and result.returncode == -signal.SIGABRT
    assert "*** Aborted at" in plan.log_path.read_text()
    result = run_caffe(cmd, plan.run.cwd, plan.log_path, env=env_with(FAKE_RECORDING=str(healthy)))
    assert result.status == "finished" and result.returncode == 0
    # a solver that does not exist: Caffe's CHECK fails before training
    bad = [cmd[0], "train", f"--solver={tmp_path / 'nope.prototxt'}"]
    result = run_caffe(bad, plan.run.cwd, plan.log_path, env=env_with())
    assert result.status == "crashed" and "File not found" in plan.log_path.read_text()


def test_a_child_that_keeps_the_pipe_open_does_not_hang_the_run(run_dir, fake_caffe, tmp_path):
    plan = prepare_replay(run_dir, tmp_path / "out")
    healthy = tmp_path / "healthy.log"
    healthy.write_text("I1123 10:00:00.000000  1 solver.cpp:239] Iteration 0 (1 iter/s, 1s/1 iters), loss = 2.3\n")
    env = env_with(FAKE_RECORDING=str(healthy), FAKE_CHILD=str(tmp_path / "child"))
    start = time.monotonic()
    result = run_caffe(plan.command(find_caffe(str(fake_caffe))), plan.run.cwd, plan.log_path, env=env)
    assert result.status == "finished" and time.monotonic() - start < 10
    assert not alive(int((tmp_path / "child").read_text()))


def _replay_in_background(run_dir, fake_caffe, tmp_path, env, output) -> subprocess.Popen:
    """``nandoctor replay --run`` with the fake Caffe, in its own session (so a test can kill the group)."""
    return subprocess.Popen(
        [sys.executable, "-m", "nandoctor", "replay", str(run_dir), "--out", str(tmp_path / "out"), "--run",
         "--caffe", str(fake_caffe), "--no-resume", "--horizon", "1000"],
        env=env, stdout=output, stderr=output, start_new_session=True, preexec_fn=_default_signals,
    )  # fmt: skip


def _default_signals():
    # started from a shell's background job, the test run has SIGINT ignored and a child inherits that;
    # the child must meet Ctrl-C and SIGTERM as it would in a terminal
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupting_nandoctor_leaves_no_process_behind(run_dir, fake_caffe, tmp_path, sig):
    env = env_with(FAKE_RECORDING=str(recording(tmp_path / "rec.log", iterations=400, nan_from=399)),
                   FAKE_DELAY="0.01", FAKE_PIDFILE=str(tmp_path / "pid"), FAKE_CHILD=str(tmp_path / "child"))  # fmt: skip
    cli = _replay_in_background(run_dir, fake_caffe, tmp_path, env, subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        log = tmp_path / "out" / "replay.log"
        while time.monotonic() < deadline and not (log.exists() and log.stat().st_size > 2000):
            time.sleep(0.05)
        assert log.exists(), cli.communicate(timeout=5)
        os.kill(cli.pid, sig)
        _, err = cli.communicate(timeout=20)
    finally:
        if cli.poll() is None:
            os.killpg(cli.pid, signal.SIGKILL)
    assert cli.returncode == 130, err
    assert b"interrupted" in err and b"Traceback" not in err
    for name in ("pid", "child"):
        assert not alive(int((tmp_path / name).read_text()))


def test_progress_reads_iterations_losses_lrs_and_debug_nans():
    from nandoctor.replay.runner import Progress, _watch

    p = Progress()
    lines = [
        b"I1 net.cpp:593]     [Forward] Layer conv1, top blob conv1 data: 0.5\n",
        b"I1 net.cpp:593]     [Forward] Layer pool1, top blob pool1 data: -nan\n",
        b"I1 solver.cpp:239] Iteration 12 (1 iter/s, 1s/1 iters), loss = 2.5\n",
        b"I1 sgd_solver.cpp:112] Iteration 12, lr = 0.001\n",
    ]
    for line in lines:
        _watch(line, p)
    # the nan came in the debug lines of iteration 12 (resumed there), before its display line
    assert (p.iteration, p.loss, p.lr, p.first_nonfinite) == (12, "2.5", "0.001", 12)
    q = Progress()
    for line in (b"I1 solver.cpp:347] Iteration 40, Testing net (#0)\n",
                 b"I1 solver.cpp:414]     Test net output #0: loss = nan (* 1 = nan loss)\n"):  # fmt: skip
        _watch(line, q)
    assert q.first_nonfinite == 40


def test_caffe_dies_with_a_killed_nandoctor(run_dir, fake_caffe, tmp_path):
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux only")
    # a silent, hanging Caffe: no write to a broken pipe will end it, only the parent-death signal
    env = env_with(FAKE_HANG="1", FAKE_PIDFILE=str(tmp_path / "pid"))
    cli = _replay_in_background(run_dir, fake_caffe, tmp_path, env, subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (tmp_path / "pid").exists():
            time.sleep(0.05)
        time.sleep(0.2)
        cli.kill()  # no cleanup of ours can run
        cli.wait(timeout=10)
    finally:
        if cli.poll() is None:
            os.killpg(cli.pid, signal.SIGKILL)
    pid = int((tmp_path / "pid").read_text())
    survived = alive(pid)
    if survived:
        os.kill(pid, signal.SIGKILL)  # do not leave the stand-in behind when the assertion fails
    assert not survived
