"""LMDB and LevelDB fixtures with known bad records: each is found with its key and first iteration."""

from __future__ import annotations

import numpy as np
import pytest

from nandoctor.data.api import scan_source, source_spec
from nandoctor.data.clean import clean_copy
from nandoctor.data.datum import encode_datum
from nandoctor.data.report import DataReport, merge_reports
from nandoctor.data.scan import scan_specs
from tests.data.builders import float_records, image_bytes, key, read_db, uint8_records, write_leveldb, write_lmdb

WRITERS = {"lmdb": write_lmdb, "leveldb": write_leveldb}


def poisoned_float_records():
    items = float_records(200)
    bad = {}
    x = np.full(16, 0.5, np.float32)
    x[[3, 9]] = np.nan
    items[37] = (key(37), encode_datum(1, 4, 4, label=1, float_data=x))
    bad[37] = "nonfinite"
    y = np.full(16, 0.5, np.float32)
    y[0] = np.inf
    y[5] = -np.inf
    items[120] = (key(120), encode_datum(1, 4, 4, label=1, float_data=y))
    bad[120] = "nonfinite"
    items[150] = (key(150), encode_datum(1, 4, 4, label=1, float_data=np.full(16, 1e25, np.float32)))
    bad[150] = "overflow"
    items[160] = (key(160), encode_datum(1, 5, 4, label=1, float_data=np.zeros(20, np.float32) + 0.1))
    bad[160] = "shape"
    items[170] = (key(170), encode_datum(1, 4, 4, label=1))
    bad[170] = "empty"
    items[180] = (key(180), b"\x0a\xff\xff\xff")
    bad[180] = "corrupt"
    items[190] = (key(190), encode_datum(1, 4, 4, label=12, float_data=np.full(16, 0.25, np.float32)))
    bad[190] = "label"
    items[195] = (key(195), encode_datum(1, 4, 4, label=-3, float_data=np.full(16, 0.25, np.float32)))
    bad[195] = "label"
    return items, bad


def bad_map(report: DataReport) -> dict[int, str]:
    src = report.sources[0]
    return {i.index: i.kind for i in src.issues if i.index is not None and i.kind != "constant"}


@pytest.mark.parametrize("kind", ["lmdb", "leveldb"])
def test_float_records_found_with_key_and_iteration(tmp_path, kind):
    items, bad = poisoned_float_records()
    path = WRITERS[kind](tmp_path / "db", items)
    report = scan_source(str(path), batch_size=16, iter_size=2, num_classes=10, workers=0, progress=False)
    src = report.sources[0]
    assert src.kind == kind and src.records == 200 and src.total == 200
    assert bad_map(report) == bad
    by_index = {i.index: i for i in src.issues if i.index is not None}
    nan = by_index[37]
    assert nan.record == "00000037" and nan.detail["nan"] == 2 and nan.detail["first_positions"] == [3, 9]
    assert (nan.read.iteration, nan.read.batch, nan.read.slot) == (1, 2, 5)  # 37 // 16 = 2; 2 // iter_size 2 = 1
    inf = by_index[120]
    assert inf.detail["posinf"] == 1 and inf.detail["neginf"] == 1 and inf.read.iteration == 3
    assert by_index[150].detail["max_abs"] == pytest.approx(1e25, rel=1e-6)
    assert by_index[160].detail == {"shape": "1,5,4", "expected": "1,4,4"}
    assert src.majority_shape == "1,4,4"


@pytest.mark.parametrize("kind", ["lmdb", "leveldb"])
def test_parallel_and_shards_agree_with_inline(tmp_path, kind):
    items, bad = poisoned_float_records()
    path = str(WRITERS[kind](tmp_path / "db", items))
    inline = scan_source(path, batch_size=16, num_classes=10, workers=0, progress=False)
    pooled = scan_source(path, batch_size=16, num_classes=10, workers=2, progress=False)
    shards = [
        scan_source(path, batch_size=16, num_classes=10, workers=0, progress=False, shard=(i, 3)) for i in range(3)
    ]
    # shard reports travel as JSON
    for i, s in enumerate(shards):
        s.save(tmp_path / f"s{i}.json")
    merged = merge_reports([DataReport.load(tmp_path / f"s{i}.json") for i in range(3)])
    assert sum(s.sources[0].records for s in shards) == 200
    assert bad_map(inline) == bad_map(pooled) == bad_map(merged) == bad
    assert merged.sources[0].majority_shape == "1,4,4"


@pytest.mark.parametrize("kind", ["lmdb", "leveldb"])
def test_clean_copy_is_clean_and_byte_identical(tmp_path, kind):
    items, bad = poisoned_float_records()
    path = str(WRITERS[kind](tmp_path / "db", items))
    spec = source_spec(path, batch_size=16, num_classes=10)
    report = scan_specs([spec], workers=0, progress=False)
    before = read_db(tmp_path / "db", kind)
    result = clean_copy(spec, report.sources[0], str(tmp_path / "clean"))
    assert read_db(tmp_path / "db", kind) == before  # original untouched
    copy = read_db(tmp_path / "clean", kind)
    assert set(copy) == {k for i, (k, _) in enumerate(items) if i not in bad}
    assert all(copy[k] == before[k] for k in copy)
    assert {r["index"] for r in result.removed} == set(bad)
    rescan = scan_source(str(tmp_path / "clean"), batch_size=16, num_classes=10, workers=0, progress=False)
    assert bad_map(rescan) == {}
    assert (tmp_path / "clean.clean-report.json").is_file()


