"""Scan one key range of an LMDB/LevelDB of Datum records (runs inside a worker process)."""

from __future__ import annotations

import time

import numpy as np

from nandoctor.data import db
from nandoctor.data.checks import Accumulator
from nandoctor.data.datum import CorruptRecord, Datum, DecodedBatch, decode_batch
from nandoctor.data.images import decode_image
from nandoctor.data.report import SourceReport
from nandoctor.data.spec import SourceSpec

CHUNK = 8192  # records per block: large enough to amortise numpy calls, small enough for flat memory


class _Keys:
    """Lazy key text: only keys of records that get mentioned are decoded."""

    __slots__ = ("keys", "rows")

    def __init__(self, keys: list[bytes], rows):
        self.keys, self.rows = keys, rows

    def __getitem__(self, j: int) -> str:
        return key_text(self.keys[self.rows[j]])


def key_text(key: bytes) -> str:
    return key.decode("utf-8", "backslashreplace")


def scan_db_shard(spec: SourceSpec, rng: db.KeyRange, total: int, ticker, shard: str | None = None) -> SourceReport:
    report = SourceReport(
        kind=spec.kind,
        path=spec.path,
        layer=spec.layer,
        phase=spec.phase,
        tops=list(spec.tops),
        batch_size=spec.schedule.batch_size,
        total=total,
        shard=shard,
        schedule=spec.schedule.to_dict(),
    )
    acc = Accumulator(report, spec.schedule, spec.transform, spec.labels)
    start = time.perf_counter()
    if spec.kind == "lmdb":
        blocks = db.iter_lmdb(spec.path, rng, CHUNK)
    else:
        blocks = db.iter_leveldb(spec.path, rng, CHUNK, allow_locked=spec.snapshot)
    index = rng.start_index
    kinds: set[str] = set()
    try:
        for keys, values in blocks:
            lengths = np.fromiter(map(len, values), np.int64, len(values))
            report.bytes += int(lengths.sum())
            batches, leftovers = decode_batch(values, lengths)
            for b in batches:
                kinds.add(_scan_batch(acc, spec, b, keys, index))
            for row, datum in leftovers:
                kinds.add(_scan_one(acc, spec, datum, key_text(keys[row]), index + row))
            index += len(values)
            report.records += len(values)
            if ticker.add(len(values)):
                report.complete = False
                break
    except _db_errors() as exc:
        text = getattr(exc, "message", None) or f"database read failed: {exc}"
        acc.issue(
            "unreadable_source",
            f"{text} (reading stopped after {index - rng.start_index} records of {rng.count} in this range)",
            index,
        )
        report.complete = False
    finally:
        close = getattr(blocks, "close", None)
        if close:
            close()
    acc.finish()
    kinds.discard("")
    report.value_kind = "/".join(sorted(kinds)) or None
    report.seconds = time.perf_counter() - start
    return report


def _db_errors() -> tuple[type[BaseException], ...]:
    import lmdb
    import plyvel

    return (db.SourceError, lmdb.Error, plyvel.Error)


def _scan_batch(acc: Accumulator, spec: SourceSpec, b: DecodedBatch, keys: list[bytes], base: int) -> str:
    idx = base + b.rows
    refs = _Keys(keys, b.rows)
    if b.encoded_bytes is not None:
        for j, data in enumerate(b.encoded_bytes):
            _scan_encoded(acc, spec, data, int(b.label[j]), refs[j], int(idx[j]))
        return "encoded"
    x = b.payload
    expect = b.channels * b.height * b.width
    fits = expect == x.shape[1]
    if x.shape[1] == 0:
        for j in range(len(idx)):
            acc.issue("empty", "Datum has neither data nor float_data", int(idx[j]), refs[j])
        return ""
    for j in np.flatnonzero(~fits).tolist():
        acc.issue(
            "corrupt",
            f"Datum holds {x.shape[1]} values but channels*height*width = "
            f"{b.channels[j]}*{b.height[j]}*{b.width[j]} = {expect[j]}",
            int(idx[j]),
            refs[j],
        )
    if not fits.all():
        keep = np.flatnonzero(fits)
        x, idx, refs = x[keep], idx[keep], _Keys(keys, b.rows[keep])
        chw = (b.channels[keep], b.height[keep], b.width[keep])
        labels = b.label[keep]
    else:
        chw = (b.channels, b.height, b.width)
        labels = b.label
    if not len(idx):
        return ""
    _count_shapes(acc, chw, idx, refs)
    acc.values(x, idx, refs, top=spec.tops[0] if spec.tops else None)
    acc.label_values(labels, idx, refs, top=spec.tops[1] if len(spec.tops) > 1 else "label")
    return "float" if b.is_float else "uint8"


def _count_shapes(acc: Accumulator, chw, idx: np.ndarray, refs) -> None:
    c, h, w = chw
    if (c == c[0]).all() and (h == h[0]).all() and (w == w[0]).all():
        acc.shape((int(c[0]), int(h[0]), int(w[0])), idx, _Lazy(refs))
        return
    stacked = np.stack([c, h, w], axis=1)
    uniq, inverse = np.unique(stacked, axis=0, return_inverse=True)
    for u, shape in enumerate(uniq.tolist()):
        sel = np.flatnonzero(inverse.ravel() == u)
        acc.shape(tuple(shape), idx[sel], _Lazy(refs, sel))


class _Lazy:
    """refs restricted to selected rows, still decoded lazily."""

    __slots__ = ("refs", "sel")

    def __init__(self, refs, sel=None):
        self.refs, self.sel = refs, sel

    def __getitem__(self, j: int):
        return self.refs[int(self.sel[j]) if self.sel is not None else j]


def _scan_one(acc: Accumulator, spec: SourceSpec, datum: Datum | CorruptRecord, key: str, index: int) -> str:
    if isinstance(datum, CorruptRecord):
        acc.issue("corrupt", f"undecodable Datum: {datum}", index, key)
        return ""
    if datum.encoded:
        _scan_encoded(acc, spec, datum.data, datum.label, key, index)
        return "encoded"
    if datum.data:
        x, kind = np.frombuffer(datum.data, np.uint8), "uint8"
    elif datum.float_data.size:
        x, kind = datum.float_data, "float"
    else:
        acc.issue("empty", "Datum has neither data nor float_data", index, key)
        return ""
    idx = np.array([index])
    if x.size != datum.channels * datum.height * datum.width:
        acc.issue(
            "corrupt",
            f"Datum holds {x.size} values but channels*height*width = {datum.channels}*{datum.height}*{datum.width}",
            index,
            key,
        )
        return kind
    acc.shape(datum.shape, idx, [key])
    acc.values(x.reshape(1, -1), idx, [key], top=spec.tops[0] if spec.tops else None)
    acc.label_values(np.array([datum.label]), idx, [key])
    return kind


def _scan_encoded(acc: Accumulator, spec: SourceSpec, data: bytes, label: int, key: str, index: int) -> None:
    color = True if spec.force_color else False if spec.force_gray else None
    dec = decode_image(data, color)
    idx = np.array([index])
    if dec.pixels is None:
        acc.issue("corrupt", f"encoded Datum: {dec.error}", index, key)
        return
    acc.shape(dec.pixels.shape, idx, [key])
    acc.values(dec.pixels.reshape(1, -1), idx, [key], top=spec.tops[0] if spec.tops else None)
    acc.label_values(np.array([label]), idx, [key])
