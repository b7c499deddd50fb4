"""Tiny models, data sets and a training loop for the guard tests (imported only when torch is present)."""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

import torch
from nandoctor.torch import NaNGuard
from torch import nn


class SmallCNN(nn.Module):
    def __init__(self, classes: int = 3, pool: nn.Module | None = None):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.pool = pool if pool is not None else nn.MaxPool2d(2)
        self.drop = nn.Dropout(0.2)
        self.fc = nn.LazyLinear(classes) if pool is not None else nn.Linear(4 * 3 * 3, classes)

    def forward(self, x):
        x = self.pool(F.relu(self.bn(self.conv(x))))
        return self.fc(self.drop(torch.flatten(x, 1)))


class CaffeAvgPool2d(nn.Module):
    """Average pooling ported from Caffe: ceil-mode output size without PyTorch's last-window clip,
    averaging over the window's elements that lie inside the input."""

    def __init__(self, kernel_size: int, stride: int, padding: int = 0, ceil_mode: bool = True):
        super().__init__()
        self.kernel_size, self.stride, self.padding, self.ceil_mode = kernel_size, stride, padding, ceil_mode

    def _extra(self, size: int) -> int:
        k, s, p = self.kernel_size, self.stride, self.padding
        rounding = math.ceil if self.ceil_mode else math.floor
        out = rounding((size + 2 * p - k) / s) + 1
        return max(0, (out - 1) * s + k - (size + 2 * p))

    def forward(self, x):
        p, k = self.padding, self.kernel_size
        eh, ew = self._extra(x.shape[-2]), self._extra(x.shape[-1])
        pads = (p, p + ew, p, p + eh)
        sums = F.avg_pool2d(F.pad(x, pads), k, self.stride) * (k * k)
        counts = F.avg_pool2d(F.pad(torch.ones_like(x[:1, :1]), pads), k, self.stride) * (k * k)
        return sums / counts


class MaskedMeanPool(nn.Module):
    """Mean over the valid (mask == 1) positions of each sequence."""

    def forward(self, x, mask):
        return (x * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)


class SeqModel(nn.Module):
    def __init__(self, dim: int = 8):
        super().__init__()
        self.embed = nn.Linear(4, dim)
        self.pool = MaskedMeanPool()
        self.head = nn.Linear(dim, 2)

    def forward(self, batch):
        x, mask = batch
        return self.head(self.pool(torch.tanh(self.embed(x)), mask))


def label_frequency_loss(logits, y):
    """A label-frequency normalisation (the loss that divides by a class count that can be 0): each class's summed loss divided by its count."""
    classes = logits.shape[1]
    counts = torch.bincount(y, minlength=classes).float()
    nll = -F.log_softmax(logits, 1).gather(1, y[:, None]).squeeze(1)
    return (torch.zeros(classes).index_add(0, y, nll) / counts).mean()


class Images(Dataset):
    """Random 1x6x6 images with labels; items listed in ``poison`` hold ``value`` at one pixel."""

    def __init__(self, n: int = 64, classes: int = 3, poison: dict[int, float] | None = None, as_dict=False):
        g = torch.Generator().manual_seed(1)
        self.x = torch.randn(n, 1, 6, 6, generator=g)
        self.y = torch.randint(0, classes, (n,), generator=g)
        for index, value in (poison or {}).items():
            self.x[index, 0, 2, 3] = value
        self.as_dict = as_dict

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        if self.as_dict:
            return {"x": self.x[i], "y": self.y[i], "index": i}
        return self.x[i], self.y[i]


def run(model, optimizer, batches, loss_fn, *, scheduler=None, steps=None, guard_kwargs=None, forward=None):
    """A plain training loop with a guard; returns the guard after ``steps`` steps or a stop."""
    torch.manual_seed(0)
    forward = forward or (lambda m, b: loss_fn(m(b[0]), b[1]))
    kwargs = {"closure": forward, "on_nan": "stop", "verbose": False, **(guard_kwargs or {})}
    guard = NaNGuard(model, optimizer, scheduler, **kwargs)
    for i, batch in enumerate(batches):
        if steps is not None and i >= steps:
            break
        optimizer.zero_grad()
        loss = forward(model, batch)
        loss.backward()
        if guard.check(loss, batch):
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if guard.should_stop:
            break
    guard.close()
    return guard


def image_batches(dataset, batch_size: int = 8, epochs: int = 1):
    for _ in range(epochs):
        yield from DataLoader(dataset, batch_size=batch_size, shuffle=False)
