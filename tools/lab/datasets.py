"""Seeded data sets for lab runs, written with the real libraries (py-lmdb, plyvel, h5py).

A data set is described by a plain dict (kept in the run's spec.json), so the same bytes can be
written again whenever a test or the accuracy bench needs the run folder whole:

    {"name": "train_lmdb", "backend": "lmdb" | "leveldb" | "hdf5", "n": 512, "shape": [1, 8, 8],
     "classes": 10, "task": "classify" | "regress", "seed": 7, "as_float": true,
     "target_scale": 1.0, "files": 1, "poison": [{"rows": [40, 41], "what": "nan"}, ...]}

Classification inputs are class-conditional Gaussians a small net learns within a few dozen
iterations; regression targets are a fixed linear map of the input times ``target_scale``.
``poison`` entries overwrite rows after generation: ``nan``/``inf``/``huge`` in one feature
(``huge`` = ``value``, default 1e30), ``label`` sets the label to ``value``, ``nan_label``,
``all_nan`` makes every feature NaN, ``zero_feature`` zeroes column ``col`` in every row, ``scale_rows`` multiplies whole rows by ``value`` (a finite
spike).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tools.lab import protos


def _arrays(spec: dict, split: int) -> tuple[np.ndarray, np.ndarray]:
    shape = tuple(spec["shape"])
    dim = int(np.prod(shape))
    base = np.random.default_rng(spec["seed"])
    rng = np.random.default_rng([spec["seed"], split])
    n = spec["n"]
    if spec.get("task", "classify") == "classify":
        k = spec.get("classes", 10)
        means = base.normal(0.0, 1.0, (k, dim)).astype(np.float32)
        labels = (rng.random(n) < spec["pos_rate"]).astype(int) if "pos_rate" in spec else rng.integers(0, k, n)
        x = means[labels] + 0.6 * rng.normal(0.0, 1.0, (n, dim)).astype(np.float32)
        y = labels.astype(np.float32)
    else:
        t = spec.get("targets", 1)
        w = base.normal(0.0, 1.0 / np.sqrt(dim), (dim, t)).astype(np.float32)
        x = rng.normal(0.0, 1.0, (n, dim)).astype(np.float32)
        y = (x @ w) * spec.get("target_scale", 1.0)
        if spec.get("target_fn") == "log_sigmoid":  # log-probabilities: every target is negative
            y = -np.log1p(np.exp(-y))
        elif spec.get("target_fn") == "exp":
            y = np.exp(y)
        y = y.astype(np.float32)
    x = x.reshape((n, *shape))
    if not spec.get("as_float", True):
        x = np.clip(np.round(x * 40 + 128), 0, 255).astype(np.float32)  # pixels; the net scales by 1/256
    return x, y


def _poison(x: np.ndarray, y: np.ndarray, poison: list[dict]) -> None:
    flat = x.reshape(len(x), -1)
    for p in poison:
        rows = p["rows"]
        what = p["what"]
        col = p.get("col", 0)
        if what == "nan":
            flat[rows, col] = np.nan
        elif what == "inf":
            flat[rows, col] = np.inf
        elif what == "huge":
            flat[rows, col] = p.get("value", 1e30)
        elif what == "zero_feature":  # a pixel that is 0 in every record, like MNIST's border
            flat[:, col] = 0.0
        elif what == "all_nan":
            flat[rows, :] = np.nan
        elif what == "scale_rows":
            flat[rows, :] *= p["value"]
        elif what in ("label", "set"):
            y[rows] = p["value"]
        elif what == "nan_label":
            y[rows] = np.nan
        else:
            raise ValueError(f"unknown poison {what!r}")


def generate(spec: dict, split: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (N,C,H,W) and labels/targets of a data set; split 1 = train, 2 = test."""
    x, y = _arrays(spec, split)
    # ``set_labels`` shapes the data itself (e.g. one batch without a positive), ``poison`` corrupts it
    _poison(x, y, spec.get("set_labels", []))
    _poison(x, y, spec.get("poison", []))
    return x, y


def write(spec: dict, folder: Path, split: int = 1) -> list[Path]:
    """Write the data set under ``folder``; returns the paths written (for hashing)."""
    x, y = generate(spec, split)
    backend = spec["backend"]
    name = spec["name"]
    if backend == "hdf5":
        return _write_hdf5(spec, folder, name, x, y)
    values = [
        protos.datum(x[i], int(y[i]) if np.isfinite(y[i]) else 0, as_float=spec.get("as_float", True))
        for i in range(len(x))
    ]
    keys = [b"%08d" % i for i in range(len(x))]
    path = folder / name
    if backend == "lmdb":
        import lmdb

        env = lmdb.open(str(path), map_size=1 << 30, subdir=True, lock=True)
        with env.begin(write=True) as txn:
            for k, v in zip(keys, values, strict=True):
                txn.put(k, v)
        env.close()
    elif backend == "leveldb":
        import plyvel

        db = plyvel.DB(str(path), create_if_missing=True, error_if_exists=True)
        with db.write_batch() as wb:
            for k, v in zip(keys, values, strict=True):
                wb.put(k, v)
        db.close()
    else:
        raise ValueError(f"unknown backend {backend!r}")
    return sorted(p for p in path.iterdir() if p.name != "lock.mdb" and not p.name.startswith("LOG"))


def _write_hdf5(spec: dict, folder: Path, name: str, x: np.ndarray, y: np.ndarray) -> list[Path]:
    import h5py

    files = spec.get("files", 1)
    label_top = spec.get("label_top", "label")
    (folder / "data").mkdir(exist_ok=True)
    bounds = np.linspace(0, len(x), files + 1).astype(int)
    written = []
    h5_paths = []
    for i in range(files):
        rel = f"data/{name}.h5" if files == 1 else f"data/{name}_{i}.h5"
        lo, hi = bounds[i], bounds[i + 1]
        labels = y[lo:hi]
        with h5py.File(folder / rel, "w") as f:
            f.create_dataset("data", data=x[lo:hi].astype(np.float32))
            f.create_dataset(label_top, data=labels.astype(np.float32))
        h5_paths.append(rel)
        written.append(folder / rel)
    listing = folder / f"{name}_h5.txt"
    listing.write_text("".join(p + "\n" for p in h5_paths))
    written.append(listing)
    return written


def write_mean(folder: Path, rel: str, shape: list[int], value: float, nan_at: int | None = None) -> Path:
    """A mean file (BlobProto) of constant ``value``, optionally NaN at one flat index."""
    mean = np.full(shape, value, dtype=np.float32)
    if nan_at is not None:
        mean.reshape(-1)[nan_at] = np.nan
    path = folder / rel
    path.write_bytes(protos.blob_proto(mean))
    return path
