"""Following a log that Caffe is still writing: each new complete line is read once.

``Follower(path).poll()`` reads what was appended since the last call and returns the
new ``Display`` events (a train display's loss, its train outputs, an lr line); it
starts over when the file was truncated or replaced (log rotation: another inode at
the path). Only the appended bytes are read, so following a fast log costs a small
fraction of a core. ``first_bad(displays)`` is the first event whose value is nan/inf.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from nandoctor.log import patterns as P
from nandoctor.log.scan import number

MAX_LINE = 1 << 20  # a longer "line" without a newline is skipped, not held


@dataclass(slots=True)
class Display:
    kind: str  # "loss", "output" (a train output) or "lr"
    iteration: int | None
    name: str
    value: float | None
    text: str
    line: int

    @property
    def bad(self) -> bool:
        return self.value is not None and not math.isfinite(self.value)


class Follower:
    def __init__(self, path: str) -> None:
        self.path = path
        self.offset = 0
        self.line = 0
        self.inode: int | None = None
        self.partial = b""
        self.iteration: int | None = None
        self.restarts = 0  # truncations and rotations seen

    def _reset(self) -> None:
        self.offset = self.line = 0
        self.partial = b""
        self.iteration = None
        self.restarts += 1

    def poll(self) -> list[Display]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return []  # rotated away and not yet recreated
        if self.inode is not None and (st.st_ino != self.inode or st.st_size < self.offset):
            self._reset()
        self.inode = st.st_ino
        if st.st_size <= self.offset:
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(st.st_size - self.offset)
        self.offset += len(data)
        data = self.partial + data
        end = data.rfind(b"\n") + 1
        self.partial = data[end:]
        if len(self.partial) > MAX_LINE:
            self.partial = b""
        return self._lines(data[:end])

    def _lines(self, data: bytes) -> list[Display]:
        out: list[Display] = []
        for raw in data.split(b"\n")[:-1]:
            self.line += 1
            if b"Iteration " in raw:
                self._iteration(raw, out)
            elif b"Train net output #" in raw:
                m = P.OUTPUT_RE.search(raw)
                if m:
                    out.append(Display("output", self.iteration, m.group(2).decode("utf-8", "replace"),
                                       number(m.group(3)), m.group(3).decode("ascii", "replace"), self.line))  # fmt: skip
        return out

    def _iteration(self, raw: bytes, out: list[Display]) -> None:
        m = P.ITERATION_RE.search(raw)
        if not m:
            return
        it, rest = int(m.group(1)[:20]), m.group(2)
        lr = P.LR_RE.search(rest)
        if lr:
            out.append(Display("lr", it, "lr", number(lr.group(1)), lr.group(1).decode("ascii", "replace"), self.line))
            return
        loss = P.LOSS_RE.search(rest)
        if loss:
            self.iteration = it
            out.append(Display("loss", it, "loss", number(loss.group(1)), loss.group(1).decode("ascii", "replace"),
                               self.line))  # fmt: skip


def first_bad(displays: list[Display]) -> Display | None:
    return next((d for d in displays if d.bad), None)
