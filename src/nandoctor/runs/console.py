"""Console output of the HF Trainer and Lightning, as users paste it into issues.

The Trainer prints each log as a Python dict, ``{'loss': nan, 'grad_norm': nan,
'learning_rate': 2e-05, 'epoch': 0.1}`` (newer versions quote the numbers:
``{'loss': '0', ...}``); evaluation dicts have ``eval_*`` keys. The dicts carry no step,
so the n-th training dict is step n (times ``logging_steps`` when the paste is read with
one). Lightning's progress bar ends in ``key=value`` pairs after the rate
(``... 14/32 [00:00<00:00, 80.1it/s, v_num=0, train_loss=nan]``); its step is the batch
counter plus the batches of the epochs before.
"""

from __future__ import annotations

import re
from pathlib import Path

from nandoctor.core.types import InputError, Location
from nandoctor.runs.record import EvalPoint, PointTable, RunLog, to_float
from nandoctor.runs.tags import eval_metric, train_field

HF_DICT = re.compile(r"\{'(?:loss|eval_[a-z_0-9]+|grad_norm|learning_rate)'[^{}]*\}")
PAIR = re.compile(r"'([A-Za-z_][\w/.\-]*)':\s*('?)([^,'}]*)\2")
BAR = re.compile(r"Epoch (\d+):.*?\|\s*(\d+)/(\d+|\?)\s*\[[^\]]*?it/s,([^\]]*)\]")
BAR_PAIR = re.compile(r"([A-Za-z_][\w/.\-]*)=([^,\s\]]+)")
HF_KEYS = {"loss": "loss", "grad_norm": "grad_norm", "learning_rate": "lr", "epoch": "epoch"}
MAX_BYTES = 64 << 20


def looks_like_console(path: Path) -> bool:
    """A text file with at least one Trainer log dict or Lightning progress-bar line."""
    try:
        with path.open("rb") as fh:
            head = fh.read(1 << 20).decode("utf-8", "replace")
    except OSError:
        return False
    return bool(HF_DICT.search(head) or BAR.search(head))


def read_console(path: str | Path, logging_steps: int = 1) -> RunLog:
    path = Path(path)
    try:
        data = path.read_bytes()[:MAX_BYTES]
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", str(path)) from None
    text = data.decode("utf-8", "replace").replace("\r", "\n")
    run = RunLog("console", path, files=[str(path)])
    table = PointTable()
    evals: list[EvalPoint] = []
    n_train = 0
    bar_total: dict[int, int] = {}
    for lineno, line in enumerate(text.split("\n"), start=1):
        for m in HF_DICT.finditer(line):
            pairs = {k: to_float(v) for k, _q, v in PAIR.findall(m.group(0))}
            pairs = {k: v for k, v in pairs.items() if v is not None}
            where = Location(str(path), lineno, m.start() + 1)
            metrics = {
                k: v for k, v in pairs.items() if k.startswith("eval_") and not k.endswith(("_runtime", "_per_second"))
            }
            if metrics:
                evals.append(EvalPoint(n_train * logging_steps, metrics, where))
                continue
            if "train_runtime" in pairs or not any(k in pairs for k in ("loss", "grad_norm", "learning_rate")):
                continue
            n_train += 1
            for key, name in HF_KEYS.items():
                if key in pairs:
                    table.put(n_train * logging_steps, name, pairs[key], where)
        for m in BAR.finditer(line):
            epoch, batch = int(m.group(1)), int(m.group(2))
            if m.group(3).isdigit():
                bar_total[epoch] = int(m.group(3))
            before = sum(bar_total.get(e, 0) for e in range(epoch))
            where = Location(str(path), lineno, m.start() + 1)
            for key, value in BAR_PAIR.findall(m.group(4)):
                x = to_float(value)
                if x is None:
                    continue
                name = train_field(key)
                if eval_metric(key):
                    evals.append(EvalPoint(before + batch, {key: x}, where))
                elif name is not None:
                    table.put(before + batch, name, x, where)
    run.points = table.points()
    run.evals = _last_per_step(evals)
    if not run.points and not run.evals:
        raise InputError("no Trainer log dict and no Lightning progress bar found", str(path))
    if n_train and logging_steps == 1:
        run.notes.append("the pasted dicts carry no step: the n-th training dict is shown as step n")
    return run


def _last_per_step(evals: list[EvalPoint]) -> list[EvalPoint]:
    by_step: dict[int, EvalPoint] = {}
    for ev in evals:
        by_step[ev.step] = ev
    return [by_step[s] for s in sorted(by_step)]
