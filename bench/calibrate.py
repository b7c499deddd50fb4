"""Fit the confidence of nandoctor's top cause on the lab's tuning runs, and show how well it is calibrated.

The diagnosis runs on every TUNE run (never a held-out one) in the three modes of
``bench/accuracy.py`` (folder, log, excerpt) plus ``thin``, the thinnest paste (the last line
before the onset and the onset), so that the fit sees evidence too thin to be sure of. Each answer
that names a cause is a sample: the ``Strength`` of its top cause (``diagnose/scoring.py``: lead
over the runner-up (its square root), log1p of the training displays read, whether the
configs were read) and whether the cause was right (a named cause on a healthy run is wrong).

Method: logistic regression (Newton's method, L2 penalty on the coefficients, not on the
intercept). The penalty is picked by leave-one-mechanism-out cross-validation on the tuning part:
each mechanism is predicted by a fit on the others, which is what the held-out part asks of the
map (mechanisms it has never seen). The script prints the constants to paste into scoring.py, the
reliability table of the final fit on the tuning part (in-sample) and of the cross-validated
predictions, and the share of answers given with confidence >= 0.8 that are right, beside the 95%
target. It writes nothing.

Run: ``python3 bench/calibrate.py [--jobs 2] [--json]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import accuracy  # noqa: E402

MODES = ("folder", "log", "excerpt", "thin")
FEATURES = ("lead", "displays", "configs")
PENALTIES = (0.01, 0.1, 0.3, 1.0, 3.0, 10.0)
BINS = (0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0001)
TARGET = 0.95


def sample(run_id: str, mode: str) -> dict | None:
    """One answer: the top cause's features and whether it was right; None when nothing was named."""
    from nandoctor.diagnose.engine import diagnose, rank
    from nandoctor.diagnose.inputs import discover

    expected = json.loads((accuracy.RUNS / run_id / "expected.json").read_text())
    with tempfile.TemporaryDirectory(prefix="cal-") as tmp:
        d, g = diagnose(discover(accuracy.target(run_id, mode, Path(tmp))))
        r = rank(g)
    if not d.causes or d.causes[0].cause.value == "unknown" or r.strength is None:
        return None
    got = {"causes": [c.cause.value for c in d.causes], "verdict": d.verdict.value, "first": None}
    got["culprit"] = d.causes[0].culprit
    got["confidence"] = d.causes[0].confidence
    right = accuracy.grade(expected, got)["top1"]
    return {
        "id": run_id,
        "mode": mode,
        "mechanism": expected["mechanism"],
        "features": r.strength.features(),
        "decisive": r.strength.decisive,
        "right": bool(right),
        "shipped": d.causes[0].confidence,
    }


def fit(x: np.ndarray, y: np.ndarray, penalty: float) -> np.ndarray:
    """Penalised logistic regression by Newton's method; returns (intercept, coefficients...)."""
    a = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(a.shape[1])
    reg = np.full(a.shape[1], penalty)
    reg[0] = 0.0
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(a @ w, -50, 50)))
        grad = a.T @ (p - y) + reg * w
        hess = (a * (p * (1 - p))[:, None]).T @ a + np.diag(reg) + 1e-9 * np.eye(a.shape[1])
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return w


def predict(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(w[0] + x @ w[1:], -50, 50)))


def cross_validated(x: np.ndarray, y: np.ndarray, groups: list[str], penalty: float) -> np.ndarray:
    out = np.zeros(len(y))
    for grp in sorted(set(groups)):
        held = np.array([g == grp for g in groups])
        out[held] = predict(fit(x[~held], y[~held], penalty), x[held])
    return out


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def reliability(p: np.ndarray, y: np.ndarray) -> list[dict]:
    rows = []
    for lo, hi in itertools.pairwise(BINS):
        sel = (p >= lo) & (p < hi)
        n = int(sel.sum())
        rows.append(
            {
                "bin": f"{lo:.2f}-{min(hi, 1.0):.2f}",
                "n": n,
                "mean_confidence": float(p[sel].mean()) if n else None,
                "right": float(y[sel].mean()) if n else None,
            }
        )
    return rows


def confident(p: np.ndarray, y: np.ndarray) -> tuple[int, int]:
    sel = p >= accuracy.CONFIDENT
    return int(y[sel].sum()), int(sel.sum())


