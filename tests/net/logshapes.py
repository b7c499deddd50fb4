"""Read Caffe's ``Setting up NAME`` / ``Top shape:`` lines (a log or a zoo shapes file) for tests."""

from __future__ import annotations

import re


def caffe_top_shapes(text: str, first_net_only: bool = True) -> dict[str, list[tuple[int, ...]]]:
    """``{layer: [shape per top]}`` in the order Caffe printed them (the first net when asked)."""
    out: dict[str, list[tuple[int, ...]]] = {}
    current = None
    for line in text.splitlines():
        m = re.search(r"Setting up (\S+)\s*$", line)
        if m:
            current = m.group(1)
            if current in out and first_net_only:
                break
            out[current] = []
            continue
        m = re.search(r"Top shape: ([\d ]*)\(\d+\)", line)
        if m and current is not None:
            out[current].append(tuple(int(d) for d in m.group(1).split()))
    return out
