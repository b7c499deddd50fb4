"""HDF5Data sources: the list file, every .h5 it names, and a row-range scan of their datasets.

Caffe (HDF5DataLayer) splits the ``source`` file on whitespace, resolves relative paths from
the process's working directory, loads each file whole in list order, and serves rows in
order, crossing into the next file in the middle of a batch. Each top is a dataset of the same
name, class FLOAT or INTEGER, converted to float32 on load (so doubles beyond FLT_MAX arrive as
inf). The net's shapes come from the first file; dim 0 must agree across the tops of a file.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np

from nandoctor.core.safeio import MB, check_input, read_input
from nandoctor.core.types import InputError
from nandoctor.data.checks import Accumulator
from nandoctor.data.report import SourceReport
from nandoctor.data.spec import SourceSpec

BLOCK_BYTES = 32 << 20  # rows read per step: about this many bytes per dataset


# a list of HDF5 file names: a line per file, kilobytes in practice
MAX_LIST_BYTES = 64 * MB


@dataclass(slots=True)
class H5File:
    listed: str  # as written in the list
    path: str  # as opened
    rows: int = 0
    offset: int = 0  # global ordinal of its first row in Caffe's read order
    error: str | None = None  # why Caffe could not load it (rows then 0)
    kind: str | None = None  # issue kind for the error
    dims: dict[str, tuple[int, ...]] = field(default_factory=dict)
    dtypes: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class H5Plan:
    files: list[H5File]
    total: int
    tops: tuple[str, ...]
    list_text_issues: list[tuple[str, str, int | None]] = field(default_factory=list)  # (kind, msg, line)


def read_list(spec: SourceSpec) -> tuple[list[tuple[str, int]], list[tuple[str, str, int | None]]]:
    """Paths listed in an HDF5 source file with their line numbers, and problems with the list."""
    from nandoctor.data.db import SourceError

    try:
        raw = read_input(spec.path, "an HDF5 source list", MAX_LIST_BYTES)
    except InputError as exc:
        if not os.path.exists(spec.path):
            raise SourceError("HDF5 source list not found", spec.path) from None
        raise SourceError(f"HDF5 source list: {exc.message}", spec.path) from None
    text = raw.decode("utf-8", "surrogateescape")
    out, problems = [], []
    for lineno, line in enumerate(text.splitlines(), 1):
        tokens = line.split()
        if len(tokens) > 1:
            problems.append(
                (
                    "list_line",
                    f"line holds {len(tokens)} paths (Caffe splits on whitespace, so a path with a space breaks)",
                    lineno,
                )
            )
        out.extend((t, lineno) for t in tokens)
    if not out:
        problems.append(("unreadable_source", "HDF5 source list names no files", None))
    return out, problems


def plan_hdf5(spec: SourceSpec) -> tuple[H5Plan, list[tuple]]:
    """Open every listed file's header: rows, dtypes, dims; issues for missing/odd files."""
    import h5py

    issues: list[tuple] = []  # (kind, message, listed, line, index)
    if spec.kind == "hdf5file":
        listed = [(spec.path, None)]
        problems = []
    else:
        listed, problems = read_list(spec)
    files: list[H5File] = []
    seen: dict[str, int] = {}
    offset = 0
    tops = tuple(spec.tops)
    reference: dict[str, tuple[int, ...]] | None = None
    for name, line in listed:
        path = name if os.path.isabs(name) or spec.kind == "hdf5file" else os.path.join(spec.cwd, name)
        f = H5File(name, path, offset=offset)
        files.append(f)
        real = os.path.realpath(path)
        if real in seen:
            issues.append(
                (
                    "duplicate",
                    f"{name} is listed again (line {line}; first on line {seen[real]}): "
                    "its rows are read twice per epoch",
                    name,
                    line,
                    None,
                )
            )
        else:
            seen[real] = line or 0
        if not os.path.exists(path):
            f.error, f.kind = f"listed HDF5 file not found: {path}", "missing_file"
        else:
            try:
                check_input(path, "an HDF5 file")  # h5py would block on a FIFO
                with h5py.File(path, "r") as h:
                    if not tops:
                        tops = tuple(k for k, v in h.items() if isinstance(v, h5py.Dataset))
                    _inspect(h, f, tops)
            except InputError as exc:
                f.error, f.kind = f"unreadable HDF5 file {path}: {exc.message}", "corrupt"
            except OSError as exc:
                f.error, f.kind = f"unreadable HDF5 file: {exc}", "corrupt"
        if f.error:
            issues.append((f.kind, f.error, name, line, offset))
            continue
        if reference is None:
            reference = f.dims
        else:
            for top, dims in f.dims.items():
                if reference.get(top) != dims:
                    issues.append(
                        (
                            "shape",
                            f"dataset {top} has rows of shape {dims}, the first file's are "
                            f"{reference.get(top)} (Caffe sizes the net from the first file)",
                            name,
                            line,
                            offset,
                        )
                    )
                    f.kind = "shape"
        offset += f.rows
    return H5Plan(files, offset, tops, problems), issues