def _print_table(title: str, p: np.ndarray, y: np.ndarray, modes: list[str]) -> None:
    print(f"\n{title}")
    print(f"{'confidence':>12}{'answers':>9}{'mean conf':>11}{'right':>8}")
    for row in reliability(p, y):
        mc = f"{row['mean_confidence']:.3f}" if row["n"] else "-"
        rt = f"{row['right']:.3f}" if row["n"] else "-"
        print(f"{row['bin']:>12}{row['n']:>9}{mc:>11}{rt:>8}")
    k, n = confident(p, y)
    share = f"{100 * k / n:.1f}%" if n else "-"
    print(f"confidence >= {accuracy.CONFIDENT}: {k}/{n} right = {share}   (target >= {100 * TARGET:.0f}%)")
    per = defaultdict(list)
    for i, m in enumerate(modes):
        per[m].append(i)
    for m in MODES:
        idx = np.array(per.get(m, []), dtype=int)
        if len(idx):
            k, n = confident(p[idx], y[idx])
            share = f"{100 * k / n:.1f}%" if n else "-"
            print(
                f"  {m:8} answers {len(idx):4}  mean conf {p[idx].mean():.3f}  right {y[idx].mean():.3f}  "
                f"conf>=0.8 {k}/{n} {share}"
            )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    ids = []
    for run in sorted(p for p in accuracy.RUNS.iterdir() if (p / "expected.json").is_file()):
        e = json.loads((run / "expected.json").read_text())
        if e["part"] == "tune":  # the held-out part is never read here
            ids.append(e["id"])
    jobs = [(rid, mode) for rid in ids for mode in MODES]
    with ProcessPoolExecutor(args.jobs) as pool:
        samples = [s for s in pool.map(sample, *zip(*jobs, strict=True), chunksize=4) if s is not None]
    x = np.array([[s["features"][k] for k in FEATURES] for s in samples], dtype=float)
    y = np.array([1.0 if s["right"] else 0.0 for s in samples])
    groups = [s["mechanism"] for s in samples]
    modes = [s["mode"] for s in samples]
    cv = {pen: cross_validated(x, y, groups, pen) for pen in PENALTIES}
    losses = {pen: log_loss(p, y) for pen, p in cv.items()}
    best = min(PENALTIES, key=lambda pen: (round(losses[pen], 4), -pen))
    w = fit(x, y, best)
    fitted = predict(w, x)
    shipped = np.array([s["shipped"] for s in samples])
    if args.json:
        print(
            json.dumps(
                {
                    "samples": len(samples),
                    "penalty": best,
                    "intercept": w[0],
                    "coef": dict(zip(FEATURES, w[1:].tolist(), strict=True)),
                    "cv_log_loss": losses,
                    "reliability_fit": reliability(fitted, y),
                    "reliability_cv": reliability(cv[best], y),
                    "answers": [{**s, "fitted": float(f)} for s, f in zip(samples, fitted, strict=True)],
                },
                indent=1,
            )
        )
        return 0
    print(
        f"tune part: {len(ids)} runs x {len(MODES)} modes -> {len(samples)} answers naming a cause, "
        f"{int(y.sum())} right"
    )
    print(
        "leave-one-mechanism-out log loss per L2 penalty: "
        + ", ".join(f"{pen:g}: {loss:.4f}" for pen, loss in losses.items())
        + f"  -> {best:g}"
    )
    print("\npaste into src/nandoctor/diagnose/scoring.py:")
    print(f"INTERCEPT = {w[0]:.3f}")
    print("COEF = {" + ", ".join(f'"{k}": {v:.3f}' for k, v in zip(FEATURES, w[1:], strict=True)) + "}")
    _print_table("reliability of the fitted map on the tuning part (in-sample)", fitted, y, modes)
    _print_table(
        "reliability, leave-one-mechanism-out (each mechanism predicted by a fit on the others)", cv[best], y, modes
    )
    hints = np.array([not s["decisive"] for s in samples])
    k, n = confident(fitted[hints], y[hints])
    print(
        f"\nanswers resting on hints alone (no vote >= PREDICTED): {int(hints.sum())}, right "
        f"{y[hints].mean():.3f}; given >= {accuracy.CONFIDENT} by the fitted map: {k}/{n} right "
        "(scoring.py caps them at HINTS_ONLY_CAP)"
    )
    _print_table("reliability of the confidences nandoctor ships now (scoring.py as it is)", shipped, y, modes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
