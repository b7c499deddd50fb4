"""What a lab run's log shows, read with a few plain regular expressions of its own.

This is the lab's ground truth, so it deliberately shares no code with nandoctor's parser: the
bench would otherwise grade the parser against itself. It reads only the lines Caffe's solver
prints for every run (``Iteration N ..., loss = X``, ``Train/Test net output #k``, ``Testing
net``, glog's ``F`` lines) and the process's exit code.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_DISPLAY = re.compile(r"Iteration (\d+)(?: \([^)]*\))?, loss = (\S+)")
_TESTING = re.compile(r"Iteration (\d+), Testing net \(#(\d+)\)")
_TEST_OUT = re.compile(r"Test net output #\d+: (\S+) = (\S+)")
_TRAIN_OUT = re.compile(r"Train net output #\d+: (\S+) = (\S+)")
# glog >= 0.6 puts the year in the prefix (F20261207 ...), older ones do not (F1207 ...)
_FATAL = re.compile(r"^F\d{4}(?:\d{4})? [^\]]*\] (.*)$")
_LR = re.compile(r"Iteration (\d+), lr = (\S+)")


def nonfinite(token: str) -> bool:
    try:
        return not math.isfinite(float(token))
    except ValueError:
        return False


@dataclass(frozen=True)
class Truth:
    first_nan_iteration: int | None  # first displayed train loss that is nan or inf
    first_nan_iteration_strict: int | None  # ... that is nan
    first_nonfinite_loss_value: str | None
    first_nonfinite_output_iteration: int | None  # first display with a non-finite train output
    first_nonfinite_test_iteration: int | None
    first_nonfinite_lr_iteration: int | None
    displays: int
    abort_message: str | None
    exit_code: int

    @property
    def outcome(self) -> str:
        if self.abort_message is not None and self.first_nan_iteration is None and self.exit_code != 0:
            return "abort"
        if (
            self.first_nan_iteration is not None
            or self.first_nonfinite_test_iteration is not None
            or self.first_nonfinite_output_iteration is not None
        ):
            return "nonfinite"
        if self.exit_code != 0:
            return "crash"
        return "healthy"


def read(log: str, exit_code: int) -> Truth:
    first = strict = out_first = test_first = lr_first = None
    value = abort = None
    displays = 0
    last_display = None
    testing_at = None
    for line in log.splitlines():
        m = _DISPLAY.search(line)
        if m:
            displays += 1
            it, tok = int(m.group(1)), m.group(2)
            last_display = it
            testing_at = None
            if nonfinite(tok):
                if first is None:
                    first, value = it, tok
                if strict is None and "nan" in tok.lower():
                    strict = it
            continue
        m = _TRAIN_OUT.search(line)
        if m:
            if out_first is None and last_display is not None and nonfinite(m.group(2)):
                out_first = last_display
            continue
        m = _TESTING.search(line)
        if m:
            testing_at = int(m.group(1))
            continue
        m = _TEST_OUT.search(line)
        if m:
            if test_first is None and testing_at is not None and nonfinite(m.group(2)):
                test_first = testing_at
            continue
        m = _LR.search(line)
        if m:
            if lr_first is None and nonfinite(m.group(2)):
                lr_first = int(m.group(1))
            continue
        m = _FATAL.match(line)
        if m and abort is None:
            abort = m.group(1).strip()
    return Truth(first, strict, value, out_first, test_first, lr_first, displays, abort, exit_code)
