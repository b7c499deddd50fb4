"""How long ``nandoctor diagnose RUN_DIR`` takes on every corpus run, beside its floor.

The floor is reading the run folder's bytes (log, configs, data) once from the page cache:
no diagnosis can be faster than looking at its inputs. Figures are the best of 3 after a
warm-up (imports, page cache). Run: ``python bench/diagnose_bench.py [../shared/corpus/caffe-runs]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from nandoctor.diagnose.engine import diagnose
from nandoctor.diagnose.inputs import discover

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "caffe-runs"


def _best(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _read_all(folder: Path) -> int:
    n = 0
    for p in folder.rglob("*"):
        if p.is_file():
            n += len(p.read_bytes())
    return n


def main() -> int:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    runs = sorted(p for p in root.iterdir() if (p / "expected.json").is_file()) if root.is_dir() else []
    if not runs:
        print(f"no runs under {root}")
        return 1
    diagnose(discover(runs[0]))  # warm-up: imports, rule registry
    print(f"{'run':5} {'MB':>6} {'floor ms':>9} {'diagnose ms':>12} {'verdict':>12}  top cause")
    total_floor = total = 0.0
    for run in runs:
        size = _read_all(run) / 1e6
        floor = _best(lambda run=run: _read_all(run))
        took = _best(lambda run=run: diagnose(discover(run)))
        d, _g = diagnose(discover(run))
        top = d.causes[0].cause.value if d.causes else "-"
        total_floor += floor
        total += took
        print(f"{run.name:5} {size:6.2f} {floor * 1e3:9.2f} {took * 1e3:12.1f} {d.verdict.value:>12}  {top}")
    print(
        f"all {len(runs)} runs: diagnose {total:.2f} s (floor {total_floor:.3f} s), {total / len(runs) * 1e3:.0f} ms per run"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
