"""What the PyTorch guard learned about one poisoned step, as plain JSON-able data.

The guard (which needs torch) fills a :class:`TorchFacts`; the NAN6xx rules and the
diagnosis read it without torch, so ``nandoctor diagnose BUNDLE`` works on any machine
that has the bundle's ``findings.json``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "None": (type(None),),
    "Any": (object,),
    "list": (list,),
    "dict": (dict,),
}


def _fits(value: Any, annotation: str) -> bool:
    """Whether a JSON value fits an annotation such as ``list[float | str]`` (list items checked too)."""
    for option in _split(annotation):
        base, _, inner = option.partition("[")
        allowed = _JSON_TYPES.get(base.strip(), (object,))
        if isinstance(value, bool) and base.strip() in ("int", "float"):
            continue  # JSON true is no number
        if not isinstance(value, allowed):
            continue
        if base.strip() == "list" and inner:
            item = inner[: inner.rfind("]")]
            if not all(_fits(x, item) for x in value):
                continue
        return True
    return False


def _split(annotation: str) -> list[str]:
    """The ``|`` options of an annotation, outside brackets."""
    parts, depth, cur = [], 0, ""
    for ch in annotation:
        depth += (ch == "[") - (ch == "]")
        if ch == "|" and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    parts.append(cur.strip())
    return parts


# Trigger kinds: what the always-on check saw first.
TRIGGER_LOSS = "loss"  # the loss was NaN/inf
TRIGGER_GRAD = "grad"  # the loss was finite but a gradient was not
TRIGGER_LR = "lr"  # a param group's lr was NaN, inf or negative
TRIGGER_SCALE = "scale_collapse"  # a GradScaler kept skipping steps / its scale collapsed


@dataclass
class TorchFacts:
    """Facts about the first non-finite step of a PyTorch training loop.

    Numbers that may be non-finite are stored through :func:`num` ("nan", "inf", "-inf"
    as strings) so the JSON stays standard.
    """

    step: int
    trigger: str
    loss: float | str | None = None
    model: str = ""
    lrs: list[float | str] = field(default_factory=list)  # current lr per param group
    lr_history: list[list[float | str]] = field(default_factory=list)  # oldest first, current last
    scheduler: str | None = None
    grad_norms: list[float | str] = field(default_factory=list)  # total norm, previous steps, oldest first
    growth: float | None = None  # latest finite total norm / healthy baseline
    growth_per_step: float | None = None  # geometric mean ratio of the total norm, step to step, lately
    top_params: list[dict[str, Any]] = field(default_factory=list)  # name, growth, norm, baseline
    suggested_max_norm: float | None = None
    nonfinite_grads: list[str] = field(default_factory=list)
    nonfinite_params: list[str] = field(default_factory=list)  # weights already NaN/inf at this step
    optimizer: dict[str, Any] | None = None  # type and per-group hyperparameters (lr, eps, ...)
    batch: list[dict[str, Any]] = field(default_factory=list)  # path, count, batch_indices, dataset_indices
    forward: dict[str, Any] | None = None  # first producer in the replayed forward pass
    backward: dict[str, Any] | None = None  # first producer in the replayed backward pass
    scaler: dict[str, Any] | None = None  # scale, consecutive_skips, scale_history
    replay: dict[str, Any] = field(default_factory=dict)  # ran, reproduced, reason
    notes: list[str] = field(default_factory=list)
    # finite rows far larger than every earlier batch: path, batch_indices, dataset_indices, ratio
    batch_absurd: list[dict[str, Any]] = field(default_factory=list)
    loss_terms: list[dict[str, Any]] = field(default_factory=list)  # weight, op, value, source of w * term
    criterion: dict[str, Any] | None = None  # function, file, line of the loss function the guard was given
    scheduler_info: dict[str, Any] | None = None  # type, last_epoch, settings, lambdas (function/file/line)
    lr_steps: list[int] = field(default_factory=list)  # the step of each lr_history row
    precision: dict[str, Any] | None = None  # autocast dtype, whether the step is finite in float32
    distributed: dict[str, Any] | None = None  # world_size, rank, bad_ranks, ranks' verdicts
    lag: dict[str, Any] | None = None  # sync-free mode: first_bad_step, detected_step, max_late
    micro_batches: int = 1  # gradient accumulation: micro-batches in the failing optimizer step

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TorchFacts:
        """The facts of a findings.json; a field of the wrong JSON type is a TypeError naming it."""
        types = {f.name: f.type for f in fields(cls)}
        kept = {k: v for k, v in data.items() if k in types}
        for name, v in kept.items():
            if not _fits(v, str(types[name])):
                raise TypeError(f"facts field {name!r} should be {types[name]}, not {type(v).__name__}")
        return cls(**kept)

    @property
    def lr_values(self) -> list[float]:
        return [value(x) for x in self.lrs]

    @property
    def batch_is_finite(self) -> bool:
        return not self.batch

    @property
    def bad_batch(self) -> bool:
        """The batch holds NaN/inf or rows absurd against earlier batches: the data explains the step."""
        return bool(self.batch or self.batch_absurd)

    def lr_is_sane(self) -> bool:
        return all(math.isfinite(v) and v >= 0 for v in self.lr_values)

    def lr_growth(self) -> float | None:
        """Largest ratio of a group's current lr to its smallest positive lr in the history."""
        best: float | None = None
        for group, now in enumerate(self.lr_values):
            past = [value(row[group]) for row in self.lr_history[:-1] if group < len(row)]
            past = [p for p in past if math.isfinite(p) and p > 0]
            if not past or not math.isfinite(now) or now <= 0:
                continue
            ratio = now / min(past)
            best = ratio if best is None else max(best, ratio)
        return best


def where(source: dict[str, Any] | None) -> str:
    """A user function as ``hand_nll (train.py:12)`` (source: function, file, line)."""
    if not source:
        return ""
    return f"{source['function']} ({Path(str(source['file'])).name}:{source['line']})"


def num(x: float | None) -> float | str | None:
    """A float for JSON: non-finite values become the strings "nan", "inf", "-inf"."""
    if x is None:
        return None
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def value(x: float | str | None) -> float:
    """Inverse of :func:`num` (None reads as NaN)."""
    if x is None:
        return math.nan
    return float(x)
