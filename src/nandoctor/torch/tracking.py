"""Data set indices for the batches of an existing DataLoader, without changing what it yields.

``guard.track(loader)`` returns a loader that yields the very same batches in the very
same order: it is built from the original's own dataset, batch sampler (with the
sampler and its generator inside), loader generator, collate function and worker
settings, and only the batch sampler is wrapped so that each index list it hands
out is remembered. Iterating draws from the same generators in the same order as
the original would, so seeded shuffles repeat exactly. Each batch the loop receives
is paired with its index list; ``check(loss, batch)`` finds them by the batch's
identity, so gradient accumulation and prefetching workers keep them straight.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from torch.utils.data import DataLoader

from nandoctor.torch.batch import tensors

LOADER_SETTINGS = (
    "num_workers", "collate_fn", "pin_memory", "timeout", "worker_init_fn", "multiprocessing_context",
    "generator", "prefetch_factor", "persistent_workers", "pin_memory_device", "in_order",
)  # fmt: skip


class RecordingBatchSampler:
    """Hands out the wrapped batch sampler's index lists and remembers them in order."""

    def __init__(self, batch_sampler, keep: int = 256):
        self.batch_sampler = batch_sampler
        self.pending: deque[list[int]] = deque(maxlen=keep)

    def __iter__(self):
        self.pending.clear()
        for indices in self.batch_sampler:
            self.pending.append([int(i) for i in indices])
            yield indices

    def __len__(self):
        return len(self.batch_sampler)

    def pop(self) -> list[int] | None:
        return self.pending.popleft() if self.pending else None


class TrackedLoader:
    """Iterates like the DataLoader it wraps; remembers the data set indices of the batches it yields."""

    def __init__(self, loader: DataLoader, keep: int = 64):
        if loader.batch_sampler is None:
            raise ValueError("guard.track needs a DataLoader that batches (batch_size or batch_sampler set)")
        self.original = loader
        self.recorder = RecordingBatchSampler(loader.batch_sampler)
        settings = {k: getattr(loader, k) for k in LOADER_SETTINGS if hasattr(loader, k)}
        if not settings.get("num_workers"):
            for key in (
                "prefetch_factor",
                "persistent_workers",
                "timeout",
                "worker_init_fn",
                "multiprocessing_context",
            ):
                settings.pop(key, None)
        self.loader = DataLoader(loader.dataset, batch_sampler=self.recorder, **settings)
        self.recent: deque[tuple[Any, list[int] | None]] = deque(maxlen=keep)

    def __iter__(self):
        for batch in self.loader:
            self.recent.append((batch, self.recorder.pop()))
            yield batch

    def __len__(self):
        return len(self.loader)

    def __getattr__(self, name: str) -> Any:  # dataset, batch_size, sampler, ... as the original has them
        return getattr(self.original, name)

    def indices_of(self, batch: Any) -> list[int] | None:
        """The data set indices of a batch this loader yielded recently, matched by identity: the
        batch itself or its first tensor (loops unpack ``x, y = batch`` and pass ``(x, y)`` on)."""
        first = _first_tensor(batch)
        for seen, indices in reversed(self.recent):
            if seen is batch or (first is not None and _first_tensor(seen) is first):
                return indices
        return None

    def last(self) -> list[int] | None:
        return self.recent[-1][1] if self.recent else None


def _first_tensor(batch: Any):
    return next((t for _, t in tensors(batch)), None)
