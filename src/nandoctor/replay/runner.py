"""Run Caffe on a replay: find it, stream its output, stop once the failure is reproduced.

``find_caffe(explicit)`` looks at ``--caffe PATH``, ``$CAFFE_BIN``, ``caffe`` on PATH and
finally an importable pycaffe (driven by ``nandoctor.replay.pycaffe_driver``).
``run_caffe(argv, cwd, log_path, ...)`` starts it in its own process group (so the
terminal's Ctrl-C reaches us, not it, and a whole tree of children can be stopped at
once), copies every output line to the log file, reports progress (iteration, loss, lr),
and stops it a few iterations after the first non-finite value, at the timeout, on
Ctrl-C/SIGTERM, or on any error of ours: first SIGINT (Caffe's ``sigint_effect`` stop
ends the run cleanly), then SIGTERM, then SIGKILL for the whole group. Nothing is left
running when it returns or raises.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nandoctor.core.safeio import OutputDir

ITER_LOSS_RE = re.compile(rb"Iteration (\d+)\b[^\n]*?, loss = (\S+)")
LR_RE = re.compile(rb"Iteration (\d+), lr = (\S+)")
OUTPUT_RE = re.compile(rb"(Train|Test) net output #\d+: (\S+) = (\S+)")
TESTING_RE = re.compile(rb"Iteration (\d+), Testing net")
DEBUG_BAD_RE = re.compile(rb"\] +\[(?:Forward|Backward)\] .*(?:data|diff): -?(?:nan|inf)")


@dataclass(frozen=True, slots=True)
class Caffe:
    kind: str  # binary | pycaffe
    argv: tuple[str, ...]  # the command prefix
    where: str  # how it was found, for people

    def train_command(self, solver: Path, snapshot: Path | None = None, gpu: str | None = None) -> list[str]:
        if self.kind == "pycaffe":
            cmd = [*self.argv, "--solver", str(solver)]
            if snapshot is not None:
                cmd += ["--snapshot", str(snapshot)]
            if gpu is not None:
                cmd += ["--gpu", gpu]
            return cmd
        cmd = [*self.argv, "train", f"--solver={solver}"]
        if snapshot is not None:
            cmd.append(f"--snapshot={snapshot}")
        if gpu is not None:
            cmd.append(f"--gpu={gpu}")
        return cmd


DRIVER = Path(__file__).with_name("pycaffe_driver.py")


def find_caffe(explicit: str | None = None, env: dict[str, str] | None = None, *,
               pycaffe_only: bool = False) -> Caffe | None:  # fmt: skip
    """The Caffe to run: --caffe, $CAFFE_BIN, `caffe` on PATH, then pycaffe (None when there is none).
    ``pycaffe_only``: the replay steps the solver, which only pycaffe can (None without it)."""
    env = os.environ if env is None else env
    if pycaffe_only:
        return _pycaffe()
    for value, where in ((explicit, "--caffe"), (env.get("CAFFE_BIN"), "$CAFFE_BIN")):
        if value:
            path = shutil.which(value) or (value if os.access(value, os.X_OK) and os.path.isfile(value) else None)
            if path is None:
                raise FileNotFoundError(f"{where} {value}: not an executable file")
            return Caffe("binary", (os.path.abspath(path),), where)
    found = shutil.which("caffe", path=env.get("PATH"))
    if found:
        return Caffe("binary", (found,), "PATH")
    return _pycaffe()


def _pycaffe() -> Caffe | None:
    spec = importlib.util.find_spec("caffe")
    if spec is not None:
        return Caffe("pycaffe", pycaffe_command(spec.submodule_search_locations or [spec.origin or ""]), "pycaffe")
    return None


def pycaffe_command(caffe_package: list[str]) -> tuple[str, ...]:
    """The isolated (``-I``) Python running the driver, told where the ``caffe`` package was found."""
    driver = str(DRIVER)
    where = [os.path.dirname(os.path.abspath(p)) for p in caffe_package if p]
    return (sys.executable, "-I", driver, *(a for d in where for a in ("--path", d)))


@dataclass
class Progress:
    iteration: int | None = None
    loss: str | None = None
    lr: str | None = None
    first_nonfinite: int | None = None  # first iteration a non-finite value was printed at
    debug_bad: bool = False  # a debug_info value was non-finite; the next display line gives the iteration
    lines: int = 0
    elapsed: float = 0.0


@dataclass
class RunResult:
    status: str  # reproduced | finished | crashed | timeout | interrupted
    returncode: int | None
    log_path: Path
    progress: Progress
    stopped_by_us: bool = False
    elapsed: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def reproduced(self) -> bool:
        return self.progress.first_nonfinite is not None


def _bad(text: bytes) -> bool:
    try:
        return not math.isfinite(float(text))
    except ValueError:
        return text.lstrip(b"-+").lower().startswith((b"nan", b"inf", b"1.#"))


def _watch(line: bytes, p: Progress) -> None:
    """Update the progress from one output line."""
    m = ITER_LOSS_RE.search(line)
    if m:
        p.iteration, p.loss = int(m.group(1)), m.group(2).decode(errors="replace")
        if (_bad(m.group(2)) or p.debug_bad) and p.first_nonfinite is None:
            p.first_nonfinite = p.iteration
        return
    m = LR_RE.search(line)
    if m:
        p.iteration, p.lr = int(m.group(1)), m.group(2).decode(errors="replace")
        if _bad(m.group(2)) and p.first_nonfinite is None:
            p.first_nonfinite = p.iteration
        return
    m = TESTING_RE.search(line)
    if m:
        p.iteration = int(m.group(1))
        return
    m = OUTPUT_RE.search(line)
    if m and _bad(m.group(3).rstrip(b")")) and p.first_nonfinite is None:
        p.first_nonfinite = p.iteration if p.iteration is not None else 0
        return
    if p.first_nonfinite is None and DEBUG_BAD_RE.search(line):
        p.debug_bad = True  # debug lines come before their iteration's display line, which names it


class _Stop(Exception):
    """SIGTERM while Caffe runs: unwind through the cleanup like Ctrl-C."""


def run_caffe(argv: list[str], cwd: Path, log_path: Path, *, timeout: float | None = None, stop_after: int = 3,
              grace: float = 5.0, progress: Callable[[Progress], None] | None = None,
              env: dict[str, str] | None = None) -> RunResult:  # fmt: skip
    """Run ``argv`` in ``cwd`` and copy its output (stdout and stderr) to ``log_path``.

    Stops the run ``stop_after`` iterations after the first non-finite value, or at
    ``timeout`` seconds. Ctrl-C (KeyboardInterrupt) stops it too and is re-raised once
    the process group is gone.
    """
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault("GLOG_logtostderr", "1")  # glog writes to files otherwise (pycaffe)
    log_folder = OutputDir(log_path.parent, what="log folder")  # no symlink planted there is followed
    start = time.monotonic()
    p = Progress()
    linux = _PRCTL is not None
    proc = subprocess.Popen(argv, cwd=cwd, env=child_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=_die_with_parent if linux else None)  # fmt: skip
    lines: queue.Queue[bytes | None] = queue.Queue(maxsize=10000)
    reader = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
    reader.start()
    old_term = _on_sigterm()
    status, stopped = "finished", False
    exited: float | None = None
    try:
        with log_folder.open_log(log_path.name) as log:
            done = False
            while not done:
                try:
                    line = lines.get(timeout=0.1)
                except queue.Empty:
                    line = b""
                if line is None:
                    done = True
                elif line:
                    log.write(line)
                    p.lines += 1
                    _watch(line, p)
                p.elapsed = time.monotonic() - start
                if progress is not None and line:
                    progress(p)
                if line == b"" and proc.poll() is not None:
                    # Caffe is gone but a child of it still holds the pipe open: end that child too
                    exited = exited or time.monotonic()
                    if time.monotonic() - exited > 0.5:
                        _kill_group(proc)
                if stopped:
                    continue
                if (
                    p.first_nonfinite is not None
                    and p.iteration is not None
                    and (p.iteration >= p.first_nonfinite + stop_after)
                ):
                    status, stopped = "reproduced", True
                    _stop_group(proc, grace)
                elif timeout is not None and p.elapsed > timeout:
                    status, stopped = "timeout", True
                    _stop_group(proc, grace)
            log.flush()
        proc.wait()
    except (KeyboardInterrupt, _Stop):
        _stop_group(proc, grace)
        raise KeyboardInterrupt from None
    finally:
        _restore_sigterm(old_term)
        _kill_group(proc)
        reader.join(timeout=1.0)
        if not reader.is_alive() and proc.stdout is not None:
            proc.stdout.close()
    rc = proc.returncode
    if not stopped:
        if p.first_nonfinite is not None:
            status = "reproduced"
        elif rc != 0:
            status = "crashed"
    return RunResult(status, rc, log_path, p, stopped, time.monotonic() - start)


def _pump(stream, out: queue.Queue) -> None:
    try:
        for line in iter(stream.readline, b""):
            out.put(line)
    except (OSError, ValueError):
        pass
    finally:
        out.put(None)


def _stop_group(proc: subprocess.Popen, grace: float) -> None:
    """SIGINT (Caffe stops cleanly), then SIGTERM, then SIGKILL, each to the whole process group."""
    for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            break
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    _kill_group(proc)


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill whatever is left of the group (grandchildren that outlived Caffe) and reap Caffe."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5.0)


def _prctl():
    """libc's prctl, looked up in the parent: the child between fork and exec must not import or load."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl() if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGKILL it if nandoctor itself is killed outright (kill -9, OOM),
    when no cleanup of ours can run."""
    if _PRCTL is not None:
        _PRCTL(1, 9)  # PR_SET_PDEATHSIG, SIGKILL


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)  # a closed terminal must not orphan Caffe either


def _on_sigterm():
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise _Stop()

    return [(sig, signal.signal(sig, handler)) for sig in STOP_SIGNALS]


def _restore_sigterm(old) -> None:
    if old is not None and threading.current_thread() is threading.main_thread():
        for sig, handler in old:
            signal.signal(sig, handler)
