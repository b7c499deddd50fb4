"""Throughput and memory of ``nandoctor.log.parse_log`` on a >= 1 GB Caffe log, beside a bare read.

The logs are built in a temporary directory under /tmp from the corpus runs
(../shared/corpus/caffe-runs/*/train*.log, concatenated and repeated, so they hold
net dumps, debug_info, NaN runs, test passes and crashes in their real proportions)
and deleted afterwards. Every figure is the best of ``--repeat`` runs, each parse in
a fresh process (so its peak RSS is its own):

* the floor: a plain read of the same file in blocks of the same size;
* ``parse_log`` with 1 and with N worker processes (default: the parser's own choice),
  wall clock and CPU seconds (this process + its workers);
* peak RSS of the parsing process for the 100 MB and the 1 GB log, the RSS left once
  the trace is built (the trace keeps every value, so it grows with the iterations in
  the log) and the difference: what parsing itself needs on top, which must not grow
  with the file. Worker processes' peak RSS is printed too;
* the whole ``nandoctor log`` command on the 1 GB log (parse, every log rule, the text
  report to a pipe), once.

On a shared machine the wall clock mostly measures the neighbours: the load average is
printed, and the CPU seconds say what the parser itself costs. For scale: Caffe's own
tools/extra/parse_log.py manages about 20 MB/s on a healthy log (and cannot read these
logs at all: it is Python 2 only, rejects the year-carrying glog prefix and crashes on
``-nan``).

    python bench/log_bench.py [--size-mb 1024] [--small-mb 100] [--repeat 3] [--corpus DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nandoctor.log.chunks import BLOCK
from nandoctor.log.parser import _default_workers, parse_log

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


def _rss_now_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure(path: str, workers: int) -> dict:
    """One parse in this (fresh) process: times, RSS and what was found."""
    if workers == 0:  # the floor
        wall, cpu = time.perf_counter(), time.process_time()
        with open(path, "rb") as f:
            while f.read(BLOCK):
                pass
        return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}
    start_rss = _rss_now_mb()
    wall, cpu = time.perf_counter(), time.process_time()
    trace = parse_log(path, workers=workers)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    st = trace.stats
    return {
        "wall": wall,
        "cpu": cpu + children.ru_utime + children.ru_stime,
        "main_cpu": cpu,
        "start_rss": start_rss,
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "trace_rss": _rss_now_mb(),
        "worker_peak_rss": children.ru_maxrss / 1024,
        "lines": st["lines"],
        "runs": len(trace.segments),
        "iterations": sum(len(s.train) for s in trace.segments),
        "debug_values": st["debug_values"],
    }


def best_of(path: Path, workers: int, repeat: int) -> dict:
    runs = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, __file__, "--measure", str(path), str(workers)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        runs.append(json.loads(out.stdout))
    return min(runs, key=lambda r: r["wall"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--small-mb", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--measure", nargs=2, metavar=("PATH", "WORKERS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure[0], int(args.measure[1]))))
        return 0
    with tempfile.TemporaryDirectory(prefix="nandoctor-logbench-", dir="/tmp") as tmp:
        big, small = Path(tmp) / "big_train.log", Path(tmp) / "small_train.log"
        mb = build(big, args.corpus, args.size_mb) / 1e6
        small_mb = build(small, args.corpus, args.small_mb) / 1e6
        auto = _default_workers(str(big))
        print(f"log: {mb:.0f} MB built from {args.corpus}; {os.cpu_count()} CPUs; best of {args.repeat}")
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        floor = best_of(big, 0, args.repeat)
        print(f"floor (bare read):          {mb / floor['wall']:7.0f} MB/s")
        results = {}
        for workers in sorted({1, auto}):
            r = results[workers] = best_of(big, workers, args.repeat)
            print(
                f"parse_log workers={workers}:      {mb / r['wall']:7.0f} MB/s   "
                f"({r['wall']:.1f} s wall; CPU {r['cpu']:.1f} s in all, {r['main_cpu']:.1f} s in the merging process)"
            )
        r = results[auto]
        print(
            f"    {r['lines']:,} lines, {r['runs']:,} runs, {r['iterations']:,} displayed iterations, "
            f"{r['debug_values']:,} debug_info values"
        )
        print("target: >= 150 MB/s;  Caffe tools/extra/parse_log.py: ~20 MB/s on a healthy log, fails on these")
        print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print("memory of the parsing process (RSS, MB):    peak   trace alone   peak - trace   each worker")
        for m, size in ((best_of(small, auto, 1), small_mb), (results[auto], mb)):
            print(
                f"    {size:6.0f} MB log, workers={auto}:      {m['peak_rss']:6.0f}   {m['trace_rss']:11.0f}"
                f"   {m['peak_rss'] - m['trace_rss']:12.0f}   {m['worker_peak_rss']:11.0f}"
            )
        print("    (the trace keeps every value, so it grows with the iterations logged, not with the bytes read)")
        # the whole command: parse, every log rule, the text report to a pipe (one run: ~20 s)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "nandoctor", "log", str(big)], stdout=subprocess.DEVNULL, check=False)
        print(f"nandoctor log on the {mb:.0f} MB log (parse, log rules, report): {time.perf_counter() - start:.1f} s wall")
    return 0


if __name__ == "__main__":
    sys.exit(main())
