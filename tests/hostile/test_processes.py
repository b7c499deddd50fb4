"""Audit rows on processes: no worker outlives a killed nandoctor (its stdout pipe closes),
no partial output after SIGTERM, no temp file left by ``--log -``, replay's Python isolated,
no advice to unpickle."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tests.data.builders import key
from tests.hostile.helpers import child_command, cli, copy_run

WAIT = 30  # seconds for anything to happen before the test fails instead of hanging


@pytest.fixture(scope="module")
def big_lmdb(tmp_path_factory) -> Path:
    """40 MB of float records: over the size scanned without a pool, a few seconds to scan."""
    from nandoctor.data.datum import encode_datum

    rng = np.random.default_rng(0)
    items = [(key(i), encode_datum(1, 32, 32, label=i % 10, float_data=rng.random(1024, dtype=np.float32)))
             for i in range(10_000)]  # fmt: skip
    import lmdb

    path = tmp_path_factory.mktemp("big") / "train_lmdb"
    env = lmdb.open(str(path), map_size=1 << 27)
    with env.begin(write=True) as txn:
        for k, v in items:
            txn.put(k, v)
    env.close()
    return path


def _session(sid: int) -> list[int]:
    """Pids of the processes still in session ``sid`` (zombies excluded)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[3]) == sid:  # state, ppid, pgrp, session
            out.append(int(entry))
    return out


def _wait_for(cond, what: str) -> None:
    end = time.monotonic() + WAIT
    while not cond():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _kill_during_scan(args: list, sig: int, cwd: Path) -> subprocess.Popen:
    p = subprocess.Popen(child_command(*args), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)  # fmt: skip
    _wait_for(lambda: len(_session(p.pid)) >= 3 or p.poll() is not None, "the pool workers")
    assert p.poll() is None, "the scan ended before the pool started: make the data set larger"
    os.kill(p.pid, sig)
    try:
        p.communicate(timeout=WAIT)  # returns only once every holder of the pipe is gone
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        pytest.fail("the stdout pipe stayed open: a worker outlived nandoctor")
    _wait_for(lambda: not _session(p.pid), "the workers to end")
    return p


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_scan_data_clean_killed(tmp_path, big_lmdb, sig):
    out = tmp_path / "clean"
    _kill_during_scan(["scan-data", big_lmdb, "--clean", out, "--workers", "2", "--no-progress"], sig, tmp_path)
    assert not (out / "data.mdb").exists(), "a partial copy looks like the output"
    if sig == signal.SIGTERM:
        assert not [p for p in tmp_path.rglob("*") if "partial" in p.name], "a temporary copy was left"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_diagnose_data_scan_killed(tmp_path, big_lmdb, sig):
    run = copy_run("r02", tmp_path / "run")
    net = run / "train_val.prototxt"
    net.write_text(net.read_text().replace('source: "train_lmdb"', f'source: "{big_lmdb}"'))
    _kill_during_scan(["diagnose", run], sig, tmp_path)


def test_sigterm_during_the_clean_copy_leaves_no_partial_output(tmp_path, big_lmdb):
    out = tmp_path / "clean"
    p = subprocess.Popen(child_command("scan-data", big_lmdb, "--clean", out, "--workers", "0", "--no-progress"),
                         cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
    _wait_for(lambda: any("partial" in e.name for e in tmp_path.rglob("*")) or p.poll() is not None, "the copy")
    os.kill(p.pid, signal.SIGTERM)
    p.communicate(timeout=WAIT)
    if p.returncode == 0:
        pytest.skip("the copy finished before SIGTERM arrived")
    assert not (out / "data.mdb").exists()
    assert not [e for e in tmp_path.rglob("*") if "partial" in e.name]


def test_diagnose_log_stdin_leaves_no_temp_file(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    log = copy_run("r05", tmp_path / "run") / "train.log"
    env = dict(os.environ, TMPDIR=str(tmp))
    r = cli("diagnose", "--log", "-", stdin=log.read_bytes(), env=env)
    assert r.code == 1, r.err
    assert list(tmp.iterdir()) == []
    # and when killed while reading stdin
    p = subprocess.Popen(child_command("diagnose", "--log", "-"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)  # fmt: skip
    p.stdin.write(log.read_bytes())
    p.stdin.flush()
    _wait_for(lambda: any(tmp.iterdir()), "the excerpt's temp file")
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=WAIT)
    assert list(tmp.iterdir()) == []


def test_replay_pycaffe_driver_is_isolated(tmp_path):
    """An argparse.py in the run folder (Caffe's cwd) must not run when the driver starts."""
    from nandoctor.replay.runner import pycaffe_command

    run = tmp_path / "run"
    run.mkdir()
    marker = tmp_path / "EXECUTED"
    (run / "argparse.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    cmd = pycaffe_command([str(tmp_path / "no-caffe-here" / "caffe")])
    assert cmd[1] == "-I"
    subprocess.run([*cmd, "--solver", "solver.prototxt"], cwd=run, capture_output=True, timeout=WAIT,
                   env={k: v for k, v in os.environ.items() if k != "CAFFE_PYTHON"})  # fmt: skip
    assert not marker.exists(), "code from the run folder ran"


class _Evil:
    def __reduce__(self):
        return (print, ("unpickled",))


def test_no_advice_to_load_with_weights_only_false(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    from nandoctor.torch.bundle import refusal

    file = tmp_path / "batch.pt"
    torch.save({"x": _Evil()}, file)
    with pytest.raises(Exception) as caught:
        torch.load(file, weights_only=True)
    assert "weights_only" in str(caught.value), "torch's own message carries the advice this row is about"
    said = refusal(caught.value)
    assert "weights_only" not in said and "unpickl" in said and "never" in said
    assert "unpickled" not in capsys.readouterr().out
