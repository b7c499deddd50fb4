"""Vectorised checks on blocks of records, and the accumulator that turns them into issues.

A block is a 2-D array, one row per record. Per row we compute min and max in one pass each;
NaN propagates through both and inf shows up in them, so a row needs a closer (per-element)
look only when its min or max is not finite -- the common, clean case costs two reductions.

Overflow threshold: ``sqrt(FLT_MAX) ~ 1.84e19`` as the net sees the value (after
transform_param). The first layer computes sums of ``w * x``; its weight gradient is
``x * delta``, so one SGD step moves ``w`` in proportion to ``x`` and the next forward pass
computes a term in ``x**2``. Above sqrt(FLT_MAX) that product is beyond float32 range
(3.4e38): inf, then inf - inf = NaN in the softmax or the next update. Squaring layers
(EuclideanLoss, BatchNorm variance, LRN) hit the same limit on the forward pass itself.
Doubles above FLT_MAX are converted to inf when Caffe loads them (HDF5), which counts as
non-finite.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nandoctor.data.report import MAX_POSITIONS, Issue, SourceReport, record_name
from nandoctor.data.schedule import ReadSchedule

FLT_MAX = float(np.finfo(np.float32).max)
OVERFLOW = float(np.sqrt(FLT_MAX))  # 1.8446743e19
SHAPE_EXAMPLES = 1000  # records remembered per shape (a clean copy re-checks shapes beyond them)


@dataclass(slots=True)
class Transform:
    """transform_param as it changes magnitudes: out = (x - mean) * scale."""

    scale: float = 1.0
    mean: np.ndarray | None = None  # flattened C*H*W mean file, or per-channel mean_value
    mean_source: str | None = None  # "mean_file" | "mean_value"

    @property
    def identity(self) -> bool:
        return self.scale == 1.0 and self.mean is None

    def bounds(self, mn: np.ndarray, mx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of the transformed values of each row from the row's raw min and max."""
        lo, hi = mn.astype(np.float64), mx.astype(np.float64)
        if self.mean is not None and self.mean.size:
            m = self.mean[np.isfinite(self.mean)]
            if m.size:
                lo, hi = lo - float(m.max()), hi - float(m.min())
        a, b = lo * self.scale, hi * self.scale
        return np.minimum(a, b), np.maximum(a, b)


@dataclass(slots=True)
class LabelRule:
    """What a label must be, learned from the loss layer that consumes it."""

    num_classes: int | None = None
    ignore_label: int | None = None
    integral: bool = True  # class labels (SoftmaxWithLoss, Accuracy, ...) must be integers
    consumer: str | None = None  # the loss layer, for messages
    high: float | None = None  # the largest value allowed (1 for a probability target)


