"""``nandoctor scan-data`` of a small LMDB as a whole process, beside a bare py-lmdb cursor process.

For a data set of a few hundred thousand records the scan is over in well under a second,
so the command's own start-up (imports, a process pool) decides what the user waits for.
Builds a 200,000-record LMDB of 1x8x8 uint8 Datums in a temporary directory (deleted
afterwards), then times, best of ``--repeat`` runs each, as separate processes:

* the floor: ``python -c`` opening the LMDB and walking a py-lmdb cursor over every value;
* ``python -m nandoctor scan-data DB --no-progress`` (default workers).

Target: the scan within 1.5x of the floor.

    python bench/scan_startup_bench.py [--records 200000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from data_bench import build_lmdb

FLOOR = """
import sys, lmdb
env = lmdb.open(sys.argv[1], readonly=True, lock=False)
n = size = 0
with env.begin() as txn:
    for _k, v in txn.cursor():
        n += 1
        size += len(v)
print(n, size)
"""


def best_of(cmd: list[str], repeat: int, env: dict) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="nandoctor-startup-bench-")
    env = dict(os.environ)
    # as installed: bytecode cached (in the temporary directory), not compiled anew by every start
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, "pycache")
    src = str(Path(__file__).resolve().parent.parent / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    try:
        db = os.path.join(tmp, "train_lmdb")
        build_lmdb(db, args.records)
        floor = best_of([sys.executable, "-c", FLOOR, db], args.repeat, env)
        command = [sys.executable, "-m", "nandoctor", "scan-data", db, "--no-progress"]
        best_of(command, 1, env)  # fills the bytecode cache
        scan = best_of(command, args.repeat, env)
        pooled = best_of([*command, "--workers", "2"], args.repeat, env)
        print(f"LMDB of {args.records:,} records, whole processes, best of {args.repeat}:")
        print(f"  floor (python + py-lmdb cursor over every value): {floor:6.3f} s")
        print(
            f"  nandoctor scan-data:                              {scan:6.3f} s  = {scan / floor:.2f}x the floor"
            f" (target <= 1.5x)"
        )
        print(f"  the same with a pool forced (--workers 2):        {pooled:6.3f} s  = {pooled / floor:.2f}x the floor")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
