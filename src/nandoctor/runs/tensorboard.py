"""TensorBoard event files, read with the ``tensorboard`` package's own loader.

Every ``events.out.tfevents.*`` file below the folder is read (HF writes them under
``runs/<date>/``, Lightning under ``tb_logs/version_N/``); scalars come either as
``simple_value`` (the classic summary) or as a scalar tensor (``add_scalar`` with the
new data class). Tags are matched to fields by name (:mod:`nandoctor.runs.tags`).
Needs the ``tensorboard`` extra: ``pip install nandoctor[tensorboard]``.
"""

from __future__ import annotations

from pathlib import Path

from nandoctor.core.types import InputError, Location
from nandoctor.runs.record import EvalPoint, PointTable, RunLog
from nandoctor.runs.tags import eval_metric, train_field

PATTERN = "events.out.tfevents*"
MAX_DEPTH = 4


def event_files(folder: Path) -> list[Path]:
    found = []
    for depth in range(MAX_DEPTH):
        found.extend(p for p in folder.glob("*/" * depth + PATTERN) if p.is_file())
    return sorted(found)


def is_tensorboard_run(folder: Path) -> bool:
    return bool(event_files(folder))


def _loader():
    try:
        from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    except ImportError:
        raise InputError(
            "reading TensorBoard event files needs the tensorboard package: pip install 'nandoctor[tensorboard]'"
        ) from None
    return EventFileLoader


def _scalar(value) -> float | None:
    if value.HasField("simple_value"):
        return float(value.simple_value)
    if value.HasField("tensor"):
        t = value.tensor
        if t.float_val:
            return float(t.float_val[0])
        if t.double_val:
            return float(t.double_val[0])
        if t.tensor_content and t.dtype in (1, 2):  # DT_FLOAT, DT_DOUBLE, a single value
            import numpy as np

            arr = np.frombuffer(t.tensor_content, dtype=np.float32 if t.dtype == 1 else np.float64)
            return float(arr[0]) if arr.size == 1 else None
    return None


def read_tensorboard_run(folder: str | Path, files: list[Path] | None = None) -> RunLog:
    folder = Path(folder)
    files = files if files is not None else event_files(folder)
    if not files:
        raise InputError("no TensorBoard event file (events.out.tfevents.*) here", str(folder))
    loader = _loader()
    run = RunLog("tensorboard", folder, files=[str(p) for p in files])
    table = PointTable()
    evals: dict[int, EvalPoint] = {}
    for path in files:
        try:
            for event in loader(str(path)).Load():
                if not event.HasField("summary"):
                    continue
                step = int(event.step)
                for value in event.summary.value:
                    x = _scalar(value)
                    if x is None:
                        continue
                    where = Location(str(path), record=f"{value.tag}@{step}")
                    if eval_metric(value.tag):
                        evals.setdefault(step, EvalPoint(step, where=where)).metrics[value.tag] = x
                        continue
                    name = train_field(value.tag)
                    if name is not None:
                        table.put(step, name, x, where)
        except InputError:
            raise
        except Exception as exc:  # the loader raises its own errors for corrupt records
            run.notes.append(f"{path}: stopped reading at a damaged record ({type(exc).__name__})")
    run.points = table.points()
    run.evals = [evals[s] for s in sorted(evals)]
    return run
