"""Walking a batch: its tensors, which rows hold NaN/inf, and which data set items they were."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

import torch

INDEX_KEYS = ("index", "indices", "idx", "dataset_index")


def tensors(obj: Any, path: str = "batch") -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor in a nested batch (tensor, list, tuple, namedtuple, dict), with its path."""
    if isinstance(obj, torch.Tensor):
        yield path, obj
    elif isinstance(obj, dict):
        for key, item in obj.items():
            yield from tensors(item, f"{path}[{key!r}]")
    elif isinstance(obj, list | tuple):
        for i, item in enumerate(obj):
            yield from tensors(item, f"{path}[{i}]")


def is_finite(t: torch.Tensor) -> bool:
    if not (t.is_floating_point() or t.is_complex()):
        return True
    return bool(torch.isfinite(t).all())


def _index_like(item: Any, rows: int | None) -> bool:
    """An integer vector with one entry per batch row: the data set indices of an ``(x, y, idx)`` batch."""
    if isinstance(item, torch.Tensor):
        ok = not (item.is_floating_point() or item.is_complex()) and item.dim() == 1 and item.dtype != torch.bool
        return ok and (rows is None or item.shape[0] == rows)
    return False


def dataset_indices(batch: Any, indices: Any = None) -> list[int] | None:
    """Data set indices of the batch rows: given explicitly, an index field of a dict batch, or the
    last member of an ``(inputs, targets, indices)`` tuple when it is an integer vector of the batch size."""
    if indices is None and isinstance(batch, dict):
        for key in INDEX_KEYS:
            if key in batch:
                indices = batch[key]
                break
    if indices is None and isinstance(batch, list | tuple) and len(batch) >= 3:
        first = batch[0]
        rows = first.shape[0] if isinstance(first, torch.Tensor) and first.dim() else None
        if _index_like(batch[-1], rows):
            indices = batch[-1]
    if indices is None:
        return None
    if isinstance(indices, torch.Tensor):
        return [int(i) for i in indices.reshape(-1).tolist()]
    return [int(i) for i in indices]


def scan(batch: Any, indices: Any = None, limit: int = 20) -> list[dict[str, Any]]:
    """Non-finite tensors in the batch: their path, how many values, and which rows (dim 0)."""
    rows_to_items = dataset_indices(batch, indices)
    found = []
    for path, t in tensors(batch):
        if is_finite(t):
            continue
        bad = ~torch.isfinite(t.detach())
        entry: dict[str, Any] = {
            "path": path,
            "shape": list(t.shape),
            "nan": int(torch.isnan(t.detach()).sum()),
            "inf": int(torch.isinf(t.detach()).sum()),
        }
        if t.dim() >= 1:
            rows = bad.reshape(t.shape[0], -1).any(dim=1).nonzero().reshape(-1).tolist()
            entry["batch_indices"] = rows[:limit]
            entry["rows"] = len(rows)
            if rows_to_items is not None and len(rows_to_items) == t.shape[0]:
                entry["dataset_indices"] = [rows_to_items[r] for r in rows[:limit]]
        found.append(entry)
    return found


def detach_copy(batch: Any) -> Any:
    """A CPU copy of the batch for a bundle (tensors detached; other leaves kept as they are)."""
    if isinstance(batch, torch.Tensor):
        return batch.detach().cpu().clone()
    if isinstance(batch, dict):
        return {k: detach_copy(v) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return tuple(detach_copy(v) for v in batch)
    if isinstance(batch, list | tuple):
        return type(batch)(detach_copy(v) for v in batch)
    return batch


def to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


class IndexRecorder:
    """A batch sampler wrapper that remembers which data set indices each batch holds.

    ``DataLoader(ds, batch_sampler=guard.track(BatchSampler(RandomSampler(ds), 32, False)))``:
    the loader draws index lists from here in order (also with worker processes, which
    return batches in sampling order), so the oldest recorded list belongs to the batch
    the loop is checking. The guard pops one list per ``check``; call it once per batch.
    """

    def __init__(self, batch_sampler, keep: int = 256):
        self.batch_sampler = batch_sampler
        self.pending: deque[list[int]] = deque(maxlen=keep)

    def __iter__(self):
        for indices in self.batch_sampler:
            self.pending.append([int(i) for i in indices])
            yield indices

    def __len__(self):
        return len(self.batch_sampler)

    def pop(self) -> list[int] | None:
        return self.pending.popleft() if self.pending else None
