"""Audit rows on inputs: bounded memory on pathological files, no hang on a FIFO or a device,
a clear message (``path[:line:col]: ...``, exit 2) instead of a traceback.

Each child runs under an address-space cap (a regression ends in MemoryError, not in a
machine out of memory) and its peak RSS is compared with the budget below."""

from __future__ import annotations

import gzip
import json
import os
import re
import time
from pathlib import Path

import pytest

from tests.hostile.fixtures import image_run
from tests.hostile.helpers import assert_input_error, cli, copy_run

BUDGET_MB = 400  # peak RSS of one command on any of these inputs (imports alone take ~80)
FIFO_TIMEOUT = 30  # seconds before a hang counts as a failure (the log reader waits 10 s for a writer)


def _within_budget(r) -> None:
    assert "MemoryError" not in r.err and "Traceback" not in r.err, r.err[-3000:]
    assert 0 < r.rss_mb < BUDGET_MB, f"peak RSS {r.rss_mb:.0f} MB, budget {BUDGET_MB} MB"


# ------------------------------------------------------------------ /dev/zero as an input
def test_dev_zero_as_mean_file(tmp_path):
    run = copy_run("r02", tmp_path / "run")
    net = run / "train_val.prototxt"
    net.write_text(
        net.read_text().replace("  data_param {", '  transform_param { mean_file: "/dev/zero" }\n  data_param {', 1)
    )
    r = cli("diagnose", run)
    _within_budget(r)
    assert r.code in (1, 2)
    assert "/dev/zero" in r.out + r.err and "character device" in r.out + r.err


def test_dev_zero_as_hdf5_source(tmp_path):
    run = copy_run("r21", tmp_path / "run")
    (run / "train_h5.txt").write_text("/dev/zero\n")
    r = cli("scan-data", run / "train_val.prototxt", "--workers", "0")
    _within_budget(r)
    assert "/dev/zero" in r.out + r.err and "regular file" in r.out + r.err


def test_dev_zero_as_hdf5_list(tmp_path):
    run = copy_run("r21", tmp_path / "run")
    net = run / "train_val.prototxt"
    net.write_text(net.read_text().replace('source: "train_h5.txt"', 'source: "/dev/zero"'))
    r = cli("scan-data", net, "--workers", "0")
    _within_budget(r)
    assert "/dev/zero" in r.out + r.err


def test_dev_zero_as_image_list_entry(tmp_path):
    run = image_run(tmp_path / "run", entries=["img/0.png 0", "/dev/zero 1"])
    r = cli("scan-data", run / "train_val.prototxt", "--workers", "0")
    _within_budget(r)
    assert "/dev/zero" in r.out + r.err


def test_dev_zero_as_solver_net(tmp_path):
    run = copy_run("r01", tmp_path / "run")
    solver = run / "solver.prototxt"
    solver.write_text(re.sub(r'net: ".*"', 'net: "/dev/zero"', solver.read_text()))
    r = cli("diagnose", run, "--no-data", "--format", "json")
    _within_budget(r)
    assert r.code in (0, 1), r.err
    notes = " ".join(json.loads(r.out)["inputs"]["notes"])
    assert "/dev/zero" in notes and "character device" in notes, notes
    r = cli("lint", solver)
    _within_budget(r)


def test_log_symlinked_to_dev_zero(tmp_path):
    log = tmp_path / "train.log"
    log.symlink_to("/dev/zero")
    r = cli("diagnose", log, timeout=FIFO_TIMEOUT)
    assert_input_error(r, log, "character device")
    r = cli("log", log, timeout=FIFO_TIMEOUT)
    assert_input_error(r, log, "character device")


# ------------------------------------------------------------------ logs of a pathological shape
def _bare_nan_log(lines: int) -> bytes:
    return b"".join(b"Iteration %d, loss = nan\n" % (10 + i) for i in range(lines))


@pytest.mark.parametrize("gz", [False, True], ids=["log", "log.gz"])
def test_bare_nan_lines(tmp_path, gz):
    """A log of nothing but ``Iteration N, loss = nan``: 2 MB of it, plain and gzipped."""
    data = _bare_nan_log(80_000)
    log = tmp_path / ("train.log.gz" if gz else "train.log")
    log.write_bytes(gzip.compress(data) if gz else data)
    for command in ("diagnose", "log"):
        r = cli(command, log)
        _within_budget(r)
        assert r.code in (1, 2), (command, r.err)


def test_many_short_glog_runs(tmp_path):
    """10^5 runs (a "Log file created" header and one iteration each) in one 13 MB file."""
    run = (
        b"Log file created at: 2026/01/01 00:00:00\n"
        b"I0101 00:00:00.000000  1 solver.cpp:218] Iteration 0 (0 iter/s, 0s/1 iters), loss = 2.3\n"
    )
    log = tmp_path / "train.log"
    log.write_bytes(run * 100_000)
    r = cli("log", log, timeout=120)
    _within_budget(r)
    assert r.code in (0, 1), r.err[-2000:]


# ------------------------------------------------------------------ prototxt and log literals
def test_16mb_string_literal(tmp_path):
    net = tmp_path / "net.prototxt"
    net.write_bytes(b'name: "' + b"x" * (15 * (1 << 20)) + b'"\nlayer { name: "a" type: "ReLU" }\n')
    r = cli("lint", net)
    _within_budget(r)
    assert r.code in (0, 1, 2) and "Traceback" not in r.err
    big = tmp_path / "big.prototxt"
    big.write_bytes(b'name: "' + b"x" * (17 * (1 << 20)) + b'"\n')
    r = cli("lint", big)
    _within_budget(r)
    assert_input_error(r, big, "bytes")


