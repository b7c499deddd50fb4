"""``python3 -m tools.lab``: build the lab's runs with the real Caffe, or write one run whole.

python3 -m tools.lab list                       # the matrix: id, mechanism, shape, part
python3 -m tools.lab build [--only TEXT] [--jobs 2]
python3 -m tools.lab materialize RUN_ID DEST    # configs, data and plain train.log
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tools.lab import matrix


def write_index(runs_dir: Path) -> int:
    rows = ["id\tmechanism\tshape\tcause\tpart\toutcome\tfirst_nan_iteration\tcaffe_exit_code"]
    for d in sorted(p for p in runs_dir.iterdir() if (p / "expected.json").is_file()):
        e = json.loads((d / "expected.json").read_text())
        rows.append(
            "\t".join(
                str(x)
                for x in (
                    e["id"],
                    e["mechanism"],
                    e["shape"],
                    e["expected_cause"],
                    e["part"],
                    e["outcome"],
                    e["first_nan_iteration"],
                    e["caffe_exit_code"],
                )
            )
        )
    (runs_dir / "INDEX.tsv").write_text("\n".join(rows) + "\n")
    return len(rows) - 1


def build(only: str | None, jobs: int, out: Path) -> int:
    from tools.lab import runner

    specs = [s for s in matrix.runs() if only is None or only in s.id]
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="lab-work-"))
    rejected = []
    start = time.monotonic()

    def one(spec):
        t0 = time.monotonic()
        o = runner.build_one(spec, out, work)
        print(
            f"{'kept' if o.kept else 'REJECTED':8} {time.monotonic() - t0:5.1f}s {spec.id}"
            + ("" if o.kept else f": {o.reason}"),
            flush=True,
        )
        return o

    with ThreadPoolExecutor(jobs) as pool:
        for o in pool.map(one, specs):
            if not o.kept:
                rejected.append(f"{o.spec.id}\t{o.reason}")
    n = write_index(out)
    # a partial build (--only) keeps the other runs' rejections; a rebuilt run's old row goes
    built = {s.id for s in specs}
    path = out / "REJECTED.tsv"
    kept_rows = [r for r in (path.read_text().splitlines() if path.exists() else []) if r.split("\t")[0] not in built]
    path.write_text("".join(r + "\n" for r in sorted([*kept_rows, *rejected])))
    print(
        f"{len(specs) - len(rejected)} kept, {len(rejected)} rejected in {time.monotonic() - start:.0f}s; "
        f"{n} runs in {out}; logs of rejected runs in {work}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m tools.lab")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list")
    b = sub.add_parser("build")
    b.add_argument("--only")
    b.add_argument("--jobs", type=int, default=2)
    b.add_argument("--out", type=Path, default=None)
    m = sub.add_parser("materialize")
    m.add_argument("run_id")
    m.add_argument("dest", type=Path)
    args = ap.parse_args(argv)
    if args.cmd == "list":
        for s in matrix.runs():
            print(f"{s.id}\t{s.mechanism}\t{s.shape}\t{s.part}")
        return 0
    if args.cmd == "build":
        from tools.lab.runner import RUNS

        return build(args.only, args.jobs, args.out or RUNS)
    from tools.lab import runner

    print(runner.materialize(runner.RUNS / args.run_id, args.dest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