def test_replace_nonfinite_repairs_in_place(tmp_path):
    items, _bad = poisoned_float_records()
    path = str(write_lmdb(tmp_path / "db", items))
    spec = source_spec(path, batch_size=16, num_classes=10)
    report = scan_specs([spec], workers=0, progress=False)
    result = clean_copy(spec, report.sources[0], str(tmp_path / "fixed"), replace_nonfinite=0.0)
    assert {r["index"] for r in result.repaired} == {37, 120}
    copy = read_db(tmp_path / "fixed", "lmdb")
    assert key(37) in copy and len(copy[key(37)]) == len(items[37][1])
    assert key(150) not in copy  # overflow is not repairable by replacing non-finite values
    assert bad_map(scan_source(str(tmp_path / "fixed"), batch_size=16, num_classes=10, workers=0, progress=False)) == {}


def test_uint8_records_and_transform(tmp_path):
    items = uint8_records(50, (3, 4, 4))
    items[10] = (key(10), encode_datum(3, 4, 4, data=bytes(48), label=1))  # constant: info only
    items[20] = (key(20), encode_datum(3, 4, 4, data=bytes(40), label=1))  # 40 bytes for 3*4*4
    path = str(write_lmdb(tmp_path / "db", items))
    report = scan_source(path, batch_size=8, workers=0, progress=False)
    src = report.sources[0]
    kinds = {i.index: i.kind for i in src.issues}
    assert kinds == {10: "constant", 20: "corrupt"}
    assert src.value_kind == "uint8" and src.raw_max <= 255
    scaled = scan_source(path, batch_size=8, scale=1e18, workers=0, progress=False)
    assert {i.kind for i in scaled.sources[0].issues} >= {"overflow"}


def test_encoded_images(tmp_path):
    good = image_bytes("PNG", (6, 5))
    jpg = image_bytes("JPEG", (16, 16), seed=2)
    items = [(key(i), encode_datum(label=1, data=good, encoded=True)) for i in range(8)]
    items[3] = (key(3), encode_datum(label=1, data=jpg[: len(jpg) // 2], encoded=True))
    items[5] = (key(5), encode_datum(label=1, data=b"not an image", encoded=True))
    items[6] = (key(6), encode_datum(label=1, data=image_bytes("PNG", (7, 5)), encoded=True))
    path = str(write_lmdb(tmp_path / "db", items))
    report = scan_source(path, batch_size=4, workers=0, progress=False)
    src = report.sources[0]
    kinds = {i.index: i.kind for i in src.issues}
    assert kinds == {3: "corrupt", 5: "corrupt", 6: "shape"}
    assert "truncated" in next(i.message for i in src.issues if i.index == 3)
    assert src.majority_shape == "3,5,6" and src.value_kind == "encoded"


def test_truncated_lmdb_is_reported_not_crashed(tmp_path):
    path = write_lmdb(tmp_path / "db", float_records(2000, (1, 8, 8)))
    data = (path / "data.mdb").read_bytes()
    (path / "data.mdb").write_bytes(data[: len(data) // 2])
    report = scan_source(str(path), batch_size=16, workers=1, progress=False)
    src = report.sources[0]
    assert [i.kind for i in src.issues] == ["unreadable_source"]
    assert "truncated LMDB" in src.issues[0].message


def test_locked_leveldb_is_refused_then_read_as_snapshot(tmp_path):
    import subprocess
    import sys
    import time

    path = write_leveldb(tmp_path / "db", float_records(30))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import plyvel,sys,time; db=plyvel.DB(sys.argv[1]); print('ok', flush=True); time.sleep(60)",
            str(path),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout.readline().strip() == b"ok"
        refused = scan_source(str(path), batch_size=4, workers=0, progress=False)
        issue = refused.sources[0].issues[0]
        assert issue.kind == "unreadable_source" and "locked" in issue.message and "--snapshot" in issue.message
        snap = scan_source(str(path), batch_size=4, workers=0, progress=False, snapshot=True)
        assert snap.sources[0].records == 30 and not snap.sources[0].issues
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0)


def _dies_past_the_first_range(plan, unit):
    import os

    from nandoctor.data.scan import Plan

    if unit.start > 0:
        os._exit(3)  # what a SIGBUS on a damaged page looks like from the parent
    return _REAL_RUN_UNIT[0](plan, unit) if isinstance(plan, Plan) else None


_REAL_RUN_UNIT: list = []


def test_a_dying_reader_costs_its_range_only(tmp_path, monkeypatch):
    from nandoctor.data import scan as scan_module

    path = str(write_lmdb(tmp_path / "db", float_records(400)))
    _REAL_RUN_UNIT[:] = [scan_module.run_unit]
    monkeypatch.setattr(scan_module, "run_unit", _dies_past_the_first_range)
    report = scan_source(path, batch_size=16, workers=2, progress=False)
    src = report.sources[0]
    assert src.records == 200 and not src.complete
    [issue] = src.issues
    assert issue.kind == "unreadable_source" and "died" in issue.message and issue.index == 200


def test_damaged_lmdb_pages_give_a_partial_report(tmp_path):
    path = write_lmdb(tmp_path / "db", float_records(2000, (1, 8, 8)))
    data = bytearray((path / "data.mdb").read_bytes())
    pages = len(data) // 4096
    for page in range(pages * 3 // 4, pages, 5):
        data[page * 4096 + 8 : page * 4096 + 16] = b"\xff" * 8  # page flags/bounds
    (path / "data.mdb").write_bytes(bytes(data))
    src = scan_source(str(path), batch_size=16, workers=2, progress=False).sources[0]
    assert 0 < src.records < 2000 and not src.complete
    [issue] = [i for i in src.issues if i.kind == "unreadable_source"]
    assert "corrupt" in issue.message.lower() and issue.index >= src.records - 1000
