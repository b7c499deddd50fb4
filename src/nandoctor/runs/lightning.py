"""Lightning ``CSVLogger`` folders: ``metrics.csv`` and ``hparams.yaml``.

``CSVLogger`` writes one row per ``log`` call batch with a column per metric name, so
the loss of a step and its lr (``LearningRateMonitor``: ``lr-SGD``, ``lr-Adam``, ...)
often sit in different rows of the same ``step``; rows are merged by step. Training
columns are recognised by name (:mod:`nandoctor.runs.tags`); columns named ``val*`` or
``test*`` are evaluation metrics. A folder with several ``version_N`` runs is read at
its newest version (a resumed fit starts a new version). ``hparams.yaml`` is read with
``yaml.safe_load`` when PyYAML is installed, else as flat ``key: value`` lines.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from nandoctor.core.types import InputError, Location
from nandoctor.runs.record import EvalPoint, PointTable, RunLog, to_float
from nandoctor.runs.tags import eval_metric, train_field

METRICS = "metrics.csv"
HPARAMS = "hparams.yaml"
MAX_ROWS = 2_000_000


def metrics_files(folder: Path) -> list[Path]:
    """metrics.csv of the folder itself or of its (lightning_logs/)version_N folders, newest last."""
    if (folder / METRICS).is_file():
        return [folder / METRICS]
    found = [p for pattern in (f"version_*/{METRICS}", f"*/version_*/{METRICS}") for p in folder.glob(pattern)]
    return sorted(found, key=lambda p: (_version(p.parent), str(p)))


def _version(folder: Path) -> int:
    tail = folder.name.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else -1


def is_lightning_run(folder: Path) -> bool:
    return bool(metrics_files(folder))


def read_lightning_run(folder: str | Path) -> RunLog:
    folder = Path(folder)
    files = metrics_files(folder)
    if not files:
        raise InputError(f"no {METRICS} here or in version_*/", str(folder))
    path = files[-1]
    run = RunLog("lightning", folder, files=[str(path)])
    if len(files) > 1:
        run.notes.append(f"{len(files)} logged versions; read the newest, {path.parent.name}")
    read_metrics_csv(path, run)
    hp = path.parent / HPARAMS
    if hp.is_file():
        run.args.update(read_hparams(hp))
        run.args_source = str(hp)
    return run


def read_metrics_csv(path: Path, run: RunLog) -> None:
    table = PointTable()
    evals: dict[int, EvalPoint] = {}
    try:
        fh = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", str(path)) from None
    with fh:
        try:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or "step" not in reader.fieldnames:
                raise InputError("not a Lightning metrics.csv (no 'step' column)", str(path), 1, 1)
            columns = {c: (train_field(c), eval_metric(c)) for c in reader.fieldnames}
            for n, row in enumerate(reader, start=2):
                if n > MAX_ROWS:
                    run.notes.append(f"{path}: read the first {MAX_ROWS} rows")
                    break
                step = to_float(row.get("step"))
                if step is None or not math.isfinite(step):
                    continue  # no step to put the row at (an inf/nan step is no step)
                where = Location(str(path), n)
                for col, text in row.items():
                    if col is None or col == "step" or text in (None, ""):
                        continue
                    value = to_float(text)
                    if value is None:
                        continue
                    name, is_eval = columns.get(col, (None, False))
                    if is_eval:
                        ev = evals.setdefault(int(step), EvalPoint(int(step), where=where))
                        ev.metrics[col] = value
                    elif name is not None:
                        table.put(int(step), name, value, where)
        except csv.Error as exc:
            raise InputError(f"malformed CSV: {exc}", str(path)) from None
        except UnicodeDecodeError:
            raise InputError("not a UTF-8 text file", str(path)) from None
    run.points = [p for p in table.points() if p.loss is not None or p.lr is not None or p.grad_norm is not None]
    run.evals = [evals[s] for s in sorted(evals)]


def read_hparams(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", str(path)) from None
    try:
        import yaml
    except ImportError:
        return _flat_yaml(text)
    try:
        data = yaml.safe_load(text)  # safe_load builds plain data only, never objects
    except yaml.YAMLError:
        return _flat_yaml(text)
    return data if isinstance(data, dict) else {}


def _flat_yaml(text: str) -> dict[str, Any]:
    """Top-level ``key: scalar`` lines; nested blocks and anything unusual are skipped."""
    out: dict[str, Any] = {}
    for line in text.splitlines():
        if not line or line[0] in " \t#-" or ":" not in line:
            continue
        key, _, value = line.partition(":")
        value = value.strip().strip("'\"")
        number = to_float(value)
        if value.lower() in ("true", "false"):
            out[key.strip()] = value.lower() == "true"
        elif number is not None:
            out[key.strip()] = number
        elif value:
            out[key.strip()] = value
    return out
