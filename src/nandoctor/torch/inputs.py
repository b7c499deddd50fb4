"""Finite but absurd inputs: batch rows far larger than anything the earlier batches held.

Every checked step contributes the largest magnitude of each floating tensor of its
batch (one fused ``_foreach_norm(ord=inf)``, read with the step's other figures), kept
per tensor path in a ring buffer. When a step fails, each row of the failing batch is
compared with that history: a row whose largest value exceeds the largest of every
earlier batch by ``ABSURD_FACTOR`` is named, with its data set index, as bad input.
A record holding 1e30 is finite, so only this comparison can tell it from a loss or
an explosion that merely surfaced there.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import torch
from nandoctor.torch.batch import tensors

# A row this many times larger than the largest value of every earlier batch is not data
# the model was trained on; ordinary outliers (a few standard deviations) stay far below it.
ABSURD_FACTOR = 1e3
MIN_HISTORY = 1  # the factor is so large that one earlier batch is a fair yardstick


def float_tensors(batch: Any) -> list[tuple[str, torch.Tensor]]:
    return [(p, t) for p, t in tensors(batch) if t.is_floating_point() and t.numel()]


class BatchHistory:
    """The largest |value| of each batch tensor over the last checked steps."""

    def __init__(self, keep: int = 64):
        self.keep = keep
        self.maxima: dict[str, deque[float]] = {}

    def record(self, paths: list[str], maxima: list[float]) -> None:
        for path, value in zip(paths, maxima, strict=True):
            if math.isfinite(value):
                self.maxima.setdefault(path, deque(maxlen=self.keep)).append(value)

    def absurd_rows(self, batch: Any, rows_to_items: list[int] | None, limit: int = 10) -> list[dict[str, Any]]:
        """Rows of the batch whose magnitude is absurd against the history, per tensor."""
        found = []
        for path, t in float_tensors(batch):
            past = self.maxima.get(path)
            if past is None or len(past) < MIN_HISTORY or t.dim() == 0:
                continue
            ceiling = max(past)
            if ceiling <= 0:
                continue
            d = t.detach()
            per_row = torch.nan_to_num(d.abs().reshape(d.shape[0], -1), nan=0.0, posinf=0.0).amax(dim=1)
            bad = (per_row > ABSURD_FACTOR * ceiling).nonzero().reshape(-1).tolist()
            if not bad:
                continue
            entry: dict[str, Any] = {
                "path": path,
                "shape": list(t.shape),
                "batch_indices": bad[:limit],
                "rows": len(bad),
                "row_absmax": [float(per_row[r]) for r in bad[:limit]],
                "history_absmax": ceiling,
                "history_batches": len(past),
                "ratio": float(per_row[bad[0]]) / ceiling,
            }
            if rows_to_items is not None and len(rows_to_items) == t.shape[0]:
                entry["dataset_indices"] = [rows_to_items[r] for r in bad[:limit]]
            found.append(entry)
        return found
