"""How often nandoctor's diagnosis is right on the lab's real Caffe runs, the tuning and the held-out
parts apart, per cause and per log shape, in three modes:

- ``folder``: the run folder whole (configs, data regenerated from the run's spec, train.log);
- ``log``: train.log alone;
- ``excerpt``: what a user pastes into a forum: only the Iteration / loss / output lines around
  the onset (or the last ones of a healthy run, or the abort), glog prefixes stripped.

Figures: top-1 cause, true cause in the top two, culprit named (every part of the run's culprit
appears in the first answer's culprit, among right answers), first non-finite iteration right,
false alarms on healthy runs (a cause named for a run that trained fine), and how often answers
given with confidence >= 0.8 are right. The floor each figure is read against is the share a
constant answer gets (the most common cause in that part).

Run: ``python3 bench/accuracy.py [--modes folder,log,excerpt] [--part tune|heldout] [--json]``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import tempfile
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "tools" / "lab" / "runs"
MODES = ("folder", "log", "excerpt")
CONFIDENT = 0.8

_PREFIX = re.compile(r"^[IWEF]\d{4}(?:\d{4})? \d\d:\d\d:\d\d\.\d+\s+\d+ [^\]]*\] ?")
_KEEP = re.compile(r"Iteration \d+|Train net output|Test net output|Check failed|Testing net")
_BAD = re.compile(r"= (?:-?nan|-?inf)\b", re.I)


def excerpt(log: str, expected: dict, before: int = 12, after: int = 6) -> str:
    """The lines a user would paste: around the first non-finite value, or the end of the run."""
    lines = [_PREFIX.sub("", ln) for ln in log.splitlines()]
    kept = [ln for ln in lines if _KEEP.search(ln)]
    onset = next((i for i, ln in enumerate(kept) if _BAD.search(ln) or "Check failed" in ln), None)
    if onset is None:
        return "\n".join(kept[-(before + after) :]) + "\n"
    return "\n".join(kept[max(0, onset - before) : onset + after]) + "\n"


def target(run_id: str, mode: str, tmp: Path) -> Path:
    """What nandoctor is given in one mode: the folder, the log, or an excerpt of it. ``thin`` (for
    calibration only) is the thinnest paste: the last line before the onset and the onset."""
    sys.path.insert(0, str(ROOT))
    from tools.lab import runner

    run = RUNS / run_id
    if mode == "folder":
        return runner.materialize(run, tmp / run_id)
    expected = json.loads((run / "expected.json").read_text())
    log = gzip.decompress((run / "train.log.gz").read_bytes()).decode()
    if mode == "log":
        text = log
    elif mode == "thin":
        text = excerpt(log, expected, before=1, after=1)
    else:
        text = excerpt(log, expected)
    out = tmp / ("train.log" if mode == "log" else "excerpt.txt")
    out.write_text(text)
    return out


def answer(run_id: str, mode: str) -> dict:
    """Diagnose one lab run in one mode; returns the plain facts the tables count."""
    from nandoctor.diagnose.engine import diagnose
    from nandoctor.diagnose.inputs import discover

    with tempfile.TemporaryDirectory(prefix="acc-") as tmp:
        try:
            d, _ = diagnose(discover(target(run_id, mode, Path(tmp))))
        except Exception as exc:  # a crash is a wrong answer, and the table says so
            return {
                "id": run_id,
                "mode": mode,
                "causes": [],
                "verdict": f"error: {type(exc).__name__}: {exc}",
                "culprit": None,
                "confidence": None,
                "first": None,
            }
    return {
        "id": run_id,
        "mode": mode,
        "causes": [c.cause.value for c in d.causes],
        "verdict": d.verdict.value,
        "culprit": d.causes[0].culprit if d.causes else None,
        "confidence": d.causes[0].confidence if d.causes else None,
        "first": d.first_nonfinite_iteration,
    }


def _named(culprit: str | None, groups: list[list[str]]) -> bool:
    text = (culprit or "").lower()
    return bool(groups) and all(any(tok.lower() in text for tok in group) for group in groups)


def grade(expected: dict, got: dict) -> dict:
    want = expected["expected_cause"]
    causes = got["causes"]
    healthy = want == "healthy"
    top1 = (not causes and got["verdict"] == "healthy") if healthy else bool(causes) and causes[0] == want
    top2 = top1 if healthy else want in causes[:2]
    first_want = expected["first_nan_iteration"]
    if first_want is None:
        first_want = expected.get("first_nonfinite_test_iteration")
    return {
        "top1": top1,
        "top2": top2,
        "culprit": None
        if healthy or not top1 or not expected["culprit_tokens"]
        else _named(got["culprit"], expected["culprit_tokens"]),
        "first": None if first_want is None else got["first"] == first_want,
        "false_alarm": healthy and bool(causes),
        "confident": None if got["confidence"] is None or got["confidence"] < CONFIDENT else top1,
    }


def _rate(values: list) -> tuple[int, int]:
    vs = [v for v in values if v is not None]
    return sum(bool(v) for v in vs), len(vs)


def table(rows: list[tuple[dict, dict]], floor: bool = False) -> dict:
    grades = [g for _, g in rows]
    out = {k: _rate([g[k] for g in grades]) for k in ("top1", "top2", "culprit", "first", "confident")}
    healthy = [g for e, g in rows if e["expected_cause"] == "healthy"]
    out["false_alarm"] = (sum(g["false_alarm"] for g in healthy), len(healthy))
    common = Counter(e["expected_cause"] for e, _ in rows).most_common(1)
    # within one cause a constant answer is trivially right, so the floor is given for a whole part only
    out["floor_top1"] = (common[0][1], len(rows)) if floor and common else (0, 0)
    return out


def _fmt(pair: tuple[int, int]) -> str:
    k, n = pair
    return f"{k}/{n} {100 * k / n:5.1f}%" if n else "-"


def report(expected: dict[str, dict], answers: list[dict], parts: list[str], modes: list[str]) -> dict:
    result: dict = {}
    by = defaultdict(list)
    for a in answers:
        e = expected[a["id"]]
        by[(e["part"], a["mode"])].append((e, grade(e, a)))
    for part in parts:
        result[part] = {}
        for mode in modes:
            rows = by[(part, mode)]
            per_cause = defaultdict(list)
            per_shape = defaultdict(list)
            for e, g in rows:
                per_cause[e["expected_cause"]].append((e, g))
                per_shape[e["shape"]].append((e, g))
            result[part][mode] = {
                "all": table(rows, floor=True),
                "cause": {k: table(v) for k, v in sorted(per_cause.items())},
                "shape": {k: table(v) for k, v in sorted(per_shape.items())},
                "misses": sorted(e["id"] for e, g in rows if not g["top1"]),
            }
    return result


def print_report(result: dict, counts: dict) -> None:
    print(
        f"lab: {counts['runs']} runs ({counts['parts']}), {counts['mechanisms']} failing mechanisms, "
        f"{counts['healthy_kinds']} healthy kinds, {counts['shapes']} log shapes"
    )
    cols = ("top1", "top2", "culprit", "first", "false_alarm", "confident", "floor_top1")
    head = {
        "top1": "top-1",
        "top2": "top-2",
        "culprit": "culprit named",
        "first": "first non-finite",
        "false_alarm": "false alarms",
        "confident": "conf>=0.8 right",
        "floor_top1": "floor (constant)",
    }
    for part, modes in result.items():
        for mode, t in modes.items():
            print(f"\n== {part} / {mode}")
            print(f"{'':22}" + "".join(f"{head[c]:>18}" for c in cols))
            for label, row in [
                ("all", t["all"]),
                *[(f"cause {k}", v) for k, v in t["cause"].items()],
                *[(f"shape {k}", v) for k, v in t["shape"].items()],
            ]:
                print(f"{label:22}" + "".join(f"{_fmt(row[c]):>18}" for c in cols))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--part", choices=("tune", "heldout"), action="append")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--misses", action="store_true", help="list the runs whose top-1 answer is wrong")
    args = ap.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    parts = args.part or ["tune", "heldout"]
    expected = {}
    for run in sorted(p for p in RUNS.iterdir() if (p / "expected.json").is_file()):
        e = json.loads((run / "expected.json").read_text())
        if e["part"] in parts:
            expected[e["id"]] = e
    jobs = [(rid, mode) for rid in expected for mode in modes]
    with ProcessPoolExecutor(args.jobs) as pool:
        answers = list(pool.map(answer, *zip(*jobs, strict=True), chunksize=4))
    result = report(expected, answers, parts, modes)
    es = list(expected.values())
    counts = {
        "runs": len(es),
        "parts": ", ".join(f"{p} {sum(e['part'] == p for e in es)}" for p in parts),
        "mechanisms": len({e["mechanism"] for e in es if e["expected_cause"] != "healthy"}),
        "healthy_kinds": len({e["healthy_kind"] for e in es if e["expected_cause"] == "healthy"}),
        "shapes": len({e["shape"] for e in es}),
    }
    if args.json:
        print(json.dumps({"counts": counts, "results": result}, indent=1))
        return 0
    print_report(result, counts)
    if args.misses:
        for part, ms in result.items():
            for mode, t in ms.items():
                print(f"\nmisses {part}/{mode}: {' '.join(t['misses'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