def _inspect(h, f: H5File, tops: tuple[str, ...]) -> None:
    import h5py

    rows = None
    for top in tops:
        ds = h.get(top)
        if not isinstance(ds, h5py.Dataset):
            f.error, f.kind = f"no dataset named {top!r} (the layer's top names the dataset)", "corrupt"
            return
        if ds.dtype.kind not in "fiub" or ds.ndim < 1:
            f.error, f.kind = (
                f"dataset {top} has type {ds.dtype} / {ds.ndim} dims: Caffe accepts FLOAT or INTEGER",
                "corrupt",
            )
            return
        unwritten = _unwritten(ds)
        if unwritten:
            f.error, f.kind = f"dataset {top} declares {ds.shape[0]:,} rows but {unwritten}", "corrupt"
            return
        f.dims[top] = tuple(ds.shape[1:])
        f.dtypes[top] = ds.dtype.str
        if rows is None:
            rows = ds.shape[0]
        elif ds.shape[0] != rows:
            f.error, f.kind = (
                f"datasets disagree on the number of rows ({tops[0]}: {rows}, {top}: {ds.shape[0]})",
                "corrupt",
            )
            return
    if rows == 0:
        # Caffe loads it without complaint and then copies row 0 of an empty blob: garbage or a crash
        f.error, f.kind = f"dataset {tops[0]} has 0 rows: Caffe's HDF5Data layer reads past its end", "corrupt"
        return
    f.rows = rows or 0


def _unwritten(ds) -> str | None:
    """Why ``ds`` holds rows that were never written (HDF5 returns its fill value for them), or None.

    A dataset can be declared at any size (1 TiB) and left unwritten: reading it would take
    minutes and yield only fill values, so it is reported from the storage layout instead.
    """
    import math

    if ds.size == 0:
        return None
    if ds.id.get_storage_size() == 0:
        return "none of them was ever written (no storage allocated): Caffe would read fill values"
    if ds.chunks is not None:
        total = math.prod(math.ceil(n / c) for n, c in zip(ds.shape, ds.chunks, strict=True))
        stored = ds.id.get_num_chunks()
        if stored < total:
            return (
                f"only {stored:,} of its {total:,} chunks were ever written: Caffe would read fill values for the rest"
            )
    return None


def scan_h5_range(
    spec: SourceSpec, plan: H5Plan, start: int, count: int, ticker, shard: str | None = None
) -> SourceReport:
    """Scan global rows [start, start+count) of the listed files in read order."""
    import h5py

    report = SourceReport(
        kind="hdf5",
        path=spec.path,
        layer=spec.layer,
        phase=spec.phase,
        tops=list(plan.tops),
        batch_size=spec.schedule.batch_size,
        total=plan.total,
        shard=shard,
        schedule=spec.schedule.to_dict(),
        files=[f.listed for f in plan.files],
    )
    acc = Accumulator(report, spec.schedule, spec.transform, spec.labels)
    t0 = time.perf_counter()
    end = start + count
    kinds: set[str] = set()
    stop = False
    for f in plan.files:
        if f.error or f.kind == "shape" or f.rows == 0:
            continue
        lo, hi = max(start, f.offset), min(end, f.offset + f.rows)
        if lo >= hi:
            continue
        try:
            with h5py.File(f.path, "r") as h:
                stop = _scan_file(acc, spec, plan, f, h, lo - f.offset, hi - f.offset, ticker, kinds)
        except OSError as exc:
            acc.issue("corrupt", f"HDF5 read failed: {exc}", lo, (f.listed, f.listed, lo - f.offset))
        if stop:
            report.complete = False
            break
    acc.finish()
    report.value_kind = "/".join(sorted(kinds)) or None
    report.seconds = time.perf_counter() - t0
    return report


def _scan_file(acc, spec, plan, f: H5File, h, r0: int, r1: int, ticker, kinds: set[str]) -> bool:
    row_bytes = max(1, sum(int(np.prod(d, dtype=np.int64)) * 8 for d in f.dims.values()))
    step = max(1, BLOCK_BYTES // row_bytes)
    data_top = plan.tops[0] if plan.tops else None
    for a in range(r0, r1, step):
        b = min(r1, a + step)
        idx = np.arange(f.offset + a, f.offset + b)
        for top in plan.tops:
            ds = h[top]
            try:
                block = ds[a:b]
            except (OSError, ValueError) as exc:
                acc.issue(
                    "corrupt",
                    f"cannot read {top}[{a}:{b}]: {exc}",
                    int(idx[0]),
                    (f"{f.listed}:{top}[{a}]", f.listed, a),
                    top=top,
                )
                continue
            if top == data_top:
                kinds.add("uint8" if block.dtype == np.uint8 else "float" if block.dtype.kind == "f" else "int")
            x = block.reshape(b - a, -1)
            if x.dtype != np.float32 and x.dtype.kind == "f":
                with np.errstate(over="ignore"):
                    x = x.astype(np.float32)  # what Caffe's load does: doubles beyond FLT_MAX become inf
            refs = _Rows(f.listed, top, a)
            acc.values(x, idx, refs, top=top, constant=top == data_top, track=top == data_top)
            if top == spec.label_top and spec.labels is not None:
                acc.label_values(x, idx, refs, top=top)
        acc.report.records += b - a
        acc.report.bytes += (b - a) * sum(
            int(np.prod(d, dtype=np.int64)) * np.dtype(f.dtypes[t]).itemsize for t, d in f.dims.items()
        )
        if ticker.add(b - a):
            return True
    return False


class _Rows:
    __slots__ = ("base", "name", "top")

    def __init__(self, name: str, top: str, base: int):
        self.name, self.top, self.base = name, top, base

    def __getitem__(self, j: int) -> tuple[str, str, int]:
        row = self.base + j
        return (f"{self.name}:{self.top}[{row}]", self.name, row)
