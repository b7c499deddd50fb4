"""The points a run's displays, lr lines and outputs are read as (built on demand from ``columns``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(slots=True)
class OutputValue:
    index: int
    name: str
    value: float | None
    text: str
    line: int
    weight: float | None = None
    contribution: float | None = None


@dataclass(slots=True)
class TrainPoint:
    iteration: int
    line: int
    loss: float | None
    loss_text: str
    seconds: float | None = None
    final: bool = False  # the forward-only "Iteration MAX, loss = L" after the loop
    outputs: list[OutputValue] = field(default_factory=list)
    lr: float | None = None
    lr_line: int | None = None

    def output(self, name: str) -> OutputValue | None:
        for o in self.outputs:
            if o.name == name:
                return o
        return None


@dataclass(slots=True)
class LrPoint:
    iteration: int
    value: float | None
    text: str
    line: int
    extras: Mapping[str, float] = field(default_factory=dict)  # NVCaffe's m, wd, gs, lrm
