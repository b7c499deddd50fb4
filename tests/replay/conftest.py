"""Replay test helpers: a copy of the fixture run, solverstate files, and a stand-in `caffe` executable."""

from __future__ import annotations

import os
import shutil
import struct
import sys
import time
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "replay"
SRC = Path(__file__).resolve().parents[2] / "src"


def solverstate_bytes(iteration: int, learned_net: str) -> bytes:
    """A SolverState message: iter (field 1), learned_net (field 2), one history blob (field 3)."""

    def varint(n: int) -> bytes:
        out = b""
        while True:
            b, n = n & 0x7F, n >> 7
            out += bytes([b | (0x80 if n else 0)])
            if not n:
                return out

    name = learned_net.encode()
    blob = b"\x2a" + varint(8) + struct.pack("<2f", 0.5, 0.25)  # BlobProto data (field 5, packed)
    return b"\x08" + varint(iteration) + b"\x12" + varint(len(name)) + name + b"\x1a" + varint(len(blob)) + blob


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """The fixture run (NaN at iteration 4) with snapshots at iterations 2 and 4."""
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "run", run)
    (run / "snap").mkdir()
    for it in (2, 4):
        (run / "snap" / f"run_iter_{it}.caffemodel").write_bytes(b"\x0a\x04Tiny")
        (run / "snap" / f"run_iter_{it}.solverstate").write_bytes(
            solverstate_bytes(it, f"snap/run_iter_{it}.caffemodel")
        )
    return run


FAKE_CAFFE = r'''#!{python}
"""A stand-in for `caffe train`: reads --solver, replays a recorded log to stderr, exits like Caffe.

Environment: FAKE_RECORDING (log to replay), FAKE_DELAY (s per line), FAKE_EXIT (code or "abort"),
FAKE_HANG (sleep after the output), FAKE_IGNORE_INT (ignore SIGINT/SIGTERM), FAKE_CHILD (pid file of a
grandchild that keeps stdout open), FAKE_PIDFILE (own pid), FAKE_ARGS (argv and cwd as written).
"""
import os, re, signal, subprocess, sys, time

env = os.environ.get
if env("FAKE_PIDFILE"):
    open(env("FAKE_PIDFILE"), "w").write(str(os.getpid()))
if env("FAKE_ARGS"):
    open(env("FAKE_ARGS"), "w").write("\n".join([os.getcwd(), *sys.argv[1:]]))
args = sys.argv[1:]
solver = next((a.split("=", 1)[1] for a in args if a.startswith("--solver=")), None)
if not args or args[0] != "train" or solver is None:
    sys.stderr.write("F1123 10:00:00.000000  1 caffe.cpp:1] usage: caffe train --solver=...\n")
    sys.exit(1)
try:
    text = open(solver).read()
except OSError:
    sys.stderr.write(f"F1123 10:00:00.000000  1 io.cpp:68] Check failed: fd != -1 (-1 vs. -1) File not found: {solver}\n")
    os.abort()
m = re.search(r"^max_iter:\s*(\d+)", text, re.M)
max_iter = int(m.group(1)) if m else 0
net = re.search(r'^net:\s*"([^"]*)"', text, re.M)
if net and not os.path.isfile(net.group(1)):
    sys.stderr.write(f"F1123 10:00:00.000000  1 io.cpp:68] Check failed: fd != -1 File not found: {net.group(1)}\n")
    os.abort()


def stop(signum, frame):
    sys.stderr.write("I1123 10:00:00.000000  1 solver.cpp:311] Optimization stopped early.\n")
    sys.stderr.flush()
    os._exit(0)


if env("FAKE_IGNORE_INT"):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
else:
    signal.signal(signal.SIGINT, stop)
if env("FAKE_CHILD"):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    open(env("FAKE_CHILD"), "w").write(str(child.pid))
delay = float(env("FAKE_DELAY", "0"))
done = False
for line in open(env("FAKE_RECORDING", os.devnull)):
    it = re.search(r"Iteration (\d+)", line)
    if done and (it is None or int(it.group(1)) > max_iter or "[Forward]" in line):
        break
    sys.stderr.write(line)
    sys.stderr.flush()
    if delay:
        time.sleep(delay)
    if it and ", loss = " in line and int(it.group(1)) >= max_iter:
        done = True
if env("FAKE_HANG"):
    time.sleep(300)
sys.stderr.write("I1123 10:00:00.000000  1 solver.cpp:332] Optimization Done.\n")
sys.stderr.flush()
code = env("FAKE_EXIT", "0")
if code == "abort":
    sys.stderr.write("*** Aborted at 1700000000 (unix time) try \"date -d @1700000000\" if you are using GNU date ***\n")
    sys.stderr.flush()
    os.abort()
sys.exit(int(code))
'''


@pytest.fixture
def fake_caffe(tmp_path) -> Path:
    path = tmp_path / "bin" / "caffe"
    path.parent.mkdir()
    path.write_text(FAKE_CAFFE.replace("{python}", sys.executable))
    path.chmod(0o755)
    return path


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return False


def alive(pid: int, settle: float = 3.0) -> bool:
    """True if the process still runs ``settle`` seconds from now (a SIGKILLed process needs a moment to
    finish exiting; a zombie counts as gone: PID 1 of a container may never reap it)."""
    deadline = time.monotonic() + settle
    while _running(pid):
        if time.monotonic() > deadline:
            return True
        time.sleep(0.02)
    return False


def env_with(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [env.get("PYTHONPATH")])])
    env.update(extra)
    return env
