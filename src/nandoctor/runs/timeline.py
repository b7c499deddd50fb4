"""When a framework run went wrong, read from its logged scalars.

The onset is the first logged step where the loss, the gradient norm or the lr is
non-finite, or where the HF Trainer's ``logging_nan_inf_filter`` hid a NaN: with the
filter on, a non-finite step loss is replaced by the window's running mean, so once
every step of a window is NaN the logged loss is exactly 0.0 while ``grad_norm`` (the
last step's norm) is NaN. Under fp16 loss scaling a non-finite gradient norm is a
normal skipped step, not an onset; the scale itself is followed instead. Evaluation
passes have their own onset; a training loss that comes back to its baseline after a
non-finite value shows that the weights stayed finite.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from nandoctor.runs.record import EvalPoint, Point, RunLog

BASELINE_POINTS = 3


def bad(x: float | None) -> bool:
    return x is not None and not math.isfinite(x)


def ok(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


@dataclass
class RunTimeline:
    run: RunLog
    points: list[Point] = field(default_factory=list)
    amp: bool = False  # a loss scaler is at work: non-finite gradients are skipped steps
    masked: list[Point] = field(default_factory=list)  # steps whose NaN the Trainer's filter hid
    onset: Point | None = None  # first non-finite training point
    onset_reason: str = ""
    first_bad_lr: Point | None = None
    first_negative_lr: Point | None = None
    first_bad_eval: EvalPoint | None = None
    recovered: Point | None = None  # a finite loss near the baseline after the onset

    @property
    def before(self) -> list[Point]:
        """Training points before the onset (all of them when the run stayed finite)."""
        if self.onset is None:
            return self.points
        return [p for p in self.points if p.step < self.onset.step]

    @property
    def went_nonfinite(self) -> bool:
        return self.onset is not None or self.first_bad_eval is not None

    @property
    def onset_step(self) -> int | None:
        steps = [x.step for x in (self.onset, self.first_bad_eval, self.first_bad_lr) if x is not None]
        return min(steps) if steps else None

    def genuine(self, p: Point) -> bool:
        """A finite logged loss that is a real value: the filter's 0.0 for a window of NaN steps is not,
        but the mean it logs over a window's finite steps is."""
        return ok(p.loss) and not (p in self.masked and p.loss == 0.0)

    def finite_losses(self, points: list[Point] | None = None) -> list[float]:
        return [p.loss for p in self.finite_points(points)]

    def finite_points(self, points: list[Point] | None = None) -> list[Point]:
        return [p for p in (self.before if points is None else points) if ok(p.loss) and p not in self.masked]

    def baseline_loss(self) -> float | None:
        losses = self.finite_losses()
        return statistics.median(losses[:BASELINE_POINTS]) if losses else None

    def _growth_points(self, field_ok) -> list[Point]:
        """The points before the onset, and the onset itself when its logged value is genuine (under the
        NaN filter the onset's logged loss is the mean of its window's finite steps: the last real value)."""
        pts = [p for p in self.before if field_ok(p)]
        if self.onset is not None and self.onset in self.masked and field_ok(self.onset):
            pts.append(self.onset)
        return pts

    @staticmethod
    def _peak_over_base(pts: list[Point], value) -> tuple[float, Point] | None:
        """Largest value over the median of the first few (half the points, at most three)."""
        if len(pts) < 2:
            return None
        n = min(BASELINE_POINTS, max(1, len(pts) // 2))
        base = statistics.median(value(p) for p in pts[:n])
        if base <= 0:
            return None
        peak = max(pts[n:], key=value)
        return value(peak) / base, peak

    def loss_growth(self) -> tuple[float, Point] | None:
        """Largest finite loss before the onset over the baseline, and where it was logged; a single
        spike that the next point comes back from is a bad batch, not growth, and is left out."""
        pts = self._growth_points(lambda p: self.genuine(p))
        spikes = set(id(p) for p in self.spikes(pts))
        return self._peak_over_base([p for p in pts if id(p) not in spikes], lambda p: p.loss)

    def spikes(self, pts: list[Point] | None = None) -> list[Point]:
        """Finite losses 1000x the baseline with both neighbours within 10x of it."""
        pts = self.finite_points() if pts is None else pts
        base = self.baseline_loss()
        if not base or base <= 0:
            return []
        return [
            pts[i]
            for i in range(1, len(pts) - 1)
            if pts[i].loss >= 1e3 * base and pts[i + 1].loss <= 10 * base and pts[i - 1].loss <= 10 * base
        ]

    def grad_growth(self) -> tuple[float, Point] | None:
        return self._peak_over_base(self._growth_points(lambda p: ok(p.grad_norm)), lambda p: p.grad_norm)

    def lrs(self, points: list[Point] | None = None) -> list[Point]:
        return [p for p in (self.before if points is None else points) if p.lr is not None]

    def scales(self) -> list[Point]:
        return [p for p in self.points if ok(p.loss_scale)]


def _amp(run: RunLog) -> bool:
    if any(p.loss_scale is not None for p in run.points):
        return True
    return any(str(run.args.get(k)).lower() == "true" for k in ("fp16", "half_precision_backend_fp16")) or str(
        run.args.get("precision", "")
    ).startswith("16")


def _hidden_by_filter(run: RunLog, p: Point, seen_nonzero: bool) -> bool:
    if not run.nan_filter or not ok(p.loss):
        return False
    return bad(p.grad_norm) or (p.loss == 0.0 and seen_nonzero and p.grad_norm is None)


def build_timeline(run: RunLog) -> RunTimeline:
    tl = RunTimeline(run, points=list(run.points), amp=_amp(run))
    seen_nonzero = False
    for p in tl.points:
        if tl.onset is None:
            if bad(p.loss):
                tl.onset, tl.onset_reason = p, f"loss = {p.loss}"
            elif _hidden_by_filter(run, p, seen_nonzero) and not (tl.amp and p.loss != 0.0):
                tl.onset, tl.onset_reason = (
                    p,
                    (
                        f"grad_norm = {p.grad_norm} beside a logged loss of {p.loss:g} (logging_nan_inf_filter hid the NaN loss)"
                    ),
                )
            elif bad(p.grad_norm) and not tl.amp:
                tl.onset, tl.onset_reason = p, f"grad_norm = {p.grad_norm}"
            elif bad(p.lr):
                tl.onset, tl.onset_reason = p, f"learning rate = {p.lr}"
        if _hidden_by_filter(run, p, seen_nonzero) and not (tl.amp and p.loss != 0.0):
            tl.masked.append(p)
        if ok(p.loss) and p.loss != 0.0:
            seen_nonzero = True
        if tl.first_bad_lr is None and bad(p.lr):
            tl.first_bad_lr = p
        if tl.first_negative_lr is None and ok(p.lr) and p.lr < 0:
            tl.first_negative_lr = p
    tl.first_bad_eval = next((e for e in run.evals if e.nonfinite()), None)
    base = tl.baseline_loss()
    if tl.onset is not None and base is not None:
        after = [p for p in tl.points if p.step > tl.onset.step and ok(p.loss) and p not in tl.masked]
        tl.recovered = next((p for p in after if abs(p.loss) <= 10 * abs(base) + 1e-12 and not bad(p.grad_norm)), None)
    return tl
