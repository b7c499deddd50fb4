"""Throughput of ``nandoctor.log.parse_log`` on a >= 1 GB Caffe log, beside a bare read.

The log is built in a temporary directory from the corpus runs
(../shared/corpus/caffe-runs/*/train*.log, concatenated and repeated, so it holds
net dumps, debug_info, NaN runs, test passes and crashes in their real proportions)
and deleted afterwards. The floor is a plain read of the same file in blocks of the
same size, in the same run, so page-cache effects hit both alike. For scale: Caffe's
own tools/extra/parse_log.py manages about 20 MB/s on a healthy log (and cannot read
these logs at all: it is Python 2 only, rejects the year-carrying glog prefix and
crashes on ``-nan``).

    python bench/log_bench.py [--size-mb 1024] [--corpus DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from nandoctor.log.parser import BLOCK, parse_log

HERE = Path(__file__).resolve().parent
DEFAULT_CORPUS = HERE.parent.parent / "shared" / "corpus" / "caffe-runs"


def build(path: Path, corpus: Path, size_mb: int) -> int:
    logs = sorted(corpus.glob("*/train*.log"))
    if not logs:
        sys.exit(f"no corpus logs under {corpus}")
    unit = b"".join(p.read_bytes() for p in logs)
    target = size_mb << 20
    written = 0
    with open(path, "wb") as f:
        while written < target:
            f.write(unit)
            written += len(unit)
    return written


def bare_read(path: Path) -> float:
    t = time.perf_counter()
    with open(path, "rb") as f:
        while f.read(BLOCK):
            pass
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--memory", action="store_true", help="also trace peak Python memory (slower)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="nandoctor-logbench-") as tmp:
        path = Path(tmp) / "big_train.log"
        size = build(path, args.corpus, args.size_mb)
        mb = size / 1e6
        bare_read(path)  # warm the page cache for both measurements
        floor = bare_read(path)
        t = time.perf_counter()
        trace = parse_log(path)
        parse = time.perf_counter() - t
        print(
            f"log: {mb:.0f} MB, {trace.stats['lines']:,} lines, {len(trace.segments)} runs, "
            f"{sum(len(s.train) for s in trace.segments):,} displayed iterations, "
            f"{trace.stats['debug_values']:,} debug_info values"
        )
        print(f"floor (bare read):  {mb / floor:8.0f} MB/s  ({floor:.2f} s)")
        print(f"parse_log (full):   {mb / parse:8.0f} MB/s  ({parse:.2f} s)   target >= 150 MB/s")
        print("Caffe parse_log.py: ~20 MB/s on a healthy log (fails on these logs)")
        if args.memory:
            del trace
            tracemalloc.start()
            parse_log(path)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            print(f"peak traced memory: {peak / 1e6:.0f} MB for a {mb:.0f} MB log")
        os.remove(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
