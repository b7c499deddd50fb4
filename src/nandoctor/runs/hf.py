"""Hugging Face Trainer output folders: ``trainer_state.json`` and the saved arguments.

The Trainer writes ``log_history`` into ``trainer_state.json`` at every checkpoint
(``checkpoint-N/``) and, after ``save_state()``, into the output folder itself. Each
checkpoint repeats the history up to its step, and a resumed run continues it, so the
states are merged by step with the latest checkpoint winning. A training entry holds
``loss``, ``grad_norm``, ``learning_rate`` and ``epoch``; an evaluation entry holds
``eval_*`` metrics. The arguments come from an args JSON if one was saved, else from
``training_args.bin`` read without unpickling (:mod:`nandoctor.runs.pickled_args`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from nandoctor.core.types import InputError, Location
from nandoctor.runs.pickled_args import read_pickled_args
from nandoctor.runs.record import EvalPoint, PointTable, RunLog, to_float

STATE = "trainer_state.json"
ARGS_JSON = ("training_args.json", "args.json", "train_args.json")
ARGS_BIN = "training_args.bin"
TRAIN_KEYS = {
    "loss": "loss",
    "grad_norm": "grad_norm",
    "learning_rate": "lr",
    "epoch": "epoch",
    "loss_scale": "loss_scale",
}
SUMMARY_KEYS = ("train_runtime", "train_loss", "total_flos")  # the final summary entry, not a training step
_STEP = re.compile(rb'"step":\s*(\d+)')


def state_files(folder: Path) -> list[Path]:
    """The folder's own trainer_state.json and those of its checkpoint-N folders, oldest first."""
    found = [p for p in folder.glob(f"checkpoint-*/{STATE}") if p.is_file()]
    found.sort(key=lambda p: _checkpoint_step(p.parent))
    own = folder / STATE
    if own.is_file():
        found.append(own)
    return found


def is_hf_run(folder: Path) -> bool:
    return bool(state_files(folder))


def _checkpoint_step(folder: Path) -> int:
    tail = folder.name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else -1


def load_state(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", str(path)) from None
    except UnicodeDecodeError:
        raise InputError("not a UTF-8 JSON file", str(path)) from None
    try:
        state = json.loads(text)  # the Trainer writes NaN and Infinity as bare words, which json reads
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", str(path), exc.lineno, exc.colno) from None
    if not isinstance(state, dict) or not isinstance(state.get("log_history", []), list):
        raise InputError("not a Trainer state (no log_history list)", str(path))
    return state


def _entry_lines(path: Path) -> list[int]:
    """1-based line of each log_history entry's "step" key, in file order (for evidence)."""
    data = path.read_bytes()
    return [data.count(b"\n", 0, m.start()) + 1 for m in _STEP.finditer(data)]


def read_hf_run(folder: str | Path) -> RunLog:
    folder = Path(folder)
    files = state_files(folder)
    if not files:
        raise InputError(f"no {STATE} here or in checkpoint-*/", str(folder))
    run = RunLog("transformers", folder, files=[str(p) for p in files])
    table = PointTable()
    evals: dict[int, EvalPoint] = {}
    last_state: dict[str, Any] = {}
    for path in files:  # later files (later checkpoints, the final state) override earlier ones
        state = load_state(path)
        last_state = state
        lines = _entry_lines(path)
        for i, entry in enumerate(state.get("log_history", [])):
            if not isinstance(entry, dict) or any(k in entry for k in SUMMARY_KEYS):
                continue
            step = entry.get("step")
            if not isinstance(step, int):
                continue
            where = Location(str(path), lines[i] if i < len(lines) else None)
            metrics = {k: to_float(v) for k, v in entry.items() if k.startswith("eval_")}
            metrics = {k: v for k, v in metrics.items() if v is not None and not k.endswith(_EVAL_NOT_METRICS)}
            if metrics:
                evals[step] = EvalPoint(step, metrics, where)
                continue
            for key, name in TRAIN_KEYS.items():
                value = to_float(entry.get(key))
                if value is not None:
                    table.put(step, name, value, where)
    run.points = table.points()
    run.evals = [evals[s] for s in sorted(evals)]
    for key in ("logging_steps", "max_steps", "train_batch_size", "eval_steps", "save_steps"):
        if key in last_state:
            run.args.setdefault(key, last_state[key])
    _read_args(folder, files, run)
    return run


_EVAL_NOT_METRICS = ("_runtime", "_samples_per_second", "_steps_per_second", "_model_preparation_time")


def _read_args(folder: Path, files: list[Path], run: RunLog) -> None:
    """The saved TrainingArguments: an args JSON first (plain data), else training_args.bin."""
    places = [folder, *[p.parent for p in reversed(files)]]
    for place in places:
        for name in ARGS_JSON:
            p = place / name
            if p.is_file():
                try:
                    data = json.loads(p.read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                    run.notes.append(f"{p}: arguments not read ({exc})")
                    continue
                if isinstance(data, dict):
                    run.args.update(data)
                    run.args_source = str(p)
                    return
    for place in places:
        p = place / ARGS_BIN
        if p.is_file():
            try:
                run.args.update(read_pickled_args(p))
                run.args_source = str(p)
            except InputError as exc:
                run.notes.append(f"arguments not read: {exc}")
            return
