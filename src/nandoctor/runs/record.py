"""One training run as the frameworks log it: a step-ordered list of scalars.

Every reader (Hugging Face Trainer state, Lightning CSV, TensorBoard events, pasted
console lines) fills the same :class:`RunLog`, so the timeline and the NAN7xx rules never
need to know which library wrote the run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nandoctor.core.types import Location

TRAIN_FIELDS = ("loss", "lr", "grad_norm", "loss_scale", "epoch")


@dataclass
class Point:
    """The training scalars logged at one optimizer step (any of them may be missing)."""

    step: int
    loss: float | None = None
    lr: float | None = None
    grad_norm: float | None = None
    loss_scale: float | None = None
    epoch: float | None = None
    where: Location | None = None


@dataclass
class EvalPoint:
    """The metrics of one evaluation pass (``eval_loss``, ``val_loss``, ``eval_rmse``, ...)."""

    step: int
    metrics: dict[str, float] = field(default_factory=dict)
    where: Location | None = None

    def nonfinite(self) -> list[str]:
        return [k for k, v in self.metrics.items() if not math.isfinite(v)]


@dataclass
class RunLog:
    kind: str  # "transformers" | "lightning" | "tensorboard" | "console"
    path: Path
    points: list[Point] = field(default_factory=list)
    evals: list[EvalPoint] = field(default_factory=list)
    args: dict[str, Any] = field(default_factory=dict)  # training arguments / hyperparameters, plain values
    args_source: str | None = None
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def nan_filter(self) -> bool:
        """Whether the HF Trainer replaced non-finite losses in its log (its default is True)."""
        if self.kind not in ("transformers", "console"):
            return False
        value = self.args.get("logging_nan_inf_filter", True)
        return value is not False and str(value).lower() != "false"

    def configured_lr(self) -> float | None:
        for key in ("learning_rate", "lr", "base_lr"):
            value = self.args.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                return float(value)
        return None


class PointTable:
    """Collects scalars by step; several rows (or files) may log different scalars of one step."""

    def __init__(self) -> None:
        self._points: dict[int, Point] = {}

    def put(self, step: int, name: str, value: float, where: Location | None = None) -> None:
        p = self._points.get(step)
        if p is None:
            p = self._points[step] = Point(step, where=where)
        setattr(p, name, value)
        if p.where is None or (name == "loss" and where is not None):
            p.where = where or p.where

    def points(self) -> list[Point]:
        return [self._points[s] for s in sorted(self._points)]


def to_float(value: Any) -> float | None:
    """A logged number (a float, an int, or the strings "nan", "inf", "-inf", "1e-3"); else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip().lower()
        try:
            return float(text)
        except ValueError:
            return None
    return None
