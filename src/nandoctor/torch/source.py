"""Which of the user's functions called an op: the name a user looks for in their own code.

A producer such as ``Tensor.div`` says what went wrong but not where to change it; the
innermost Python frame outside torch and outside nandoctor names the user's loss
function, module ``forward`` or training-step code, with file and line. Frames are
only read during a replay, never on the always-on path.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
from nandoctor.torch.facts import where  # noqa: F401  (re-exported: the rules use it without torch)

TORCH_DIR = str(Path(torch.__file__).resolve().parent)
GUARD_DIR = str(Path(__file__).resolve().parent)


def _short(qualname: str) -> str:
    """``test_x.<locals>.hand_nll`` -> ``hand_nll``; ``RatioLoss.forward`` stays as it is."""
    return qualname.rsplit(".<locals>.", 1)[-1]


def user_frame(skip: int = 1) -> dict[str, Any] | None:
    """The innermost caller outside torch; None when nandoctor's own code comes first (a loss the
    guard itself called, such as ``criterion=``, has no user frame above it that wrote the op)."""
    frame = sys._getframe(skip)
    while frame is not None:
        file = frame.f_code.co_filename
        if file.startswith(GUARD_DIR):
            return None
        if not file.startswith(TORCH_DIR) and not file.startswith("<frozen"):
            code = frame.f_code
            return {
                "function": _short(getattr(code, "co_qualname", code.co_name)),
                "file": file,
                "line": frame.f_lineno,
            }
        frame = frame.f_back
    return None


def describe(func: Any) -> dict[str, Any] | None:
    """Name, file and first line of a Python function (a criterion, an lr lambda)."""
    code = getattr(func, "__code__", None)
    if code is None:
        call = getattr(type(func), "forward", None) or type(func).__dict__.get("__call__")
        code = getattr(call, "__code__", None)
        if code is None:
            return None
        name = type(func).__name__
    else:
        name = _short(getattr(func, "__qualname__", code.co_name))
    return {"function": name, "file": code.co_filename, "line": code.co_firstlineno}
