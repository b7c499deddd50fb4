"""Which kind of framework run a path holds, and reading it."""

from __future__ import annotations

from pathlib import Path

from nandoctor.runs.console import looks_like_console, read_console
from nandoctor.runs.hf import is_hf_run, read_hf_run
from nandoctor.runs.lightning import is_lightning_run, read_lightning_run
from nandoctor.runs.record import RunLog
from nandoctor.runs.tensorboard import event_files, is_tensorboard_run, read_tensorboard_run


def run_kind(path: str | Path) -> str | None:
    """ "transformers", "lightning", "tensorboard" or "console"; None for anything else (a Caffe run)."""
    p = Path(path)
    if p.is_dir():
        if any(p.glob("*.prototxt")) or any(p.glob("*.log")):
            return None  # a Caffe run folder keeps its own reader
        if is_hf_run(p):
            return "transformers"
        if is_lightning_run(p):
            return "lightning"
        if is_tensorboard_run(p):
            return "tensorboard"
        return None
    if p.is_file():
        if p.name.startswith("events.out.tfevents"):
            return "tensorboard"
        if p.name == "trainer_state.json":
            return "transformers"
        if p.name == "metrics.csv":
            return "lightning"
        if p.suffix in (".txt", ".log", ".out", "") and looks_like_console(p):
            return "console"
    return None


def read_run(path: str | Path) -> RunLog:
    """The run's scalars; a folder with both a CSV log and event files is read from the CSV."""
    p = Path(path)
    kind = run_kind(p)
    if kind == "transformers":
        return read_hf_run(p if p.is_dir() else p.parent)
    if kind == "lightning":
        return read_lightning_run(p if p.is_dir() else p.parent)
    if kind == "tensorboard":
        return read_tensorboard_run(p, [p]) if p.is_file() else read_tensorboard_run(p, event_files(p))
    return read_console(p)
