"""``nandoctor watch`` on a log another thread is still writing, and the follower on truncation/rotation."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from nandoctor.log.follow import Follower, first_bad
from tests.conftest import caffe_runs
from tests.log.conftest import FIXTURES

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _first_bad_line(lines: list[bytes]) -> int:
    return next(i for i, ln in enumerate(lines, 1) if b"Iteration " in ln and b"loss = " in ln and b"nan" in ln)


def _write_slowly(path: Path, lines: list[bytes], stop: threading.Event) -> None:
    with open(path, "ab", buffering=0) as f:
        for k, ln in enumerate(lines):
            if stop.is_set():
                return
            f.write(ln)
            if k % 5 == 0:
                time.sleep(0.01)


def _watch(path: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": SRC}
    cmd = [sys.executable, "-m", "nandoctor", "watch", str(path), "--interval", "0.05", "--timeout", "60", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def _follow_while_written(tmp_path: Path, source: Path, *extra: str, start=None):
    """``start(path, *extra)`` (by default ``watch``) follows train.log while a thread writes ``source``
    into it line by line; returns the exit code, stdout, stderr and the first bad line's number."""
    lines = source.read_bytes().splitlines(keepends=True)
    path = tmp_path / "train.log"
    path.write_bytes(b"")
    proc = (start or _watch)(path, *extra)
    stop = threading.Event()
    writer = threading.Thread(target=_write_slowly, args=(path, lines, stop))
    writer.start()
    try:
        out, err = proc.communicate(timeout=90)
    finally:
        stop.set()
        writer.join()
    return proc.returncode, out.decode(), err.decode(), _first_bad_line(lines)


def test_watch_stops_at_the_first_nonfinite_display_of_a_log_being_written(tmp_path):
    code, out, err, bad_line = _follow_while_written(tmp_path, FIXTURES / "glog_year.log")
    assert code == 1, err
    assert f"train.log:{bad_line}: the displayed loss is -nan at iteration 30" in out
    assert "NAN3" in out  # the log rules' diagnosis of what was written so far


def test_on_nan_runs_the_command(tmp_path):
    marker = tmp_path / "fired"
    code, _, err, _ = _follow_while_written(tmp_path, FIXTURES / "glog_year.log", "--on-nan", f"touch {marker}")
    assert code == 1, err
    assert marker.exists()


@pytest.mark.parametrize("run", [r for r in caffe_runs() if r.name in ("r02", "r55")], ids=lambda r: r.name)
def test_watch_on_corpus_runs_names_the_first_bad_display(tmp_path, run):
    code, out, err, bad_line = _follow_while_written(tmp_path, run / "train.log")
    assert code == 1, err
    assert f"train.log:{bad_line}: the displayed loss is" in out


def test_a_finite_log_runs_until_the_timeout(tmp_path):
    path = tmp_path / "ok.log"
    path.write_bytes(b"I1123 10:00:00.0 1 solver.cpp:239] Iteration 0 (0 iter/s, 0s/10 iters), loss = 2.5\n")
    proc = _watch(path, "--timeout", "0.3")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "iteration 0: loss 2.5" in out.decode()


def test_the_follower_starts_over_after_truncation_and_rotation(tmp_path):
    path = tmp_path / "t.log"
    path.write_bytes(b"Iteration 10, loss = 1.5\nIteration 20, loss = 1.")
    f = Follower(str(path))
    assert [(d.iteration, d.value) for d in f.poll()] == [(10, 1.5)]  # the cut line waits for its end
    with open(path, "ab") as w:
        w.write(b"25\n")
    assert [(d.iteration, d.value) for d in f.poll()] == [(20, 1.25)]
    path.write_bytes(b"Iteration 0, loss = nan\n")  # truncated: a new run in the same file
    got = f.poll()
    assert first_bad(got).line == 1 and f.restarts == 1
    os.rename(path, tmp_path / "t.log.1")  # rotated: a new file at the path
    path.write_bytes(b"Iteration 5, lr = 0.01\nIteration 5, loss = 3\n" + b"x" * 10)
    assert [(d.kind, d.line) for d in f.poll()] == [("lr", 1), ("loss", 2)]
    assert f.restarts == 2
