"""When things happened in a run: the iterations every cause is checked against.

A cause is only credible if it could have acted before the first non-finite value:
a bad record read after the NaN, or an lr that turns NaN later than the loss, cannot
be the reason. The timeline is read from the run (segment) that went non-finite, or
from the last run when none did.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nandoctor.log.columns import lr_arrays, train_arrays
from nandoctor.log.symptoms import first_nonfinite_point
from nandoctor.log.trace import Segment, Trace


def _bad(v: float | None) -> bool:
    return v is not None and not math.isfinite(v)


@dataclass(frozen=True, slots=True)
class Timeline:
    has_log: bool = False
    segment: int = 0
    first_display: int | None = None  # first displayed training iteration
    last_display: int | None = None
    first_nonfinite: int | None = None  # first displayed training iteration with a non-finite loss/output
    last_finite_before: int | None = None  # the last display or test pass before the onset that was finite
    first_nonfinite_test: int | None = None
    first_nonfinite_lr: int | None = None
    first_negative_lr: int | None = None
    crashed: bool = False
    first_loss: float | None = None
    last_finite_loss: float | None = None
    # (log line, iteration) of those two losses, for evidence
    first_loss_at: tuple[int, int] | None = None
    last_finite_loss_at: tuple[int, int] | None = None
    seg: Any = field(default=None, compare=False, repr=False)  # the Segment read, for the chain of events

    @property
    def went_nonfinite(self) -> bool:
        return self.first_nonfinite is not None or self.first_nonfinite_test is not None

    @property
    def onset(self) -> int | None:
        """The earliest iteration the log shows a non-finite value (train, test or lr)."""
        seen = [i for i in (self.first_nonfinite, self.first_nonfinite_test, self.first_nonfinite_lr) if i is not None]
        return min(seen) if seen else None

    @property
    def nan_at_start(self) -> bool:
        return self.first_nonfinite is not None and self.first_nonfinite == self.first_display

    def finite_through(self, iteration: int) -> bool:
        """The log shows the run healthy at and beyond ``iteration``: a prediction for it was wrong."""
        return (
            self.has_log
            and not self.went_nonfinite
            and self.first_nonfinite_lr is None
            and self.last_display is not None
            and iteration <= self.last_display
        )

    def window(self) -> tuple[int, int] | None:
        """Iterations whose batches can have made the first non-finite value: after the last
        finite display, up to the first non-finite one (a test pass counts too)."""
        end = self.onset
        if end is None:
            return None
        start = self.last_finite_before if self.last_finite_before is not None else 0
        return (min(start, end), end)

    def loss_growth(self) -> float | None:
        """How much the finite loss grew from the first display to the last finite one."""
        if self.first_loss is None or self.last_finite_loss is None or self.first_loss <= 0:
            return None
        return self.last_finite_loss / self.first_loss


def _segment_of_interest(trace: Trace) -> Segment | None:
    for seg in trace.segments:
        if first_nonfinite_point(seg) is not None or any(
            _bad(t.loss) or any(_bad(o.value) for o in t.outputs) for t in seg.tests
        ):
            return seg
    with_data = [s for s in trace.segments if s.train or s.lr]
    return with_data[-1] if with_data else (trace.segments[-1] if trace.segments else None)


def timeline(trace: Trace | None) -> Timeline:
    if trace is None:
        return Timeline()
    seg = _segment_of_interest(trace)
    if seg is None:
        return Timeline(has_log=True)
    # read from the columns: a long run has millions of displays, a point object each would not fit
    its, lines, losses, finals = train_arrays(seg.train)
    keep = ~finals
    its, lines, losses = its[keep], lines[keep], losses[keep]
    first_bad = first_nonfinite_point(seg)
    first_nonfinite = first_bad[1].iteration if first_bad else None
    tests_bad = [t.iteration for t in seg.tests if _bad(t.loss) or any(_bad(o.value) for o in t.outputs)]
    lr_its, lr_values, lr_none = lr_arrays(seg.lr)
    lr_bad = np.flatnonzero(~np.isfinite(lr_values) & ~lr_none)
    first_lr_bad = int(lr_its[lr_bad[0]]) if len(lr_bad) else None
    lr_negative = np.flatnonzero(lr_values < 0)
    seen = [i for i in (first_nonfinite, min(tests_bad, default=None), first_lr_bad) if i is not None]
    onset = min(seen) if seen else None
    before = np.ones(len(its), dtype=bool) if onset is None else its < onset
    finite = np.flatnonzero(before & np.isfinite(losses))
    # a finite test pass also proves the weights were finite then
    marks = [int(its[before].max())] if before.any() else []
    bad_passes = set(tests_bad)
    marks += [
        t.iteration for t in seg.tests if onset is not None and t.iteration < onset and t.iteration not in bad_passes
    ]
    first, last = (finite[0], finite[-1]) if len(finite) else (None, None)
    return Timeline(
        has_log=True,
        seg=seg,
        segment=seg.index,
        first_display=int(its[0]) if len(its) else None,
        last_display=int(its[-1]) if len(its) else None,
        first_nonfinite=first_nonfinite,
        last_finite_before=max(marks) if marks else None,
        first_nonfinite_test=min(tests_bad) if tests_bad else None,
        first_nonfinite_lr=first_lr_bad,
        first_negative_lr=int(lr_its[lr_negative[0]]) if len(lr_negative) else None,
        crashed=bool(seg.crashes),
        first_loss=float(losses[first]) if first is not None else None,
        last_finite_loss=float(losses[last]) if last is not None else None,
        first_loss_at=(int(lines[first]), int(its[first])) if first is not None else None,
        last_finite_loss_at=(int(lines[last]), int(its[last])) if last is not None else None,
    )
