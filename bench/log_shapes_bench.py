"""Wall time and peak memory of every command a user runs on a log (``log``, ``log --csv``,
``log --json``, ``log --plot``, ``diagnose --log``, ``diagnose --html``) on every log shape, at three
sizes, with the fitted growth exponent of the time, beside the floors on the same file: ``wc -l``
and a bare regex scan (a plain Python loop over the lines running the display regex, no trace).

Each command is one whole process (start-up included); its peak RSS is ``ru_maxrss`` from
``wait4`` on that child (the largest of it and its forked workers), the same accounting for
the floors, so "RSS/log" and "x scan" compare like with like. Also printed: the RSS of a bare
``python3 -c pass`` child and the start-up of ``nandoctor --version`` beside
``python3 -c "import numpy"``. Run:
``PYTHONPATH=src python bench/log_shapes_bench.py [--sizes 8,16,32] [--shapes long,bare]
[--commands log,csv] [--tmp DIR]`` (logs are generated in DIR, by default the system's temp folder).
"""

from __future__ import annotations

import argparse
import math
import os
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


def _nd(*args: str):
    def make(py: str):
        return lambda p, out: [py, "-m", "nandoctor", *[a.format(log=p, out=out) for a in args]]

    return make


# key -> (label, command maker); {out} is a scratch path in the bench's temp folder
COMMANDS = {
    "log": ("log", _nd("log", "{log}")),
    "csv": ("log --csv", _nd("log", "{log}", "--csv", "{out}")),
    "json": ("log --json", _nd("log", "--json", "{log}")),
    "plot": ("log --plot", _nd("log", "{log}", "--plot", "{out}.png")),
    "diagnose": ("diagnose --log", _nd("diagnose", "--log", "{log}")),
    "html": ("diagnose --html", _nd("diagnose", "--log", "{log}", "--html", "{out}.html")),
}


TIME = "/usr/bin/time"


def _measure(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one child process.

    A child forked from this process starts with this process's pages counted in its
    ``ru_maxrss`` (the high-water mark survives the exec), so a small floor read as the
    bench's own size; started through ``/usr/bin/time`` (itself tiny) the figure is the
    command's own.
    """
    if os.path.exists(TIME):
        start = time.perf_counter()
        proc = subprocess.run([TIME, "-f", "%M", *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        wall = time.perf_counter() - start
        return wall, int(proc.stderr.decode().strip().splitlines()[-1]) / 1024
    start = time.perf_counter()
    with subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as proc:
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def _exponent(sizes: list[float], times: list[float]) -> float:
    xs, ys = [math.log(s) for s in sizes], [math.log(max(t, 1e-3)) for t in times]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def _startup(py: str) -> None:
    def best(cmd: list[str]) -> float:
        return min(_measure(cmd)[0] for _ in range(5))

    version, numpy = best([py, "-m", "nandoctor", "--version"]), best([py, "-c", "import numpy"])
    bare = _measure([py, "-c", "pass"])[1]
    print(f"start-up: nandoctor --version {version:.3f} s, python3 -c 'import numpy' {numpy:.3f} s "
          f"({version / numpy:.2f}x; target <= 3x); RSS of a bare python3 -c pass child: {bare:.0f} MB")  # fmt: skip
    print(f"machine load (1, 5, 15 min): {os.getloadavg()}, {os.cpu_count()} CPUs")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="8,16,32", help="MB, comma-separated")
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--commands", default="", help="keys of the commands to run (default all): " + ",".join(COMMANDS))
    ap.add_argument("--tmp", default=None, help="folder for the generated logs")
    args = ap.parse_args()
    sizes = [float(s) for s in args.sizes.split(",")]
    py = sys.executable
    _startup(py)
    wanted = [c for c in args.commands.split(",") if c] or list(COMMANDS)
    floors = {
        "wc -l (floor)": lambda p, out: ["wc", "-l", p],
        "regex scan (floor)": lambda p, out: [py, "-c", SCAN, p],
    }
    commands = {**floors, **{f"nandoctor {COMMANDS[k][0]}": COMMANDS[k][1](py) for k in wanted}}
    print(f"{'shape':12} {'command':26} " + " ".join(f"{f'{s:g} MB: s / MB/s / RSS MB':>28}" for s in sizes)
          + "  exponent  RSS/log  x scan")  # fmt: skip
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        for shape in args.shapes.split(","):
            paths = []
            for mb in sizes:
                path = Path(tmp) / f"{shape}_{mb:g}.log"
                generate(shape, mb, path, CORPUS)
                paths.append(path)
            real = [p.stat().st_size / 2**20 for p in paths]
            scan = None
            for name, make in commands.items():
                runs = [_measure(make(str(p), Path(tmp) / "out")) for p in paths]
                if name.startswith("regex scan"):
                    scan = runs[-1][0]
                cells = " ".join(
                    f"{t:8.2f} / {mb / t:6.1f} / {rss:6.0f}" for (t, rss), mb in zip(runs, real, strict=True)
                )
                print(f"{shape:12} {name:26} {cells}  {_exponent(real, [t for t, _ in runs]):8.2f}"
                      f"  {runs[-1][1] / real[-1]:6.2f}  {runs[-1][0] / scan if scan else 0:6.2f}", flush=True)  # fmt: skip
            for p in paths:
                p.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
