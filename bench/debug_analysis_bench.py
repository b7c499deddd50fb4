"""Cost of reading a debug_info log (localization, symptoms, report) beside the cost of parsing it.

Two synthetic one-run debug_info logs (LAYERS layers, ITERATIONS displayed iterations):

* healthy: the worst case for ``localize``, which reads a healthy run to its end;
* exploding: healthy, then the loss head's values (and the last gradients) grow 1e30x per
  iteration until they are inf, the loss then nan: the case that takes every path (first jump, loss heads, gradient path, the
  culprit's own jump, the evidence records).

The floor is ``parse_log`` of the same bytes; the figures are ``localize`` and the whole
of what ``nandoctor log`` does after parsing (every log rule, then the text report to
a pipe), per record. CPU time is printed too: on a shared machine the wall clock mostly
measures the neighbours.

    python bench/debug_analysis_bench.py [--layers 50] [--iterations 20000]
"""

from __future__ import annotations

import argparse
import io
import time

from nandoctor.cli.log import log_findings
from nandoctor.log.debug_analysis import localize
from nandoctor.log.parser import parse_log
from nandoctor.report.console import make_console
from nandoctor.report.findings_text import render_findings

P = "I20261123 10:00:00.000000  4242 "


def debug_log(layers: int, iterations: int, explode_at: int | None = None) -> bytes:
    """One run; from ``explode_at`` on, the last layer (a loss) and its gradients grow 1e30x per iteration."""
    lines = [f"{P}net.cpp:84] Creating Layer l{layers - 1}", f"{P}net.cpp:100] Setting up l{layers - 1}",
             f"{P}net.cpp:107] Top shape: (1)", f"{P}net.cpp:115]     with loss weight 1"]  # fmt: skip
    for it in range(iterations):
        wobble = 0.1 + (it % 7) * 0.01
        grow = float(f"1e{30 * (it - explode_at + 1)}") if explode_at is not None and it >= explode_at else 1.0
        for k in range(layers):
            v = wobble * (grow if k == layers - 1 else 1.0)
            lines.append(f"{P}net.cpp:593]     [Forward] Layer l{k}, top blob l{k} data: {v:g}")
            lines.append(f"{P}net.cpp:605]     [Forward] Layer l{k}, param blob 0 data: 0.2")
        for k in reversed(range(layers)):
            g = grow if k >= layers - 3 else 1.0
            lines.append(f"{P}net.cpp:621]     [Backward] Layer l{k}, bottom blob l{k - 1} diff: {0.01 * g:g}")
            lines.append(f"{P}net.cpp:632]     [Backward] Layer l{k}, param blob 0 diff: {0.02 * g:g}")
        loss = 2.3 * grow if grow != float("inf") else float("nan")
        lines.append(f"{P}solver.cpp:239] Iteration {it} (1 iter/s, 1s/1 iters), loss = {loss:g}")
        lines.append(f"{P}solver.cpp:258]     Train net output #0: l{layers - 1} = {loss:g} (* 1 = {loss:g} loss)")
    return ("\n".join(lines) + "\n").encode()


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def report(trace) -> int:
    findings = log_findings(trace).findings
    render_findings(make_console(io.StringIO()), findings)
    return len(findings)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=50)
    ap.add_argument("--iterations", type=int, default=20000)
    args = ap.parse_args()
    log_findings(parse_log(io.BytesIO(b"")))  # the rules are imported on first use: not timed
    for name, explode_at in (("healthy", None), ("exploding", args.iterations - 12)):
        data = debug_log(args.layers, args.iterations, explode_at)
        trace, pw, pc = timed(lambda data=data: parse_log(io.BytesIO(data)))
        n = sum(len(s.debug) for s in trace.segments)
        loc, lw, lc = timed(lambda trace=trace: localize(trace))
        assert (loc is None) == (explode_at is None), f"{name}: {loc}"
        for s in trace.segments:
            s.derived.clear()  # the rules compute it all again
        found, rw, rc = timed(lambda trace=trace: report(trace))
        print(f"{name}: {n:,} debug_info records ({len(data) / 1e6:.1f} MB), {found} finding(s)"
              + (f", culprit {loc.layer} ({loc.cause.value})" if loc else ""))  # fmt: skip
        print(f"  floor  parse_log       : {pw / n * 1e6:.2f} us/record wall, {pc / n * 1e6:.2f} us/record CPU")
        print(f"  figure localize        : {lw / n * 1e6:.2f} us/record wall, {lc / n * 1e6:.2f} us/record CPU "
              f"({lc / pc:.2f}x the parse)")  # fmt: skip
        print(f"  figure rules + report  : {rw / n * 1e6:.2f} us/record wall, {rc / n * 1e6:.2f} us/record CPU "
              f"({rc / pc:.2f}x the parse)")  # fmt: skip


if __name__ == "__main__":
    main()
