"""HDF5Data lists: rows found with file, row and iteration across files; missing files; clean copies."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from nandoctor.data.api import scan_source, source_spec
from nandoctor.data.clean import clean_copy
from nandoctor.data.scan import scan_specs


def write_h5(path, n, data_dtype=np.float32, dims=(1, 3, 3), label_dims=(), seed=0, chunks=None):
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as h:
        h.create_dataset("data", data=rng.random((n, *dims)).astype(data_dtype), chunks=chunks)
        h.create_dataset("label", data=rng.integers(0, 5, (n, *label_dims)).astype(np.float32))
    return path


@pytest.fixture
def h5set(tmp_path):
    (tmp_path / "d").mkdir()
    write_h5(tmp_path / "d/a.h5", 30, seed=1)
    write_h5(tmp_path / "d/b.h5", 30, data_dtype=np.float64, seed=2, chunks=(7, 1, 3, 3))
    write_h5(tmp_path / "d/c.h5", 30, seed=3)
    with h5py.File(tmp_path / "d/b.h5", "a") as h:
        h["data"][4, 0, 1, 1] = np.nan
        h["data"][9, 0, 0, 0] = 1e39  # a double beyond FLT_MAX: inf once Caffe loads it as float
    with h5py.File(tmp_path / "d/c.h5", "a") as h:
        h["label"][2] = 7.5
    (tmp_path / "list.txt").write_text("d/a.h5\nd/b.h5\nd/missing.h5\nd/c.h5\n")
    return tmp_path


def test_rows_found_across_files(h5set):
    report = scan_source(
        str(h5set / "list.txt"),
        root=str(h5set),
        batch_size=8,
        workers=0,
        progress=False,
        tops=("data", "label"),
        num_classes=5,
    )
    src = report.sources[0]
    issues = {(i.kind, i.record): i for i in src.issues}
    nan = issues[("nonfinite", "d/b.h5:data[4]")]
    assert nan.index == 34 and nan.file == "d/b.h5" and nan.row == 4
    assert (nan.read.iteration, nan.read.slot) == (4, 2)
    assert issues[("nonfinite", "d/b.h5:data[9]")].detail["posinf"] == 1
    missing = next(i for i in src.issues if i.kind == "missing_file")
    assert missing.file == "d/missing.h5" and missing.index == 60 and missing.read.iteration == 7
    label = issues[("label", "d/c.h5:label[2]")]
    assert label.index == 62 and "not an integer" in label.message and ">= 5" in label.message
    assert src.records == 90 and src.total == 90


def test_duplicate_and_shape_mismatch_files(tmp_path):
    write_h5(tmp_path / "a.h5", 10)
    write_h5(tmp_path / "w.h5", 10, dims=(1, 4, 3))
    (tmp_path / "list.txt").write_text(f"{tmp_path}/a.h5 {tmp_path}/w.h5\n{tmp_path}/a.h5\n")
    src = scan_source(
        str(tmp_path / "list.txt"), batch_size=4, workers=0, progress=False, tops=("data", "label")
    ).sources[0]
    kinds = sorted(i.kind for i in src.issues)
    assert kinds == ["duplicate", "list_line", "shape"]
    shape = next(i for i in src.issues if i.kind == "shape")
    assert shape.index == 10 and "(1, 4, 3)" in shape.message


def test_hdf5_file_given_directly_takes_every_dataset(tmp_path):
    write_h5(tmp_path / "x.h5", 12, label_dims=(2,))
    with h5py.File(tmp_path / "x.h5", "a") as h:
        h["label"][5, 1] = np.inf
    src = scan_source(str(tmp_path / "x.h5"), batch_size=5, workers=0, progress=False).sources[0]
    assert src.tops == ["data", "label"]
    [issue] = src.issues
    assert issue.record == "x.h5:label[5]".replace("x.h5", str(tmp_path / "x.h5")) and issue.read.iteration == 1


def test_clean_copy_keeps_layout_and_rows(h5set):
    spec = source_spec(str(h5set / "list.txt"), root=str(h5set), batch_size=8, tops=("data", "label"), num_classes=5)
    report = scan_specs([spec], workers=2, progress=False)
    out = h5set / "clean"
    result = clean_copy(spec, report.sources[0], str(out))
    listed = (out / "list.txt").read_text().split()
    assert [p.rsplit("/", 1)[1] for p in listed] == ["a.h5", "b.h5", "c.h5"]
    with h5py.File(h5set / "d/b.h5") as orig, h5py.File(out / "b.h5") as new:
        assert new["data"].dtype == orig["data"].dtype and new["data"].chunks == (7, 1, 3, 3)
        keep = [r for r in range(30) if r not in (4, 9)]
        np.testing.assert_array_equal(new["data"][:], orig["data"][keep])
        np.testing.assert_array_equal(new["label"][:], orig["label"][keep])
    assert {r["record"] for r in result.removed} == {"d/b.h5:data[4]", "d/b.h5:data[9]", "d/c.h5:label[2]"}
    assert result.removed_files == [{"file": "d/missing.h5", "rows": 0, "why": "missing_file"}]
    rescan = scan_source(
        str(out / "list.txt"), batch_size=8, workers=0, progress=False, tops=("data", "label"), num_classes=5
    )
    assert [i.kind for i in rescan.sources[0].issues] == []
    assert rescan.sources[0].records == 87


def test_unreadable_h5_and_empty_list(tmp_path):
    (tmp_path / "bad.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 50)
    (tmp_path / "list.txt").write_text(f"{tmp_path}/bad.h5\n")
    src = scan_source(str(tmp_path / "list.txt"), kind="hdf5", batch_size=4, workers=0, progress=False).sources[0]
    assert [i.kind for i in src.issues] == ["corrupt"]
    (tmp_path / "empty.txt").write_text("\n")
    src = scan_source(str(tmp_path / "empty.txt"), kind="hdf5", batch_size=4, workers=0, progress=False).sources[0]
    assert [i.kind for i in src.issues] == ["unreadable_source"]
