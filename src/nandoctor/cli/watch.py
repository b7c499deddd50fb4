"""``nandoctor watch train.log``: follow a log Caffe is still writing; stop at the first nan/inf."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time

from rich.markup import escape

from nandoctor.log.follow import Display, Follower, first_bad
from nandoctor.report.console import make_console

NAME = "watch"
HELP = "follow a training log as it grows; the moment a loss, output or lr turns nan/inf, diagnose and exit 1"


def add_arguments(p) -> None:
    p.add_argument("logfile", help="the Caffe log being written (glog file or redirected stderr)")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between looks at the file (default 1)")
    p.add_argument("--on-nan", metavar="CMD", help="command to run when the run goes bad (e.g. kill the job)")
    p.add_argument("--timeout", type=float, default=None, help="give up after this many seconds (exit 0)")


def run(args) -> int:
    console = make_console()
    from nandoctor.runs.follow import is_followable, watch_run

    if is_followable(args.logfile):  # a Lightning metrics.csv, a TensorBoard event file, a HF output folder
        return watch_run(args, console)
    bad = follow(args.logfile, console, args.interval, args.timeout)
    return 0 if bad is None else _went_bad(console, args, bad)


def follow(logfile: str, console, interval: float = 1.0, timeout: float | None = None) -> Display | None:
    """Follow ``logfile`` with a status line per new display until a value turns nan/inf (returned,
    its line printed in red) or ``timeout`` seconds have passed (None)."""
    follower = Follower(logfile)
    start = time.monotonic()
    last = {}
    while True:
        displays = follower.poll()
        for d in displays:
            last[d.kind] = d
        bad = first_bad(displays)
        if bad is not None:
            _say_bad(console, logfile, bad)
            return bad
        if "loss" in last:
            loss, lr = last["loss"], last.get("lr")
            console.print(f"iteration {loss.iteration}: loss {loss.text}" + (f", lr {lr.text}" if lr else ""),
                          highlight=False)  # fmt: skip
            last.clear()
        if timeout is not None and time.monotonic() - start >= timeout:
            return None
        time.sleep(interval)


def _say_bad(console, logfile: str, bad: Display) -> None:
    what = (
        "the displayed loss" if bad.kind == "loss" else ("the lr" if bad.kind == "lr" else f"train output {bad.name}")
    )
    console.print(f"[red]{escape(logfile)}:{bad.line}: {what} is {escape(bad.text)} at iteration {bad.iteration}[/red]")


def on_nan(command: str | None) -> None:
    if command:
        subprocess.run(shlex.split(command), check=False)


def _went_bad(console, args, bad) -> int:
    from nandoctor.cli.log import log_findings
    from nandoctor.log.parser import parse_log
    from nandoctor.report.findings_text import render_findings

    render_findings(console, log_findings(parse_log(args.logfile)).findings)
    on_nan(args.on_nan)
    sys.stdout.flush()
    return 1
