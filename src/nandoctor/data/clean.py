"""Clean copies: a new data set of the same kind without the bad records (or with NaN/inf repaired).

The original is only read. Kept records are copied byte for byte (same keys and Datum bytes
for DBs, same dataset names, dtypes, chunking and compression for HDF5, the same lines for
lists), so Caffe reads the copy exactly as it read the original minus what was removed.
``replace_nonfinite`` repairs records whose only problem is NaN/inf by overwriting those
values in place (every other byte unchanged); everything else bad is left out. A JSON report
of what was removed or repaired is written next to the copy (``OUT.clean-report.json``).

Everything is written through ``core.safeio.OutputDir`` of OUT's folder: the copy is built
in a private ``.OUT.partial-*`` folder and renamed to OUT only when complete (a SIGTERM
removes it; after a SIGKILL only that hidden partial folder can remain), and no symlink
planted in the folder is followed.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nandoctor.core.safeio import OutputDir, terminate_as_exit
from nandoctor.core.types import InputError
from nandoctor.data import db
from nandoctor.data.datum import decode_datum, repair_floats
from nandoctor.data.report import BAD_KINDS, SourceReport
from nandoctor.data.spec import SourceSpec

BATCH = 4096


@dataclass(slots=True)
class CleanResult:
    source: str
    output: str  # the new source (DB directory, list file)
    kept: int = 0
    removed: list[dict] = field(default_factory=list)
    repaired: list[dict] = field(default_factory=list)
    removed_files: list[dict] = field(default_factory=list)  # HDF5 files left out of the new list
    report_path: str = ""

    def to_dict(self) -> dict:
        return {"source": self.source, "output": self.output, "kept": self.kept, "removed": self.removed,
                "repaired": self.repaired, "removed_files": self.removed_files}  # fmt: skip


def _decide(src: SourceReport, replace: float | None) -> tuple[dict[int, list[str]], dict[int, list[str]]]:
    """index -> issue kinds, for records to drop and records to repair."""
    kinds: dict[int, list[str]] = {}
    for issue in src.issues:
        if issue.index is None or issue.detail.get("scope") == "file":
            continue  # whole HDF5 files are judged by _copy_hdf5
        if issue.kind in BAD_KINDS or issue.kind == "duplicate":  # a repeated list line: keep the first
            kinds.setdefault(issue.index, []).append(issue.kind)
    drop, repair = {}, {}
    for index, ks in kinds.items():
        if replace is not None and set(ks) == {"nonfinite"}:
            repair[index] = ks
        else:
            drop[index] = ks
    return drop, repair


def _records(src: SourceReport) -> dict[int, str]:
    return {i.index: i.record for i in src.issues if i.index is not None and i.record}


def _check_output(out: str, source: str) -> None:
    if os.path.realpath(out) == os.path.realpath(source):
        raise InputError("the clean copy must not replace the original", out)
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise InputError("output exists and is not an empty directory: choose a new path", out)


def clean_copy(spec: SourceSpec, src: SourceReport, out: str, replace_nonfinite: float | None = None,
               folder: OutputDir | None = None) -> CleanResult:  # fmt: skip
    """Write the clean copy of one scanned source; ``src`` is its (complete) scan report.

    ``out`` is the new source's path, or with ``folder`` its name inside that folder.
    """
    if not src.complete:
        raise InputError("the scan of this source is incomplete; a clean copy needs a complete scan", spec.path)
    if any(i.kind == "unreadable_source" for i in src.issues):
        raise InputError("the source could not be read completely; no clean copy", spec.path)
    if folder is None:
        out = os.path.normpath(out)
        folder = OutputDir(os.path.dirname(out) or ".", [spec.path], what="--clean folder")
        name = os.path.basename(out)
    else:
        name = out
    final = str(folder / name)
    _check_output(final, spec.path)
    drop, repair = _decide(src, replace_nonfinite)
    names = _records(src)
    result = CleanResult(spec.path, final)
    with terminate_as_exit():
        if spec.kind in ("lmdb", "leveldb"):
            with folder.staged_dir(name) as tmp:
                _copy_db(spec, src, str(tmp), drop, repair, replace_nonfinite, result)
        elif spec.kind in ("hdf5", "hdf5file"):
            with folder.staged_dir(name) as tmp:
                _copy_hdf5(spec, src, str(tmp), final, drop, repair, replace_nonfinite, result)
        else:
            _copy_list(spec, folder, name, drop, result)
    result.removed = [{"index": i, "record": names.get(i), "why": k} for i, k in sorted(drop.items())]
    result.repaired = [{"index": i, "record": names.get(i), "why": k} for i, k in sorted(repair.items())]
    result.report_path = str(folder.write_text(name + ".clean-report.json", json.dumps(result.to_dict(), indent=1)))
    return result


# --------------------------------------------------------------------------- databases


def _majority(src: SourceReport) -> tuple[int, ...] | None:
    if not src.majority_shape:
        return None
    return tuple(int(d) for d in src.majority_shape.split(","))


def _copy_db(spec, src, out, drop, repair, replace, result) -> None:
    # shapes beyond the remembered examples are re-checked here, so no outlier slips through
    extra_shapes = any("only the first" in n for n in src.notes)
    majority = _majority(src) if extra_shapes else None
    rng = db.KeyRange(0, src.total or 0, None)
    if spec.kind == "lmdb":
        rng.count = db.check_lmdb_file(spec.path)
        reader = db.iter_lmdb(spec.path, rng, BATCH)
        writer = _LmdbWriter(out, db.db_size(spec.path))
    else:
        total, _ = db.leveldb_ranges(spec.path, 1, allow_locked=spec.snapshot)
        rng.count = total
        reader = db.iter_leveldb(spec.path, rng, BATCH, allow_locked=spec.snapshot)
        writer = _LeveldbWriter(out)
    index = 0
    try:
        for keys, values in reader:
            kept = []
            for key, value in zip(keys, values, strict=True):
                if index in drop:
                    pass
                elif majority is not None and _shape_of(value) not in (majority, None):
                    drop[index] = ["shape"]
                else:
                    if index in repair:
                        value, _n = repair_floats(value, replace)
                    kept.append((key, value))
                index += 1
            writer.put(kept)
            result.kept += len(kept)
    finally:
        writer.close()


def _shape_of(value: bytes):
    try:
        d = decode_datum(value)
    except ValueError:
        return None
    return None if d.encoded else d.shape


class _LmdbWriter:
    def __init__(self, out: str, size_hint: int):
        import lmdb

        self.env = lmdb.open(out, map_size=max(1 << 24, int(size_hint * 1.5) + (1 << 24)), subdir=True)

    def put(self, items) -> None:
        if items:
            with self.env.begin(write=True) as txn:
                txn.cursor().putmulti(items, append=True)

    def close(self) -> None:
        self.env.sync()
        self.env.close()


class _LeveldbWriter:
    def __init__(self, out: str):
        import plyvel

        self.db = plyvel.DB(out, create_if_missing=True, error_if_exists=False)

    def put(self, items) -> None:
        with self.db.write_batch() as wb:
            for k, v in items:
                wb.put(k, v)

    def close(self) -> None:
        self.db.close()


# --------------------------------------------------------------------------- HDF5


def _copy_hdf5(spec, src, out, final, drop, repair, replace, result) -> None:
    """HDF5 files and their list into the folder ``out``, which becomes ``final`` (the list names that)."""
    import h5py

    from nandoctor.data.scan_h5 import plan_hdf5

    plan, _issues = plan_hdf5(spec)
    listed = []
    used: set[str] = set()
    copied: set[str] = set()
    for n, f in enumerate(plan.files):
        real = os.path.realpath(f.path)
        if f.error or f.kind == "shape" or real in copied:
            why = f.kind if f.error or f.kind == "shape" else "duplicate"
            result.removed_files.append({"file": f.listed, "rows": f.rows, "why": why})
            continue
        copied.add(real)
        name = os.path.basename(f.path)
        if name in used:
            name = f"{n}_{name}"
        used.add(name)
        target = os.path.join(out, name)
        rows = np.arange(f.offset, f.offset + f.rows)
        keep = np.array([i not in drop for i in rows.tolist()], bool) if drop else np.ones(f.rows, bool)
        fix = np.array([i in repair for i in rows.tolist()], bool) if repair else np.zeros(f.rows, bool)
        with h5py.File(f.path, "r") as h, h5py.File(target, "w") as g:
            for key, value in h.attrs.items():
                g.attrs[key] = value
            for name_ds, ds in h.items():
                if not isinstance(ds, h5py.Dataset):
                    h.copy(ds, g, name=name_ds)
                elif ds.ndim >= 1 and ds.shape[0] == f.rows:
                    _copy_rows(ds, g, name_ds, keep, fix, replace)
                else:
                    h.copy(ds, g, name=name_ds)
        result.kept += int(keep.sum())
        listed.append(os.path.abspath(os.path.join(final, name)))
    list_name = os.path.basename(spec.path) if spec.kind == "hdf5" else "list.txt"
    list_name = list_name if not list_name.endswith((".h5", ".hdf5")) else "list.txt"
    Path(out, list_name).write_text("".join(p + "\n" for p in listed))
    result.output = os.path.join(final, list_name)


def _copy_rows(ds, g, name: str, keep: np.ndarray, fix: np.ndarray, replace) -> None:
    n_keep = int(keep.sum())
    kwargs = {}
    if ds.chunks is not None:
        kwargs["chunks"] = tuple(min(c, max(1, s)) for c, s in zip(ds.chunks, (n_keep, *ds.shape[1:]), strict=True))
        kwargs["compression"] = ds.compression
        kwargs["compression_opts"] = ds.compression_opts
        kwargs["shuffle"] = ds.shuffle
    dst = g.create_dataset(name, shape=(n_keep, *ds.shape[1:]), dtype=ds.dtype, **kwargs)
    for key, value in ds.attrs.items():
        dst.attrs[key] = value
    row_bytes = max(1, int(np.prod(ds.shape[1:], dtype=np.int64)) * ds.dtype.itemsize)
    step = max(1, (32 << 20) // row_bytes)
    w = 0
    for a in range(0, ds.shape[0], step):
        b = min(ds.shape[0], a + step)
        k = keep[a:b]
        if not k.any():
            continue
        block = ds[a:b][k]
        if replace is not None and block.dtype.kind == "f":
            f = fix[a:b][k]
            if f.any():
                sub = block[f]
                sub[~np.isfinite(sub)] = replace
                block[f] = sub
        dst[w : w + len(block)] = block
        w += len(block)


# --------------------------------------------------------------------------- image lists


def _copy_list(spec, folder: OutputDir, name: str, drop, result) -> None:
    """The list without the dropped lines: the file ``name``, or a folder ``name`` holding it (no extension)."""
    from nandoctor.data.scan_list import iter_lines

    def write(fh) -> None:
        for i, line in iter_lines(spec.path):
            if i in drop:
                continue
            fh.write(line if line.endswith("\n") else line + "\n")
            result.kept += 1

    text = {"encoding": "utf-8", "errors": "surrogateescape", "newline": ""}
    if os.path.isdir(folder.real_path(name)) or not os.path.splitext(name)[1]:
        inner = os.path.basename(spec.path)
        with folder.staged_dir(name) as tmp, open(tmp / inner, "x", **text) as fh:
            write(fh)
        result.output = os.path.join(str(folder / name), inner)
    else:
        with folder.open(name, "w", **{k: v for k, v in text.items() if k != "encoding"}) as fh:
            write(fh)
        result.output = str(folder / name)


def remove_tree(path: str) -> None:  # used by tests and the bench
    shutil.rmtree(path, ignore_errors=True)
