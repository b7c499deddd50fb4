"""Forked scan workers: results in range order, failures raised in the parser, no worker left behind."""

from __future__ import annotations

import marshal
import os
import subprocess
import sys
from itertools import pairwise

import pytest

import nandoctor.log.chunks as C
import nandoctor.log.parser as parser_module
import nandoctor.log.workers as W
from nandoctor.log.parser import parse_log
from tests.log.test_chunking import canon

pytestmark = pytest.mark.skipif(not W.available(), reason="no fork on this platform")

LINE = b"I20261123 18:43:18.487260 12700 solver.cpp:239] Iteration %d (1 iter/s, 0.5s/10 iters), loss = %g\n"


@pytest.fixture
def log(tmp_path):
    path = tmp_path / "train.log"
    path.write_bytes(b"".join(LINE % (10 * i, 1.0 / (i + 1)) for i in range(200)))
    return path


def _ranges(path, pieces: int) -> list[tuple[int, int]]:
    data = path.read_bytes()
    starts = [0, *(i + 1 for i, b in enumerate(data) if b == 10)]
    step = max(1, len(starts) // pieces)
    cuts = sorted({*starts[::step], len(data)})
    return list(pairwise(cuts))


@pytest.mark.parametrize("workers", [1, 2, 3, 50])
def test_results_come_back_in_range_order(log, workers):
    ranges = _ranges(log, 7)
    got = list(W.scan_in_order(str(log), ranges, False, workers))
    expected = [marshal.loads(C.scan_range_packed(str(log), lo, hi, False)) for lo, hi in ranges]
    assert got == expected


def test_results_larger_than_a_slot_come_through_the_pipe(log, monkeypatch):
    monkeypatch.setattr(W, "SLOT_SIZE", 64)  # every result is larger
    ranges = _ranges(log, 5)
    got = list(W.scan_in_order(str(log), ranges, False, 2))
    assert got == [marshal.loads(C.scan_range_packed(str(log), lo, hi, False)) for lo, hi in ranges]


def test_an_exception_in_a_worker_is_raised_in_the_parser(log, monkeypatch):
    ranges = _ranges(log, 4)

    def fail_on_third(path, lo, hi, bare, token=None):
        if (lo, hi) == ranges[2]:
            raise ValueError(f"cannot scan {lo}-{hi}")
        return C.scan_range_packed(path, lo, hi, bare, token)

    monkeypatch.setattr(W, "scan_range_packed", fail_on_third)  # the forked workers inherit it
    results = W.scan_in_order(str(log), ranges, False, 2)
    assert len([next(results), next(results)]) == 2
    with pytest.raises(ValueError, match=f"cannot scan {ranges[2][0]}"):
        next(results)


def test_a_worker_that_dies_silently_is_a_child_process_error(log, monkeypatch):
    monkeypatch.setattr(W, "scan_range_packed", lambda *a, **k: os._exit(3))
    with pytest.raises(ChildProcessError, match="ended without sending"):
        list(W.scan_in_order(str(log), _ranges(log, 4), False, 2))


def test_leaving_early_kills_and_reaps_every_worker(log, monkeypatch):
    pids = []
    real_fork = os.fork

    def recording_fork():
        pid = real_fork()
        if pid:
            pids.append(pid)
        return pid

    monkeypatch.setattr(W.os, "fork", recording_fork)
    results = W.scan_in_order(str(log), _ranges(log, 9), False, 3)
    next(results)
    results.close()
    assert len(pids) == 3
    for pid in pids:
        with pytest.raises(ChildProcessError):  # reaped: no longer our child
            os.waitpid(pid, os.WNOHANG)


def test_a_dead_worker_during_a_parse_is_recorded_as_a_read_error(log, monkeypatch):
    monkeypatch.setattr(C, "BLOCK", 1024)
    monkeypatch.setattr(W, "scan_range_packed", lambda *a, **k: os._exit(3))
    trace = parse_log(log, workers=2)
    assert trace.stats["read_error"] == 1


def test_without_fork_the_spawned_pool_gives_the_same_trace(log, monkeypatch):
    single = canon(parse_log(log, workers=1))
    monkeypatch.setattr(C, "BLOCK", 1024)
    monkeypatch.setattr(parser_module, "workers_available", lambda: False)
    assert canon(parse_log(log, workers=2)) == single


def test_a_parse_survives_sigpipe_left_at_its_default(log):
    """Programs piping their output often restore SIGPIPE's default, which kills a process that writes
    to a pipe nobody reads: handing a slot back must never be such a write."""
    code = (
        "import signal, sys; signal.signal(signal.SIGPIPE, signal.SIG_DFL)\n"
        "import nandoctor.log.chunks as C; C.BLOCK = 512\n"
        "import nandoctor.log.workers as W; W.SLOT_SIZE = 1 << 16\n"
        "from nandoctor.log.parser import parse_log\n"
        "t = parse_log(sys.argv[1], workers=2); print(len(t.train))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(log)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "200"
