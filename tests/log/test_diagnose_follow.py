"""``nandoctor diagnose --follow``: a log still being written, followed until it turns bad, then diagnosed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.caffe_real import tiny
from tests.log.conftest import FIXTURES
from tests.log.test_watch import _first_bad_line, _follow_while_written

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _follow(log: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "nandoctor", "diagnose", "--log", str(log), "--follow", "--interval", "0.05",
           "--timeout", "60", *extra]  # fmt: skip
    env = {**(env or os.environ), "PYTHONPATH": SRC}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def test_follow_diagnoses_a_log_written_by_a_thread_when_it_turns_bad(tmp_path):
    marker = tmp_path / "fired"
    code, text, err, bad_line = _follow_while_written(tmp_path, FIXTURES / "glog_year.log", "--on-nan",
                                                      f"touch {marker}", start=_follow)  # fmt: skip
    log = tmp_path / "train.log"
    assert code == 1, err
    assert f"train.log:{bad_line}: the displayed loss is -nan at iteration 30" in text
    # then the engine's diagnosis of what was written so far, as plain `diagnose --log` prints it
    done = subprocess.run([sys.executable, "-m", "nandoctor", "diagnose", "--log", str(log)], capture_output=True,
                          env={**os.environ, "PYTHONPATH": SRC}, timeout=60)  # fmt: skip
    assert done.stdout.decode().strip() in text
    assert marker.exists()


def test_follow_of_a_healthy_log_ends_at_the_timeout_with_exit_0(tmp_path):
    log = tmp_path / "ok.log"
    log.write_bytes(b"I1123 10:00:00.0 1 solver.cpp:239] Iteration 0 (0 iter/s, 0s/10 iters), loss = 2.5\n")
    proc = _follow(log, "--timeout", "0.3")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert "iteration 0: loss 2.5" in out.decode()


def test_follow_of_a_real_caffe_writing_its_log(tmp_path, caffe_bin, caffe_env):
    """A real Caffe run that turns NaN (a Sqrt of a negative record), followed from before its first line."""
    folder = tiny.copy_fixture("sqrt", tmp_path / "sqrt")
    tiny.sqrt_data(folder)
    (folder / "snap").mkdir()
    log = folder / "train.log"
    log.write_bytes(b"")
    proc = _follow(log, "--timeout", "30", env=caffe_env)
    time.sleep(0.5)  # the follower is running before Caffe writes a byte
    with log.open("ab") as fh:
        caffe = subprocess.run([str(caffe_bin), "train", "--solver=solver.prototxt"], cwd=folder, env=caffe_env,
                               stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT, timeout=tiny.TIMEOUT)  # fmt: skip
    out, err = proc.communicate(timeout=90)
    text = out.decode()
    lines = log.read_bytes().splitlines(keepends=True)
    assert proc.returncode == 1, (caffe.returncode, err.decode())
    bad = _first_bad_line(lines)
    assert f"train.log:{bad}: the displayed loss is" in text
