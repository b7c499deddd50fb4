"""Running nandoctor as a hostile user would: a child process (isolated, this repository's
source), its exit code, its output and its peak memory; hashes of every file around it."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import CORPUS

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"
MB = 1 << 20

# The child: an optional address-space cap (a regression then fails with MemoryError instead
# of taking the machine), the CLI, and its own peak RSS written where the test reads it. The
# peak is VmHWM of the process's own memory: ``ru_maxrss`` survives exec on Linux, so a child of
# a large pytest process would report the parent's size.
_CHILD = r"""
import os, resource, sys
cap = int(os.environ.get("HOSTILE_AS", "0"))
if cap:
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
sys.path.insert(0, sys.argv[1])
from nandoctor.cli.main import main
try:
    code = main(sys.argv[2:])
finally:
    out = os.environ.get("HOSTILE_RSS")
    if out:
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            with open("/proc/self/status") as status:
                kb = next(int(ln.split()[1]) for ln in status if ln.startswith("VmHWM:"))
        except (OSError, StopIteration):
            pass
        with open(out, "w") as fh:
            fh.write(str(kb))
sys.exit(code)
"""


@dataclass
class Result:
    code: int
    out: str
    err: str
    rss_mb: float  # the child's peak resident set

    @property
    def message(self) -> str:
        return self.err.strip()


def cli(*args: str | os.PathLike, cwd: Path | None = None, timeout: float = 60, cap_mb: int = 3072,
        stdin: bytes | None = None, env: dict | None = None) -> Result:  # fmt: skip
    """``python3 -I`` running nandoctor with ``args``; a hang fails the test after ``timeout`` s."""
    rss = Path(os.environ.get("TMPDIR", "/tmp")) / f"hostile-rss-{os.getpid()}-{os.urandom(4).hex()}"
    child_env = dict(env if env is not None else os.environ)
    child_env.update(HOSTILE_AS=str(cap_mb * MB), HOSTILE_RSS=str(rss), NO_COLOR="1", COLUMNS="200")
    try:
        p = subprocess.run(
            [sys.executable, "-I", "-c", _CHILD, str(SRC), *map(str, args)],
            cwd=cwd, input=stdin, capture_output=True, timeout=timeout, env=child_env,
        )  # fmt: skip
        kb = int(rss.read_text()) if rss.exists() else 0
    finally:
        rss.unlink(missing_ok=True)
    return Result(p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace"), kb / 1024)


def child_command(*args: str | os.PathLike) -> list[str]:
    """The same child as :func:`cli`, for tests that signal it (Popen)."""
    return [sys.executable, "-I", "-c", _CHILD, str(SRC), *map(str, args)]


def assert_input_error(r: Result, path: str | os.PathLike, *words: str) -> None:
    """Exit 2 with ``nandoctor: PATH[:line:col]: message`` on stderr, and no traceback."""
    assert "Traceback" not in r.err, r.err
    assert r.code == 2, (r.code, r.out[-2000:], r.err[-2000:])
    assert f"nandoctor: {path}" in r.err, r.err
    for w in words:
        assert w in r.err, (w, r.err)


def tree(root: Path) -> dict[str, str]:
    """Every entry below ``root``: sha256 of a file, the target of a symlink, 'dir' for a folder."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
            elif p.is_file():
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                out[rel] = "special"
    return out


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy_run(run_id: str, dest: Path) -> Path:
    """A copy of a corpus run (skipped when the corpus is absent); the corpus is never touched."""
    src = CORPUS / "caffe-runs" / run_id
    if not src.is_dir():
        pytest.skip(f"corpus not available: {src}")
    shutil.copytree(src, dest, symlinks=True)
    return dest


def materialize(run_id: str, dest: Path) -> Path:
    """A lab run written out whole (configs, data, train.log) by ``python3 -m tools.lab materialize``."""
    from tools.lab import runner

    return runner.materialize(REPO / "tools" / "lab" / "runs" / run_id, dest)
