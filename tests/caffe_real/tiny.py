"""Tiny real-Caffe runs for the tests: copy a fixture run folder, write its data, run Caffe, keep the log.

Every run is a few iterations of a few-layer net on a handful of records (well under a second of
Caffe on one core). Data is generated here with h5py / py-lmdb, seeded, never downloaded.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nandoctor.data.datum import encode_datum

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "caffe_real"
TIMEOUT = 120.0  # seconds; a tiny run takes well under one


@dataclass
class CaffeRun:
    folder: Path
    log: Path
    returncode: int

    @property
    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def lines(self, needle: str) -> list[str]:
        return [line for line in self.text.splitlines() if needle in line]


def copy_fixture(name: str, dest: Path, solver_extra: str = "", solver_text: str | None = None) -> Path:
    """The fixture run ``name`` copied to ``dest``; ``solver_extra`` lines are appended to its solver
    (or ``solver_text`` replaces it)."""
    shutil.copytree(FIXTURES / name, dest)
    solver = dest / "solver.prototxt"
    if solver_text is not None:
        solver.write_text(solver_text)
    elif solver_extra:
        solver.write_text(solver.read_text() + solver_extra.strip() + "\n")
    return dest


def write_h5(folder: Path, data: np.ndarray, label: np.ndarray, name: str = "train") -> Path:
    """``<name>.h5`` with datasets data/label, and the list file ``<name>_h5.txt`` naming it."""
    import h5py

    with h5py.File(folder / f"{name}.h5", "w") as fh:
        fh.create_dataset("data", data=data.astype(np.float32))
        fh.create_dataset("label", data=label.astype(np.float32))
    (folder / f"{name}_h5.txt").write_text(f"{name}.h5\n")
    return folder / f"{name}.h5"


def write_float_lmdb(path: Path, rows: np.ndarray, labels: np.ndarray) -> Path:
    """An LMDB of float_data Datums (C = row length, H = W = 1), keys %08d in read order."""
    import lmdb

    env = lmdb.open(str(path), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for i, (row, label) in enumerate(zip(rows, labels, strict=True)):
            txn.put(b"%08d" % i, encode_datum(row.size, 1, 1, label=int(label), float_data=row))
    env.close()
    return path


def features(n: int, dim: int, seed: int, classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Separable rows: class k has its mean at +1 on feature k."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    rows = rng.normal(0, 0.3, (n, dim)).astype(np.float32)
    rows[np.arange(n), labels % dim] += 1.0
    return rows, labels


def train(caffe: Path, env: dict[str, str], folder: Path, *args: str, solver: str = "solver.prototxt",
          log: str = "train.log") -> CaffeRun:  # fmt: skip
    """``caffe train --solver=...`` in ``folder``, stdout and stderr into ``folder/log`` (as the corpus runs)."""
    out = folder / log
    with out.open("wb") as fh:
        proc = subprocess.run([str(caffe), "train", f"--solver={solver}", *args], cwd=folder, env=env,
                              stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT, timeout=TIMEOUT)  # fmt: skip
    return CaffeRun(folder, out, proc.returncode)


STEP_SCRIPT = """
import sys
import caffe
caffe.set_mode_cpu()
solver = caffe.get_solver(sys.argv[1])
for n in sys.argv[2:]:
    solver.step(int(n))
"""


def pycaffe_step(env: dict[str, str], folder: Path, *steps: int, solver: str = "solver.prototxt",
                 log: str = "train.log") -> CaffeRun:  # fmt: skip
    """A pycaffe driver as users write it: ``solver.step(n)`` for each n in ``steps``."""
    out = folder / log
    with out.open("wb") as fh:
        proc = subprocess.run([sys.executable, "-c", STEP_SCRIPT, solver, *map(str, steps)], cwd=folder, env=env,
                              stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT, timeout=TIMEOUT)  # fmt: skip
    return CaffeRun(folder, out, proc.returncode)


# ------------------------------------------------------------------ the data of the fixture runs
SQRT_BAD_ITERATION = 5  # the batch (of 2 rows) whose first value is negative


def sqrt_data(folder: Path, batches: int = 10, bad: int = SQRT_BAD_ITERATION) -> None:
    """``batches`` batches of positive rows for ``sqrt``; batch ``bad`` holds one negative value."""
    rng = np.random.default_rng(11)
    rows = np.abs(rng.normal(1.0, 0.5, (2 * batches, 4))) + 0.1
    rows[2 * bad, 0] = -1.0
    label = rows.sum(axis=1, keepdims=True)
    write_h5(folder, rows, label)


def explode_data(folder: Path) -> None:
    """One batch of 4 rows with raw targets of order 10 for ``explode``."""
    rng = np.random.default_rng(23)
    rows = rng.normal(0.0, 1.0, (4, 6))
    label = 10.0 * rng.normal(0.0, 1.0, (4, 1))
    write_h5(folder, rows, label)
