"""Cost of reading a debug_info log (``log.debug_analysis.localize``) beside the cost of parsing it.

A synthetic healthy debug_info log (LAYERS layers, ITERATIONS displayed iterations: the
worst case, since a healthy log is scanned to its end) is parsed once; the floor is that
parse (``parse_log``), the figure is ``localize`` on the parsed trace, both per record.
CPU time is printed too: on a shared machine the wall clock mostly measures the neighbours.

    python bench/debug_analysis_bench.py [--layers 50] [--iterations 2000]
"""

from __future__ import annotations

import argparse
import io
import time

from nandoctor.log.debug_analysis import localize
from nandoctor.log.parser import parse_log

P = "I20261123 10:00:00.000000  4242 "


def healthy_log(layers: int, iterations: int) -> bytes:
    lines = []
    for it in range(iterations):
        wobble = 0.1 + (it % 7) * 0.01
        for k in range(layers):
            lines.append(f"{P}net.cpp:593]     [Forward] Layer l{k}, top blob l{k} data: {wobble:g}")
            lines.append(f"{P}net.cpp:605]     [Forward] Layer l{k}, param blob 0 data: 0.2")
        for k in reversed(range(layers)):
            lines.append(f"{P}net.cpp:621]     [Backward] Layer l{k}, bottom blob l{k - 1} diff: 0.01")
            lines.append(f"{P}net.cpp:632]     [Backward] Layer l{k}, param blob 0 diff: 0.02")
        lines.append(f"{P}solver.cpp:239] Iteration {it} (1 iter/s, 1s/1 iters), loss = 2.3")
    return ("\n".join(lines) + "\n").encode()


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=50)
    ap.add_argument("--iterations", type=int, default=2000)
    args = ap.parse_args()
    data = healthy_log(args.layers, args.iterations)
    trace, pw, pc = timed(lambda: parse_log(io.BytesIO(data)))
    n = sum(len(s.debug) for s in trace.segments)
    loc, lw, lc = timed(lambda: localize(trace))
    assert loc is None, "the synthetic log is healthy"
    print(f"{n:,} debug_info records ({len(data) / 1e6:.1f} MB)")
    print(f"floor  parse_log: {pw / n * 1e6:.2f} us/record wall, {pc / n * 1e6:.2f} us/record CPU")
    print(f"figure localize : {lw / n * 1e6:.2f} us/record wall, {lc / n * 1e6:.2f} us/record CPU "
          f"({lc / pc:.2f}x the parse)")  # fmt: skip


if __name__ == "__main__":
    main()