@dataclass
class Accumulator:
    """Collects per-record observations of one source (or shard) into a SourceReport."""

    report: SourceReport
    schedule: ReadSchedule
    transform: Transform = field(default_factory=Transform)
    labels: LabelRule | None = None

    def __post_init__(self) -> None:
        self._shapes: Counter[str] = Counter()

    # -- issues -------------------------------------------------------------------------
    def issue(self, kind: str, message: str, index: int | None = None, record: Any = None, **kw) -> None:
        """``record``: a DB key, or (record text, file, row) for records living in files."""
        read = self.schedule.first_read(index) if index is not None else None
        if isinstance(record, tuple):
            record, kw["file"], kw["row"] = record
        self.report.issues.append(Issue(kind, message, record=record, index=index, read=read, **kw))

    def shape(self, shape: tuple[int, ...], indices: np.ndarray, refs: list[Any]) -> None:
        """Count a shape for many records; remember the first few records having it."""
        key = ",".join(map(str, shape))
        self._shapes[key] += len(indices)
        ex = self.report.shape_examples.setdefault(key, [])
        room = SHAPE_EXAMPLES - len(ex)
        if room > 0:
            take = indices[:room].tolist()
            ex.extend([i, record_name(refs[j])] for j, i in enumerate(take))

    def finish(self) -> None:
        self.report.shapes = dict(self._shapes)

    # -- values -------------------------------------------------------------------------
    def values(
        self,
        x: np.ndarray,
        indices: np.ndarray,
        refs: list[Any],
        *,
        top: str | None = None,
        extra: dict[str, Any] | None = None,
        transform: Transform | None = None,
        constant: bool = True,
        track: bool = True,
    ) -> None:
        """Check a block of records (rows of ``x``); ``refs[j]`` names row j in messages."""
        t = transform if transform is not None else self.transform
        n = x.shape[0]
        if n == 0:
            return
        if x.ndim == 1:
            x = x.reshape(n, 1)
        if x.shape[1] == 0:
            for j in range(n):
                self.issue("empty", "record holds no values", int(indices[j]), refs[j], top=top)
            return
        is_float = x.dtype.kind == "f"
        if x.dtype == np.uint8 and self._uint8_block(x, indices, refs, t, top, constant, track):
            return
        mn, mx = x.min(axis=1), x.max(axis=1)
        bad = np.zeros(n, bool)
        if is_float:
            bad = ~(np.isfinite(mn) & np.isfinite(mx))
            for j in np.flatnonzero(bad).tolist():
                row = x[j]
                finite = np.isfinite(row)
                nan, posinf = int(np.isnan(row).sum()), int(np.isposinf(row).sum())
                neginf = int(row.size - finite.sum()) - nan - posinf
                first = np.flatnonzero(~finite)[:MAX_POSITIONS].tolist()
                parts = [f"{c} {name}" for c, name in ((nan, "NaN"), (posinf, "+inf"), (neginf, "-inf")) if c]
                self.issue(
                    "nonfinite",
                    f"{', '.join(parts)} among {row.size} values (first at {first})",
                    int(indices[j]),
                    refs[j],
                    top=top,
                    detail={
                        "nan": nan,
                        "posinf": posinf,
                        "neginf": neginf,
                        "first_positions": first,
                        "values": int(row.size),
                        **(extra or {}),
                    },
                )
                if finite.any():
                    mn[j], mx[j] = row[finite].min(), row[finite].max()
        lo, hi = t.bounds(mn, mx)
        big = ~bad & (np.maximum(np.abs(lo), np.abs(hi)) > OVERFLOW)
        for j in np.flatnonzero(big).tolist():
            row = x[j].astype(np.float64)
            if t.mean is not None and t.mean.size == row.size:
                row = row - t.mean
            row = row * t.scale
            over = np.abs(row) > OVERFLOW
            first = np.flatnonzero(over)[:MAX_POSITIONS].tolist()
            peak = float(np.abs(row).max())
            self.issue(
                "overflow",
                f"{int(over.sum())} of {row.size} values reach {peak:.3g} as the net sees them "
                f"(limit {OVERFLOW:.3g} = sqrt(FLT_MAX)); first at {first}",
                int(indices[j]),
                refs[j],
                top=top,
                detail={
                    "count": int(over.sum()),
                    "max_abs": peak,
                    "first_positions": first,
                    "threshold": OVERFLOW,
                    **(extra or {}),
                },
            )
        const = ~bad & (mn == mx) & (x.shape[1] > 1) & constant
        for j in np.flatnonzero(const).tolist():
            self.issue(
                "constant",
                f"all {x.shape[1]} values equal {float(mn[j]):g}",
                int(indices[j]),
                refs[j],
                top=top,
                detail={"value": float(mn[j])},
            )
        ok = ~bad
        if track and ok.any():
            self._extremes(float(mn[ok].min()), float(mx[ok].max()), float(lo[ok].min()), float(hi[ok].max()))

    def _uint8_block(self, x, indices, refs, t: Transform, top, constant: bool, track: bool) -> bool:
        """Pixels cannot be NaN: judge the block by its global extremes, find constant rows by 8-byte words.

        Returns False when the block needs the per-row path (its transformed extremes could overflow).
        """
        lo_raw, hi_raw = np.array([x.min()]), np.array([x.max()])
        lo, hi = t.bounds(lo_raw, hi_raw)
        if max(abs(lo[0]), abs(hi[0])) > OVERFLOW:
            return False
        if constant and x.shape[1] > 1 and lo_raw[0] != hi_raw[0]:
            if x.shape[1] % 8 == 0 and x.flags.c_contiguous:
                words = x.view(np.uint64)
                same = (words == words[:, :1]).all(axis=1)
                same &= words[:, 0] == x[:, 0].astype(np.uint64) * np.uint64(0x0101010101010101)
            else:
                same = (x == x[:, :1]).all(axis=1)
            for j in np.flatnonzero(same).tolist():
                self.issue(
                    "constant",
                    f"all {x.shape[1]} values equal {int(x[j, 0])}",
                    int(indices[j]),
                    refs[j],
                    top=top,
                    detail={"value": float(x[j, 0])},
                )
        elif constant and x.shape[1] > 1:  # the whole block holds one value
            for j in range(x.shape[0]):
                self.issue(
                    "constant",
                    f"all {x.shape[1]} values equal {int(x[j, 0])}",
                    int(indices[j]),
                    refs[j],
                    top=top,
                    detail={"value": float(x[j, 0])},
                )
        if track:
            self._extremes(float(lo_raw[0]), float(hi_raw[0]), float(lo[0]), float(hi[0]))
        return True

    def _extremes(self, raw_lo: float, raw_hi: float, lo: float, hi: float) -> None:
        r = self.report
        r.raw_min = raw_lo if r.raw_min is None else min(r.raw_min, raw_lo)
        r.raw_max = raw_hi if r.raw_max is None else max(r.raw_max, raw_hi)
        r.value_min = lo if r.value_min is None else min(r.value_min, lo)
        r.value_max = hi if r.value_max is None else max(r.value_max, hi)

    def label_values(self, labels: np.ndarray, indices: np.ndarray, refs: list[Any], top: str = "label") -> None:
        """Check class labels (one per record, or rows of a label dataset) against the loss layer."""
        rule = self.labels
        if rule is None or labels.size == 0:
            return
        lab = labels.reshape(len(indices), -1).astype(np.float64)
        bad = np.zeros(lab.shape, bool)
        why = []
        finite = np.isfinite(lab)
        if rule.integral:
            frac = finite & (lab != np.round(lab))
            bad |= frac
            why.append((frac, "not an integer"))
        ignored = lab == rule.ignore_label if rule.ignore_label is not None else np.zeros(lab.shape, bool)
        neg = finite & (lab < 0) & ~ignored
        bad |= neg
        why.append((neg, "negative"))
        if rule.num_classes:
            high = finite & (np.trunc(lab) >= rule.num_classes) & ~ignored
            bad |= high
            why.append((high, f">= {rule.num_classes} classes"))
        if rule.high is not None:
            above = finite & (lab > rule.high)
            bad |= above
            why.append((above, f"> {rule.high:g} (a probability target)"))
        rows = np.flatnonzero(bad.any(axis=1))
        for j in rows.tolist():
            reasons = [text for mask, text in why if mask[j].any()]
            vals = lab[j][bad[j]][:MAX_POSITIONS].tolist()
            consumer = f" for {rule.consumer}" if rule.consumer else ""
            self.issue(
                "label",
                f"label {', '.join(f'{v:g}' for v in vals)} is {' and '.join(reasons)}{consumer}",
                int(indices[j]),
                refs[j],
                top=top,
                detail={"values": vals, "num_classes": rule.num_classes, "reasons": reasons},
            )
