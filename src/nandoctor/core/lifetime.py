"""Worker processes that end with the process that started them.

A pool worker forked by nandoctor must not outlive it: killed with SIGTERM or SIGKILL, the
parent runs no cleanup, and a worker left behind (its parent now init) keeps the inherited
stdout open, so a pipe or ``communicate()`` reading nandoctor's output waits forever.

:func:`die_with_parent` is called first thing in the worker. On Linux the kernel delivers
SIGKILL when the parent dies (``PR_SET_PDEATHSIG``); elsewhere, and as a second guard, a
daemon thread polls the parent's pid and ends the worker once it changed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
POLL_SECONDS = 0.5


def _prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl()


def die_with_parent(parent_pid: int) -> None:
    """End this process when ``parent_pid`` (the process that forked it) is gone."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="nandoctor-parent-watch", daemon=True).start()
