"""How long ``nandoctor diagnose RUN_DIR`` takes on every corpus run, beside its floor, and how
often it names the expected cause (from the folder and from the log alone) and culprit.

The floor is reading the run folder's bytes (log, configs, data) once from the page cache:
no diagnosis can be faster than looking at its inputs. Figures are the best of 3 after a
warm-up (imports, page cache). Run: ``python bench/diagnose_bench.py [../shared/corpus/caffe-runs]``.
"""

from __future__ import annotations

import json
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
    print(
        f"{'run':5} {'MB':>6} {'floor ms':>9} {'diagnose ms':>12}  {'expected':18} {'folder':18} {'log alone':18} culprit"
    )
    total_floor = total = 0.0
    hits = {"folder": 0, "log": 0, "culprit": 0}
    for run in runs:
        exp = json.loads((run / "expected.json").read_text())
        want = exp["expected_cause"]
        want_culprit = (exp.get("culprit") or "").split(" (", 1)[0] or None
        size = _read_all(run) / 1e6
        floor = _best(lambda run=run: _read_all(run))
        took = _best(lambda run=run: diagnose(discover(run)))
        got = {mode: diagnose(discover(path))[0] for mode, path in (("folder", run), ("log", run / "train.log"))}
        names = {mode: (d.causes[0].cause.value if d.causes else d.verdict.value) for mode, d in got.items()}
        culprit = got["folder"].causes[0].culprit if got["folder"].causes else None
        for mode in ("folder", "log"):
            hits[mode] += names[mode] == want
        hits["culprit"] += culprit == want_culprit
        total_floor += floor
        total += took
        mark = {m: ("" if names[m] == want else " (x)") for m in names}
        print(
            f"{run.name:5} {size:6.2f} {floor * 1e3:9.2f} {took * 1e3:12.1f}  {want:18} "
            f"{names['folder'] + mark['folder']:18} {names['log'] + mark['log']:18} {culprit or '-'}"
            f"{'' if culprit == want_culprit else f' (expected {want_culprit})'}"
        )
    n = len(runs)
    print(
        f"cause ranked first: folder {hits['folder']}/{n}, log alone {hits['log']}/{n}; culprit {hits['culprit']}/{n}"
    )
    print(f"all {n} runs: diagnose {total:.2f} s (floor {total_floor:.3f} s), {total / n * 1e3:.0f} ms per run")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
