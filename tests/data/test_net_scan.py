"""Net-driven scans: sources from data layers, transform_param, label range, solver schedule, rules."""

from __future__ import annotations

import numpy as np

from nandoctor.core.registry import Facts, run_rules, select_rules
from nandoctor.core.types import Severity
from nandoctor.data.api import scan_net
from nandoctor.data.datum import encode_blobproto, encode_datum
from nandoctor.data.schedule import ReadSchedule
from tests.data.builders import key, uint8_records, write_lmdb

NET = """
name: "t"
layer {{ name: "data" type: "Data" top: "data" top: "label" include {{ phase: TRAIN }}
  transform_param {{ {transform} }}
  data_param {{ source: "train_lmdb" batch_size: 8 backend: LMDB }} }}
layer {{ name: "data" type: "Data" top: "data" top: "label" include {{ phase: TEST }}
  transform_param {{ {transform} }}
  data_param {{ source: "test_lmdb" batch_size: 5 backend: LMDB }} }}
layer {{ name: "{first}" type: "{first_type}" bottom: "data" top: "{first}" {first_param} }}
layer {{ name: "ip" type: "InnerProduct" bottom: "{first}" top: "ip" inner_product_param {{ num_output: 4 }} }}
layer {{ name: "relu" type: "ReLU" bottom: "ip" top: "ip" }}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" loss_param {{ ignore_label: -1 }} }}
"""

SOLVER = 'net: "net.prototxt"\nbase_lr: 0.01\nmax_iter: 100\niter_size: 2\ntest_iter: 3\ntest_interval: 10\n'


def make_run(
    tmp_path,
    transform="scale: 0.00390625",
    first="ip0",
    first_type="InnerProduct",
    first_param="inner_product_param { num_output: 8 }",
):
    items = uint8_records(60, (1, 2, 2), classes=4)
    items[33] = (key(33), encode_datum(1, 2, 2, data=bytes([1, 2, 3, 4]), label=4))  # 4 classes: 0..3
    items[34] = (key(34), encode_datum(1, 2, 2, data=bytes([1, 2, 3, 4]), label=-1))  # ignore_label: fine
    write_lmdb(tmp_path / "train_lmdb", items)
    test = uint8_records(40, (1, 2, 2), seed=5, classes=4)
    test[22] = (key(22), encode_datum(1, 2, 2, data=bytes(4) + b"", label=9))
    write_lmdb(tmp_path / "test_lmdb", test)
    (tmp_path / "net.prototxt").write_text(
        NET.format(transform=transform, first=first, first_type=first_type, first_param=first_param)
    )
    (tmp_path / "solver.prototxt").write_text(SOLVER)
    return tmp_path


def findings_of(report):
    return list(run_rules(Facts(data=report), select_rules(["NAN4"])))


def test_solver_schedule_and_label_range(tmp_path):
    make_run(tmp_path)
    report = scan_net(str(tmp_path / "solver.prototxt"), workers=0, progress=False)
    train, test = report.sources
    assert (train.phase, test.phase) == ("TRAIN", "TEST")
    [bad] = [i for i in train.issues if i.kind == "label"]
    assert bad.record == "00000033" and ">= 4 classes for loss" in bad.message
    assert (bad.read.iteration, bad.read.batch) == (2, 4)  # 33 // 8 = batch 4, iter_size 2 -> iteration 2
    [tbad] = [i for i in test.issues if i.kind == "label"]
    # TEST: 3 batches of 5 per pass; record 22 is in pass 1, run at iteration 10
    assert (tbad.read.iteration, tbad.read.batch, tbad.read.slot) == (10, 1, 2)
    codes = {f.code for f in findings_of(report)}
    assert "NAN407" in codes and "NAN412" not in codes


def test_net_given_alone_uses_its_folder(tmp_path):
    make_run(tmp_path)
    report = scan_net(str(tmp_path / "net.prototxt"), workers=0, progress=False, phases=("TRAIN",))
    [src] = report.sources
    assert src.records == 60 and src.schedule["iter_size"] == 1


def test_missing_scale_warning_and_power_rescale(tmp_path):
    make_run(tmp_path, transform="")
    warn = [
        f
        for f in findings_of(scan_net(str(tmp_path / "net.prototxt"), workers=0, progress=False))
        if f.code == "NAN412"
    ]
    assert warn and warn[0].severity == Severity.WARNING and warn[0].culprit == "data.transform_param.scale"
    other = tmp_path / "p"
    other.mkdir()
    make_run(other, transform="", first="scale", first_type="Power", first_param="power_param { scale: 0.0039 }")
    assert not [
        f for f in findings_of(scan_net(str(other / "net.prototxt"), workers=0, progress=False)) if f.code == "NAN412"
    ]


def test_mean_file_with_nan_and_wrong_size(tmp_path):
    mean = np.full((1, 1, 2, 2), 100.0, np.float32)
    mean[0, 0, 1, 1] = np.nan
    (tmp_path / "mean.binaryproto").write_bytes(encode_blobproto(mean))
    make_run(tmp_path, transform='mean_file: "mean.binaryproto"')
    report = scan_net(str(tmp_path / "net.prototxt"), workers=0, progress=False, phases=("TRAIN",))
    found = [f for f in findings_of(report) if f.code == "NAN411"]
    assert len(found) == 1 and "1 non-finite" in found[0].message
    (tmp_path / "mean.binaryproto").write_bytes(encode_blobproto(np.zeros((1, 3, 2, 2), np.float32)))
    report = scan_net(str(tmp_path / "net.prototxt"), workers=0, progress=False, phases=("TRAIN",))
    found = [f for f in findings_of(report) if f.code == "NAN411"]
    assert len(found) == 1 and "12 values" in found[0].message


def test_backend_mismatch_and_missing_source(tmp_path):
    make_run(tmp_path)
    text = (tmp_path / "net.prototxt").read_text().replace("backend: LMDB }} }}", "}} }}")
    text = text.replace('source: "test_lmdb" batch_size: 5 backend: LMDB', 'source: "nowhere" batch_size: 5')
    text = text.replace('source: "train_lmdb" batch_size: 8 backend: LMDB', 'source: "train_lmdb" batch_size: 8')
    (tmp_path / "net.prototxt").write_text(text)
    report = scan_net(str(tmp_path / "net.prototxt"), workers=0, progress=False)
    unreadable = [f for f in findings_of(report) if f.code == "NAN410"]
    messages = " | ".join(f.message for f in unreadable)
    assert "backend is LEVELDB but train_lmdb is a lmdb" in messages
    assert "nowhere" in messages
    assert report.sources[0].records == 60  # still scanned as what it is


def test_schedule_wraps_and_test_without_initialization():
    s = ReadSchedule(batch_size=10, iter_size=3)
    assert s.first_read(95).iteration == 3
    assert s.iterations_reading(5, total=50, upto=10) == [0, 1, 3, 5, 6, 8]
    t = ReadSchedule(batch_size=10, phase="TEST", test_iter=2, test_interval=100, test_initialization=False)
    assert t.first_read(45).iteration == 300
    assert ReadSchedule(batch_size=10, shuffle=True).first_read(3).iteration is None
