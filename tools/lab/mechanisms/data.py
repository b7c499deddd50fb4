"""Bad input: NaN, inf, absurd or out-of-range records in LMDB, LevelDB and HDF5 sets, and a mean
file with a NaN in it. The culprit names the source and the records."""

from __future__ import annotations

from tools.lab import nets as N
from tools.lab.mechanisms.common import base_solver, classifier, dataset, mechanism, plan, regressor, test_set, tokens

CAUSE = "bad_input"


def _keys(rows) -> list[str]:
    return [f"{r:08d}" for r in rows]


def _db(seed: int, backend: str, rows: list[int], what: str, **kw):
    name = f"train_{backend}"
    ds = dataset(seed, name=name, backend=backend, poison=[{"rows": rows, "what": what, **kw}])
    culprit = f"{name} records {', '.join(_keys(rows))}"
    return ds, culprit, tokens(name, _keys(rows))


def _h5_culprit(rows: list[int], top: str = "data", file: str = "data/train.h5"):
    lo, hi = min(rows), max(rows) + 1
    span = f"{lo}" if hi == lo + 1 else f"{lo}:{hi}"
    return f"{file}:{top}[{span}]", tokens(file, [str(r) for r in rows] + [f"{lo}:{hi}"])


@mechanism("lmdb_nan_float_data", CAUSE)
def lmdb_nan_float_data(seed: int):
    """Three LMDB records whose float_data holds a NaN, read in the 6th batch of the epoch."""
    rows = [170, 171, 185]
    ds, culprit, toks = _db(seed, "lmdb", rows, "nan")
    return plan(
        CAUSE,
        culprit,
        toks,
        "NaN in float_data of LMDB records " + ", ".join(_keys(rows)),
        classifier(seed, ds=ds),
        base_solver(seed, max_iter=100),
    )


@mechanism("lmdb_inf_float_data", CAUSE)
def lmdb_inf_float_data(seed: int):
    """One LMDB record with +inf in float_data, in the 3rd batch."""
    rows = [77]
    ds, culprit, toks = _db(seed, "lmdb", rows, "inf")
    return plan(
        CAUSE,
        culprit,
        toks,
        "inf in float_data of LMDB record 00000077",
        classifier(seed, ds=ds),
        base_solver(seed, max_iter=100),
    )


@mechanism("leveldb_nan_float_data", CAUSE)
def leveldb_nan_float_data(seed: int):
    """Two LevelDB records with NaN pixels, read in the 10th batch."""
    rows = [300, 301]
    ds, culprit, toks = _db(seed, "leveldb", rows, "nan", col=5)
    return plan(
        CAUSE,
        culprit,
        toks,
        "NaN in float_data of LevelDB records 00000300, 00000301",
        classifier(seed, ds=ds),
        base_solver(seed, max_iter=100),
    )


@mechanism("lmdb_huge_values", CAUSE)
def lmdb_huge_values(seed: int):
    """LMDB records with a feature of 1e30: finite, but the first InnerProduct overflows float."""
    rows = [220, 221, 222]
    ds, culprit, toks = _db(seed, "lmdb", rows, "huge", value=1e30)
    return plan(
        CAUSE,
        culprit,
        toks,
        "feature value 1e30 in LMDB records 00000220-00000222",
        classifier(seed, ds=ds),
        base_solver(seed, max_iter=100),
    )


@mechanism("lmdb_label_255_sigmoid", CAUSE)
def lmdb_label_255_sigmoid(seed: int):
    """Binary labels with 255 (a mask's "ignore" value) in four records, fed to SigmoidCrossEntropyLoss: the
    target 255 pulls the score up without bound until it overflows."""
    rows = list(range(100, 108))
    ds, culprit, toks = _db(seed, "lmdb", rows, "label", value=255)
    ds["classes"] = 2
    test = test_set(ds)
    layers = N.data_layers(ds, test, 32)
    layers += [
        N.ip("ip1", "data", 32),
        N.relu("relu1", "ip1"),
        N.ip("score", "ip1", 1),
        N.layer("loss", "SigmoidCrossEntropyLoss", ("score", "label"), ("loss",)),
    ]
    return plan(
        CAUSE,
        culprit,
        toks,
        "label 255 in LMDB records 00000100-00000107 of a 0/1 problem, SigmoidCrossEntropyLoss",
        (tuple(layers), (ds, test)),
        base_solver(seed, base_lr=0.2, max_iter=300),
    )


def _h5(seed: int, rows: list[int], what: str, task: str = "classify", files: int = 1, **kw) -> dict:
    """A 512-row HDF5 training set (data/train.h5, or data/train_<i>.h5 when split in files) poisoned at ``rows``."""
    extra = {"shape": [16, 1, 1], "targets": 1, "label_top": "target"} if task == "regress" else {}
    return dataset(
        seed, name="train", backend="hdf5", task=task, files=files, poison=[{"rows": rows, "what": what, **kw}], **extra
    )


