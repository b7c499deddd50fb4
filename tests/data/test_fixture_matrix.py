"""Every database kind with every record encoding: bad records found by key and first iteration, and
a clean copy that re-scans clean with every good record byte-identical.

LMDB and LevelDB x raw uint8 / float_data / encoded images, and HDF5 with uint8 and float data
sets. Batch size 4 and iter_size 1: record i is first read in iteration i // 4 (Caffe reads in
key order, one batch per forward pass).
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from nandoctor.data.api import scan_source, source_spec
from nandoctor.data.clean import clean_copy
from nandoctor.data.datum import encode_datum
from nandoctor.data.scan import scan_specs
from tests.data.builders import image_bytes, key, read_db, write_leveldb, write_lmdb

WRITERS = {"lmdb": write_lmdb, "leveldb": write_leveldb}
BATCH = 4
CLASSES = 5


def raw_uint8_set():
    rng = np.random.default_rng(1)
    items = [(key(i), encode_datum(3, 4, 4, data=rng.integers(1, 255, 48, dtype=np.uint8).tobytes(), label=i % 5))
             for i in range(24)]  # fmt: skip
    items[5] = (key(5), encode_datum(3, 4, 4, data=bytes(range(40)), label=1))  # 40 bytes for 3x4x4
    items[9] = (key(9), encode_datum(3, 5, 4, data=bytes(range(60)), label=1))  # another shape
    items[14] = (key(14), encode_datum(3, 4, 4, data=bytes(range(1, 49)), label=7))  # label >= 5 classes
    items[21] = (key(21), b"\x08\x03\x10")  # a Datum cut off mid-field
    return items, {5: "corrupt", 9: "shape", 14: "label", 21: "corrupt"}


def float_set():
    rng = np.random.default_rng(2)
    items = [(key(i), encode_datum(1, 3, 3, float_data=rng.random(9, dtype=np.float32), label=i % 5))
             for i in range(24)]  # fmt: skip
    x = np.full(9, 0.5, np.float32)
    x[4] = np.nan
    items[6] = (key(6), encode_datum(1, 3, 3, float_data=x, label=1))
    items[13] = (key(13), encode_datum(1, 3, 3, float_data=np.full(9, -np.inf, np.float32), label=1))
    items[18] = (key(18), encode_datum(1, 3, 3, float_data=np.full(9, 3e20, np.float32), label=1))
    items[22] = (key(22), encode_datum(1, 3, 3, float_data=np.full(9, 0.5, np.float32), label=-1))
    return items, {6: "nonfinite", 13: "nonfinite", 18: "overflow", 22: "label"}


def encoded_set():
    items = [(key(i), encode_datum(label=i % 5, data=image_bytes("PNG", (6, 5), seed=i), encoded=True))
             for i in range(24)]  # fmt: skip
    jpg = image_bytes("JPEG", (16, 16), seed=99)
    items[3] = (key(3), encode_datum(label=1, data=jpg[: len(jpg) // 2], encoded=True))
    items[10] = (key(10), encode_datum(label=1, data=b"not an image at all", encoded=True))
    items[17] = (key(17), encode_datum(label=1, data=image_bytes("PNG", (7, 5)), encoded=True))
    items[20] = (key(20), encode_datum(label=9, data=image_bytes("PNG", (6, 5), seed=5), encoded=True))
    return items, {3: "corrupt", 10: "corrupt", 17: "shape", 20: "label"}


SETS = {"uint8": raw_uint8_set, "float": float_set, "encoded": encoded_set}


def serious(src):
    return {i.index: i for i in src.issues if i.index is not None and i.kind not in ("constant", "color")}


@pytest.mark.parametrize("encoding", sorted(SETS))
@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_bad_records_by_key_and_iteration_then_clean_copy(tmp_path, kind, encoding):
    items, bad = SETS[encoding]()
    WRITERS[kind](tmp_path / "db", items)
    spec = source_spec(str(tmp_path / "db"), batch_size=BATCH, num_classes=CLASSES)
    src = scan_specs([spec], workers=0, progress=False).sources[0]
    assert src.kind == kind and src.records == len(items)
    found = serious(src)
    assert {i: f.kind for i, f in found.items()} == bad
    for i, issue in found.items():
        assert issue.record == key(i).decode()
        assert (issue.read.iteration, issue.read.slot) == (i // BATCH, i % BATCH)

    before = read_db(tmp_path / "db", kind)
    result = clean_copy(spec, src, str(tmp_path / "clean"))
    assert read_db(tmp_path / "db", kind) == before  # the original is never touched
    copy = read_db(tmp_path / "clean", kind)
    good = {k for i, (k, _) in enumerate(items) if i not in bad}
    assert set(copy) == good
    assert all(copy[k] == before[k] for k in good)  # byte-identical Datum records
    assert {r["record"] for r in result.removed} == {key(i).decode() for i in bad}
    rescan = scan_source(str(tmp_path / "clean"), batch_size=BATCH, num_classes=CLASSES, workers=0, progress=False)
    assert serious(rescan.sources[0]) == {} and rescan.sources[0].records == len(good)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_hdf5_uint8_and_float_rows(tmp_path, dtype):
    rng = np.random.default_rng(3)
    data = rng.integers(0, 200, (20, 1, 2, 2)).astype(dtype)
    label = (np.arange(20) % CLASSES).astype(np.float32)
    label[7] = np.nan  # a NaN label passes into the loss as is
    label[15] = 6  # beyond the 5 classes
    if dtype == np.float32:
        data[11, 0, 1, 0] = np.inf
    with h5py.File(tmp_path / "part.h5", "w") as h:
        h.create_dataset("data", data=data)
        h.create_dataset("label", data=label)
    (tmp_path / "list.txt").write_text("part.h5\n")
    spec = source_spec(
        str(tmp_path / "list.txt"), root=str(tmp_path), batch_size=BATCH, tops=("data", "label"), num_classes=CLASSES
    )
    src = scan_specs([spec], workers=0, progress=False).sources[0]
    expected = {7: "part.h5:label[7]", 15: "part.h5:label[15]"}
    if dtype == np.float32:
        expected[11] = "part.h5:data[11]"
    found = serious(src)
    assert {i: f.record for i, f in found.items()} == expected
    assert all(f.read.iteration == i // BATCH for i, f in found.items())

    clean_copy(spec, src, str(tmp_path / "clean"))
    with h5py.File(tmp_path / "part.h5") as orig, h5py.File(tmp_path / "clean" / "part.h5") as new:
        keep = [r for r in range(20) if r not in expected]
        assert new["data"].dtype == orig["data"].dtype
        assert new["data"][:].tobytes() == orig["data"][keep].tobytes()
        assert new["label"][:].tobytes() == orig["label"][keep].tobytes()
    rescan = scan_source(
        str(tmp_path / "clean" / "list.txt"),
        batch_size=BATCH,
        tops=("data", "label"),
        num_classes=CLASSES,
        workers=0,
        progress=False,
    )
    assert serious(rescan.sources[0]) == {} and rescan.sources[0].records == 20 - len(expected)


def _files(folder) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_scanning_leaves_the_database_files_untouched(tmp_path, kind):
    """Inputs are read-only: LevelDB is read through a private copy (opening one writes), LMDB without a lock."""
    items, _ = float_set()
    path = WRITERS[kind](tmp_path / "db", items)
    before = _files(path)
    for workers in (0, 2):
        scan_source(str(path), batch_size=BATCH, workers=workers, progress=False)
    assert _files(path) == before
