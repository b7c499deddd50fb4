"""Wall time and peak memory of ``nandoctor log`` (and ``log --json``) on every log shape, at three
sizes, with the fitted growth exponent, beside the floors on the same file: ``wc -l`` and a plain
Python loop over the lines that runs the display regex (a bare scan, no trace).

Each command is timed as a whole process (start-up included) by ``/usr/bin/time``-style
``resource`` accounting of the child. Run:
``PYTHONPATH=src python bench/log_shapes_bench.py [--sizes 8,16,32] [--shapes long,bare]``.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from log_shapes import SHAPES, generate

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "caffe-runs"
SCAN = (
    "import re,sys\n"
    "r=re.compile(rb'Iteration (\\d+).*loss = (\\S+)')\n"
    "n=0\n"
    "for ln in open(sys.argv[1],'rb'):\n"
    "    m=r.search(ln)\n"
    "    n+=m is not None\n"
)


def _measure(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one child process."""
    start = time.perf_counter()
    with subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as proc:
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def _exponent(sizes: list[float], times: list[float]) -> float:
    xs, ys = [math.log(s) for s in sizes], [math.log(max(t, 1e-3)) for t in times]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="8,16,32", help="MB, comma-separated")
    ap.add_argument("--shapes", default=",".join(SHAPES))
    args = ap.parse_args()
    sizes = [float(s) for s in args.sizes.split(",")]
    py = sys.executable
    commands = {
        "wc -l (floor)": lambda p: ["wc", "-l", p],
        "py regex loop (floor)": lambda p: [py, "-c", SCAN, p],
        "nandoctor log": lambda p: [py, "-m", "nandoctor", "log", p],
        "nandoctor log --json": lambda p: [py, "-m", "nandoctor", "log", "--json", p],
    }
    print(f"{'shape':12} {'command':24} " + " ".join(f"{f'{s:g} MB: s / MB/s / RSS MB':>28}" for s in sizes)
          + "  exponent  RSS/log")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for shape in args.shapes.split(","):
            paths = []
            for mb in sizes:
                path = Path(tmp) / f"{shape}_{mb:g}.log"
                generate(shape, mb, path, CORPUS)
                paths.append(path)
            real = [p.stat().st_size / 2**20 for p in paths]
            for name, make in commands.items():
                runs = [_measure(make(str(p))) for p in paths]
                cells = " ".join(
                    f"{t:8.2f} / {mb / t:6.1f} / {rss:6.0f}" for (t, rss), mb in zip(runs, real, strict=True)
                )
                print(f"{shape:12} {name:24} {cells}  {_exponent(real, [t for t, _ in runs]):8.2f}"
                      f"  {runs[-1][1] / real[-1]:6.2f}", flush=True)  # fmt: skip
            for p in paths:
                p.unlink()
    print(f"(peak RSS of an idle interpreter: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