def test_400_deep_nesting(tmp_path):
    net = tmp_path / "net.prototxt"
    net.write_text("layer { " * 400 + "}" * 400 + "\n")
    r = cli("lint", net)
    assert_input_error(r, f"{net}:1:", "nest")


def test_5000_digit_integer_in_solver(tmp_path):
    run = copy_run("r01", tmp_path / "run")
    solver = run / "solver.prototxt"
    solver.write_text(re.sub(r"max_iter: \d+", "max_iter: " + "9" * 5000, solver.read_text()))
    r = cli("lint", solver)
    assert "Traceback" not in r.err and "ValueError" not in r.err, r.err
    assert r.code in (1, 2) and "out of range" in r.out + r.err
    r = cli("diagnose", run, "--no-data")
    assert_input_error(r, f"{solver}:", "out of range")


def test_5000_digit_integer_in_a_log_line(tmp_path):
    log = tmp_path / "train.log"
    log.write_text(
        "I0101 00:00:00.000000  1 solver.cpp:218] Iteration 0, loss = 2.3\n"
        f"I0101 00:00:01.000000  1 solver.cpp:218] Iteration {'9' * 5000}, loss = 2.1\n"
        "I0101 00:00:02.000000  1 solver.cpp:218] Iteration 20, loss = nan\n"
    )
    for command in ("diagnose", "log"):
        r = cli(command, log)
        assert "Traceback" not in r.err and "ValueError" not in r.err, r.err
        assert r.code in (1, 2), (command, r.err)


# ------------------------------------------------------------------ FIFOs never block
def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def test_fifo_as_log(tmp_path):
    log = _fifo(tmp_path / "train.log")
    start = time.monotonic()
    r = cli("diagnose", "--log", log, timeout=FIFO_TIMEOUT)
    assert_input_error(r, log, "FIFO")
    assert time.monotonic() - start < FIFO_TIMEOUT


def test_fifo_as_prototxt(tmp_path):
    net = _fifo(tmp_path / "net.prototxt")
    r = cli("lint", net, timeout=FIFO_TIMEOUT)
    assert_input_error(r, net, "FIFO")


def test_fifo_as_data_source(tmp_path):
    run = copy_run("r21", tmp_path / "run")
    (run / "train_h5.txt").unlink()
    _fifo(run / "train_h5.txt")
    r = cli("scan-data", run / "train_val.prototxt", "--workers", "0", timeout=FIFO_TIMEOUT)
    assert "Traceback" not in r.err and r.code in (1, 2)
    assert "FIFO" in r.out + r.err
    h5 = _fifo(tmp_path / "data.h5")
    r = cli("scan-data", h5, "--workers", "0", timeout=FIFO_TIMEOUT)
    assert_input_error(r, h5, "FIFO")


def test_fifo_as_lmdb(tmp_path):
    db = tmp_path / "db"
    db.mkdir()
    _fifo(db / "data.mdb")
    r = cli("scan-data", db, "--workers", "0", timeout=FIFO_TIMEOUT)
    assert "Traceback" not in r.err and r.code == 2, (r.code, r.err)


def test_fifo_as_image_list_entry(tmp_path):
    run = image_run(tmp_path / "run", entries=["img/0.png 0", "img/fifo.png 1"])
    _fifo(run / "img" / "fifo.png")
    r = cli("scan-data", run / "train_val.prototxt", "--workers", "0", timeout=FIFO_TIMEOUT)
    assert "Traceback" not in r.err and r.code in (1, 2)
    assert "FIFO" in r.out + r.err


# ------------------------------------------------------------------ HDF5
def test_sparse_hdf5_declared_at_1_tib(tmp_path):
    import h5py

    h5 = tmp_path / "sparse.h5"
    with h5py.File(h5, "w") as f:
        f.create_dataset("data", shape=(1 << 28, 1024), dtype="f4", chunks=(1, 1024))
        f.create_dataset("label", shape=(1 << 28,), dtype="f4", chunks=(1024,))
    assert h5.stat().st_size < 1 << 20
    start = time.monotonic()
    r = cli("scan-data", h5, "--workers", "0", timeout=60)
    assert "Traceback" not in r.err and r.code in (1, 2), r.err
    assert "was ever written" in r.out, r.out[-2000:]
    assert time.monotonic() - start < 60


def test_zero_row_hdf5_is_a_finding(tmp_path):
    import h5py

    h5 = tmp_path / "empty.h5"
    with h5py.File(h5, "w") as f:
        f.create_dataset("data", shape=(0, 1, 16, 16), dtype="f4")
        f.create_dataset("label", shape=(0,), dtype="f4")
    r = cli("scan-data", h5, "--workers", "0")
    assert r.code == 1 and "Traceback" not in r.err, (r.code, r.out, r.err)
    assert "0 rows" in r.out


def test_empty_mean_file_is_a_finding(tmp_path):
    run = copy_run("r02", tmp_path / "run")
    (run / "empty.binaryproto").write_bytes(b"")
    net = run / "train_val.prototxt"
    net.write_text(
        net.read_text().replace(
            "  data_param {", '  transform_param { mean_file: "empty.binaryproto" }\n  data_param {', 1
        )
    )
    r = cli("scan-data", net, "--workers", "0")
    assert "Traceback" not in r.err and r.code == 1, (r.code, r.err)
    assert "empty.binaryproto" in r.out, r.out
