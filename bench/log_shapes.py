"""Caffe logs of a chosen shape and size, built deterministically from the corpus runs' own lines.

``generate(shape, size_mb, path, corpus)`` writes a log of about ``size_mb`` MB:

* ``long``: one run that never ends (r54: TEST passes, snapshots): its training part
  repeated with the iteration numbers carried on, so the file is one run, not many;
* ``short``: the corpus logs concatenated and repeated (thousands of short runs);
* ``debug``: one long debug_info run (r61's debug log: every layer's data and diff at
  every display);
* ``test``: one long run with a TEST pass of many outputs after every display;
* ``pathological``: one run whose net setup has thousands of layers and whose
  training part has a 1 MB line every 200 lines;
* ``bare``: ``Iteration 10, loss = nan`` lines only (a new run on every line);
* ``glog_runs``: a glog file header and one display per run (a million runs in ~330 MB).

Every shape is a prefix of the same infinite stream, so the sizes of one shape differ
only in length (what a growth exponent needs).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path

SHAPES = ("long", "short", "debug", "test", "pathological", "bare", "glog_runs")
_ITER = re.compile(rb"(Iteration |_iter_)(\d+)")


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _split(lines: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """(head up to the first training line, training part up to 'Optimization Done' / the end)."""
    start = next(i for i, ln in enumerate(lines) if b"] Iteration 0" in ln)
    end = next((i for i, ln in enumerate(lines) if b"Optimization Done" in ln or b"Snapshotting to" in ln), len(lines))
    return lines[:start], lines[start:end]


def _span(body: list[bytes]) -> int:
    its = [int(m.group(2)) for ln in body for m in _ITER.finditer(ln) if m.group(1) == b"Iteration "]
    step = sorted({b - a for a, b in itertools.pairwise(its) if b > a} or {1})[0]
    return max(its) + step


def _shift(body: list[bytes], offset: int) -> list[bytes]:
    if not offset:
        return body
    return [
        _ITER.sub(lambda m: m.group(1) + str(int(m.group(2)) + offset).encode(), ln) if b"ter" in ln else ln
        for ln in body
    ]


def _one_run(head: list[bytes], body: list[bytes]) -> Iterator[bytes]:
    yield b"".join(head)
    span, k = _span(body), 0
    while True:
        yield b"".join(_shift(body, k * span))
        k += 1


def _long(corpus: Path) -> Iterator[bytes]:
    return _one_run(*_split(_lines(corpus / "r54" / "train.log")))


def _debug(corpus: Path) -> Iterator[bytes]:
    return _one_run(*_split(_lines(corpus / "r61" / "train_debug.log")))


def _short(corpus: Path) -> Iterator[bytes]:
    unit = b"".join(p.read_bytes() for p in sorted(corpus.glob("*/train*.log")))
    while True:
        yield unit


def _test(corpus: Path) -> Iterator[bytes]:
    head, body = _split(_lines(corpus / "r54" / "train.log"))
    testing = next(ln for ln in body if b"Testing net" in ln)
    outputs = [ln for ln in body if b"Test net output" in ln][:2]
    prefix = outputs[0].split(b"Test net output")[0]
    more = [prefix + f"Test net output #{k}: acc_top{k} = 0.{k}{k}25\n".encode() for k in range(2, 12)]
    groups: list[list[bytes]] = []
    for ln in body:
        if b"Testing net" in ln or b"Test net output" in ln or b"Test loss" in ln:
            continue
        if b"] Iteration " in ln and b"loss = " in ln:
            groups.append([])
        if groups:
            groups[-1].append(ln)
    block = []
    for group in groups:
        it = _ITER.search(group[0]).group(2)
        block += [_ITER.sub(lambda m, it=it: m.group(1) + it, testing), *outputs, *more, *group]
    return _one_run(head, block)


def _pathological(corpus: Path) -> Iterator[bytes]:
    head, body = _split(_lines(corpus / "r54" / "train.log"))
    setup = [i for i, ln in enumerate(head) if b"Creating Layer" in ln]
    first = setup[0]
    last = next(i for i in range(setup[-1], len(head)) if b"Memory required" in head[i] or b"Network init" in head[i])
    layer = head[first:last]
    names = sorted({m.group(1) for ln in layer for m in re.finditer(rb"Creating Layer (\S+)", ln)})
    many = []
    for k in range(3000):
        for ln in layer:
            if b"Creating Layer" in ln or b"Setting up" in ln or b"Top shape" in ln or b"->" in ln:
                for n in names:
                    ln = ln.replace(n, n + b"_%d" % k)
                many.append(ln)
    prefix = body[0].split(b"solver.cpp")[0]
    long_line = prefix + b"data_layer.cpp:99] " + b"x" * (1 << 20) + b"\n"
    blown = []
    for i, ln in enumerate(body):
        if i % 200 == 100:
            blown.append(long_line)
        blown.append(ln)
    return _one_run(head[:first] + many + head[last:], blown)


def _bare(corpus: Path) -> Iterator[bytes]:
    while True:
        yield b"Iteration 10, loss = nan\n" * 10_000


def _glog_runs(corpus: Path) -> Iterator[bytes]:
    run = (
        b"Log file created at: 2026/12/07 10:00:00\nRunning on machine: host\n"
        b"Log line format: [IWEF]mmdd hh:mm:ss.uuuuuu threadid file:line] msg\n"
        b"I1207 10:00:00.000100  4242 solver.cpp:218] Iteration 0 (0 iter/s, 0s/20 iters), loss = 2.30259\n"
        b"I1207 10:00:00.000200  4242 solver.cpp:237]     Train net output #0: loss = 2.30259 (* 1 = 2.30259 loss)\n"
    )
    while True:
        yield run * 1000


def stream(shape: str, corpus: Path) -> Iterator[bytes]:
    makers = {"long": _long, "short": _short, "debug": _debug, "test": _test, "pathological": _pathological,
              "bare": _bare, "glog_runs": _glog_runs}  # fmt: skip
    return makers[shape](corpus)


def generate(shape: str, size_mb: float, path: Path, corpus: Path) -> int:
    """Write the first ``size_mb`` MB (cut at a line end) of ``shape``'s stream to ``path``; returns bytes."""
    target = int(size_mb * (1 << 20))
    written = 0
    with open(path, "wb") as f:
        for part in stream(shape, corpus):
            if written + len(part) >= target:
                cut = part.rfind(b"\n", 0, target - written) + 1
                f.write(part[:cut])
                written += cut
                break
            f.write(part)
            written += len(part)
    return written