@mechanism("hdf5_nan_rows", CAUSE)
def hdf5_nan_rows(seed: int):
    """NaN in three rows of an HDF5 data set (batch 14 of the epoch)."""
    rows = [420, 421, 422]
    ds = _h5(seed, rows, "nan")
    culprit, toks = _h5_culprit(rows)
    return plan(
        CAUSE,
        culprit,
        toks,
        "NaN in rows 420-422 of data/train.h5:data",
        classifier(seed, ds=ds, conv=False),
        base_solver(seed, max_iter=100),
    )


@mechanism("hdf5_inf_rows", CAUSE)
def hdf5_inf_rows(seed: int):
    """-inf written into two HDF5 rows."""
    rows = [130, 131]
    ds = _h5(seed, rows, "huge", value=float("-inf"))
    culprit, toks = _h5_culprit(rows)
    return plan(
        CAUSE,
        culprit,
        toks,
        "-inf in rows 130-131 of data/train.h5:data",
        classifier(seed, ds=ds, conv=False),
        base_solver(seed, max_iter=100),
    )


@mechanism("hdf5_huge_rows", CAUSE)
def hdf5_huge_rows(seed: int):
    """Pixel values of 1e30 in four HDF5 rows (a unit conversion gone wrong)."""
    rows = [260, 261, 262, 263]
    ds = _h5(seed, rows, "huge", value=1e30)
    culprit, toks = _h5_culprit(rows)
    return plan(
        CAUSE,
        culprit,
        toks,
        "value 1e30 in rows 260-263 of data/train.h5:data",
        classifier(seed, ds=ds, conv=False),
        base_solver(seed, max_iter=100),
    )


@mechanism("hdf5_nan_target", CAUSE)
def hdf5_nan_target(seed: int):
    """A regression set with NaN targets in two rows."""
    rows = [200, 201]
    ds = _h5(seed, rows, "nan_label", task="regress")
    culprit, toks = _h5_culprit(rows, top="target")
    return plan(
        CAUSE,
        culprit,
        toks,
        "NaN target in rows 200-201 of data/train.h5:target",
        regressor(seed, ds=ds),
        base_solver(seed, max_iter=100),
    )


@mechanism("hdf5_nan_in_third_file", CAUSE)
def hdf5_nan_in_third_file(seed: int):
    """Four HDF5 files listed in the source; the third has an all-NaN row."""
    rows = [300]  # rows 256..383 are the third file
    ds = _h5(seed, rows, "all_nan", files=4)
    culprit, toks = _h5_culprit([300 - 256], file="data/train_2.h5")
    return plan(
        CAUSE,
        culprit,
        toks,
        "an all-NaN row (row 44) in data/train_2.h5, the third of four files",
        classifier(seed, ds=ds, conv=False),
        base_solver(seed, max_iter=100),
    )


@mechanism("hdf5_absurd_targets", CAUSE)
def hdf5_absurd_targets(seed: int):
    """Regression targets of 1e19 in three rows: the squared error overflows float."""
    rows = [150, 151, 152]
    ds = _h5(seed, rows, "label", task="regress", value=1e19)
    culprit, toks = _h5_culprit(rows, top="target")
    return plan(
        CAUSE,
        culprit,
        toks,
        "target 1e19 in rows 150-152 of data/train.h5:target",
        regressor(seed, ds=ds),
        base_solver(seed, max_iter=100),
    )


@mechanism("nan_mean_file", CAUSE)
def nan_mean_file(seed: int):
    """A mean file (binaryproto) with one NaN: every image minus the mean has a NaN pixel."""
    ds = dataset(seed, as_float=False)
    mean = {"rel": "mean.binaryproto", "shape": [1, 8, 8], "value": 128.0, "nan_at": 27}
    return plan(
        CAUSE,
        "mean.binaryproto",
        tokens("mean.binaryproto"),
        "mean_file with a NaN at pixel 27",
        classifier(seed, ds=ds, transform={"mean_file": "mean.binaryproto", "scale": 0.00390625}),
        base_solver(seed, max_iter=60),
        mean=mean,
    )


@mechanism("test_set_nan", CAUSE, shapes=("-test",))
def test_set_nan(seed: int):
    """Only the TEST set has NaN records: training is finite and every TEST pass shows nan."""
    ds = dataset(seed, name="train_lmdb", backend="lmdb", test_poison=[{"rows": [10, 11], "what": "nan"}])
    p = plan(
        CAUSE,
        "test_lmdb records 00000010, 00000011",
        tokens("test_lmdb", _keys([10, 11])),
        "NaN in float_data of TEST LMDB records 00000010, 00000011",
        classifier(seed, ds=ds, conv=False),
        base_solver(seed, max_iter=100, test_iter=4, test_interval=25),
    )
    return p


__all__ = ["N"]
