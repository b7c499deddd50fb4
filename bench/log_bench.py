"""Throughput of ``nandoctor.log.parse_log`` on a >= 1 GB Caffe log, beside a bare read.

The log is built in a temporary directory from the corpus runs
(../shared/corpus/caffe-runs/*/train*.log, concatenated and repeated, so it holds
net dumps, debug_info, NaN runs, test passes and crashes in their real proportions)
and deleted afterwards. The floor is a plain read of the same file in blocks of the
same size, in the same run; a second line times the regex passes alone (``findall``
over each block, no per-match work), the ceiling of any pure-Python regex design. Both wall-clock and CPU-time rates are printed: on a
shared machine the wall clock mostly measures the neighbours. For scale: Caffe's own
tools/extra/parse_log.py manages about 20 MB/s on a healthy log (and cannot read these
logs at all: it is Python 2 only, rejects the year-carrying glog prefix and crashes
on ``-nan``).

    python bench/log_bench.py [--size-mb 1024] [--workers 1,2] [--corpus DIR]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

from nandoctor.log import patterns as P
from nandoctor.log.chunks import BLOCK
from nandoctor.log.parser import parse_log

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


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def bare_read(path: Path) -> None:
    with open(path, "rb") as f:
        while f.read(BLOCK):
            pass


def regex_only(path: Path) -> None:
    """Every scan pass as a bare ``findall`` per block: the ceiling of a pure-Python regex design."""
    pats = [P.RARE_RE, P.RAW_RE, P.ITERATION_RE, P.OUTPUT_RE, P.DEBUG_RE]
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            for pat in pats:
                pat.findall(block)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts to measure")
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="nandoctor-logbench-") as tmp:
        path = Path(tmp) / "big_train.log"
        mb = build(path, args.corpus, args.size_mb) / 1e6
        bare_read(path)  # warm the page cache for every measurement
        _, wall, cpu = timed(lambda: bare_read(path))
        print(f"log: {mb:.0f} MB built from {args.corpus}")
        print(f"floor (bare read):        wall {mb / wall:7.0f} MB/s   cpu {mb / max(cpu, 1e-9):7.0f} MB/s")
        _, wall, cpu = timed(lambda: regex_only(path))
        print(
            f"regex passes only:        wall {mb / wall:7.0f} MB/s   cpu {mb / cpu:7.0f} MB/s  (findall, no processing)"
        )
        for workers in (int(w) for w in args.workers.split(",")):
            trace, wall, cpu = timed(lambda w=workers: parse_log(path, workers=w))
            st = trace.stats
            note = "" if workers == 1 else " (cpu = this process only: state machine + merging)"
            print(f"parse_log workers={workers}:   wall {mb / wall:7.0f} MB/s   cpu {mb / cpu:7.0f} MB/s{note}")
            print(f"    {st['lines']:,} lines, {len(trace.segments):,} runs, "
                  f"{sum(len(s.train) for s in trace.segments):,} displayed iterations, "
                  f"{st['debug_values']:,} debug_info values, {wall:.1f} s")  # fmt: skip
            del trace
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of this process: {rss:.0f} MB (the file is {mb:.0f} MB; the trace keeps every value)")
        print("target: >= 150 MB/s;  Caffe tools/extra/parse_log.py: ~20 MB/s on a healthy log, fails on these")
    return 0


if __name__ == "__main__":
    sys.exit(main())
