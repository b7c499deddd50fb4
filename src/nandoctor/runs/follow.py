"""``nandoctor watch`` on a framework run that is still being written.

Lightning's ``CSVLogger`` appends rows to ``metrics.csv`` at each flush (and rewrites the
file when a new metric name appears), TensorBoard appends records to its event file, and
the HF Trainer rewrites ``trainer_state.json`` at each checkpoint. Rather than parse
deltas, the follower re-reads the run whenever one of its files changed size or time,
waits while a CSV's last row is incomplete, and hands back only the steps it had not
reported. The run "went bad" exactly when the timeline finds an onset (the same rules
as ``diagnose``: fp16 step skips and the NaN filter are taken into account).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from rich.markup import escape

from nandoctor.core.types import InputError
from nandoctor.runs.detect import read_run, run_kind
from nandoctor.runs.export import where_text
from nandoctor.runs.record import EvalPoint, Point, RunLog
from nandoctor.runs.timeline import RunTimeline, build_timeline

FOLLOWED_NAMES = ("metrics.csv", "trainer_state.json")


def is_followable(path: str) -> bool:
    """A framework run folder or file, or one not written yet whose name says which it will be."""
    p = Path(path)
    if run_kind(p) is not None:
        return True
    return not p.exists() and (p.name in FOLLOWED_NAMES or p.name.startswith("events.out.tfevents"))


class RunFollower:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.signature: tuple = ()
        self.last_step: int | None = None
        self.last_eval: int | None = None
        self.run: RunLog | None = None

    def _files(self) -> list[Path]:
        if self.path.is_file():
            return [self.path]
        if not self.path.is_dir():
            return []
        return sorted(
            p
            for pattern in ("**/metrics.csv", "**/trainer_state.json", "**/events.out.tfevents*")
            for p in self.path.glob(pattern)
            if p.is_file()
        )

    @staticmethod
    def _complete(files: list[Path]) -> bool:
        """A CSV being written may end in half a row: wait for its newline."""
        for p in files:
            if p.suffix == ".csv" and p.stat().st_size:
                with p.open("rb") as fh:
                    fh.seek(-1, os.SEEK_END)
                    if fh.read(1) != b"\n":
                        return False
        return True

    def poll(self) -> tuple[list[Point], list[EvalPoint]]:
        """The training points and evaluation passes logged since the last poll."""
        files = self._files()
        try:
            signature = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
        except FileNotFoundError:
            return [], []  # a file replaced between the listing and the look
        if not files or signature == self.signature or not self._complete(files):
            return [], []
        try:
            run = read_run(self.path)
        except InputError:
            return [], []  # a trainer_state.json caught while being rewritten: look again next time
        self.signature, self.run = signature, run
        new = [p for p in run.points if self.last_step is None or p.step > self.last_step]
        evals = [e for e in run.evals if self.last_eval is None or e.step > self.last_eval]
        if new:
            self.last_step = new[-1].step
        if evals:
            self.last_eval = evals[-1].step
        return new, evals

    def went_bad(self) -> RunTimeline | None:
        if self.run is None:
            return None
        tl = build_timeline(self.run)
        return tl if tl.onset_step is not None else None


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def watch_run(args, console) -> int:
    """The ``nandoctor watch`` loop for a framework run (``args`` as parsed by cli/watch.py)."""
    follower = RunFollower(args.logfile)
    start = time.monotonic()
    while True:
        points, evals = follower.poll()
        tl = follower.went_bad()
        if tl is not None:
            return _went_bad(console, args, follower.run, tl)
        if points:
            p = points[-1]
            console.print(
                f"step {p.step}: loss {_fmt(p.loss)}, lr {_fmt(p.lr)}"
                + (f", grad_norm {_fmt(p.grad_norm)}" if p.grad_norm is not None else ""),
                highlight=False,
            )
        for e in evals:
            shown = ", ".join(f"{k} {_fmt(v)}" for k, v in e.metrics.items())
            console.print(f"step {e.step} evaluation: {shown}", highlight=False)
        if args.timeout is not None and time.monotonic() - start >= args.timeout:
            return 0
        time.sleep(args.interval)


def _went_bad(console, args, run: RunLog, tl: RunTimeline) -> int:
    from nandoctor.report.findings_text import render_findings
    from nandoctor.runs.diagnosis import diagnose_log

    step = tl.onset_step
    first = next((x for x in (tl.onset, tl.first_bad_eval, tl.first_bad_lr) if x is not None and x.step == step), None)
    reason = tl.onset_reason if tl.onset is not None and tl.onset.step == step else "an evaluation metric is non-finite"
    where = where_text(first.where) if first is not None else ""
    console.print(f"[red]{escape(str(args.logfile))}: {escape(reason)} at step {step} ({escape(where)})[/red]")
    diagnosis = diagnose_log(run)
    if diagnosis.causes:
        top = diagnosis.causes[0]
        console.print(f"likely cause: {top.cause.value} ({escape(top.explanation)})", highlight=False)
    render_findings(console, diagnosis.findings)
    if args.on_nan:
        subprocess.run(shlex.split(args.on_nan), check=False)
    sys.stdout.flush()
    return 1
