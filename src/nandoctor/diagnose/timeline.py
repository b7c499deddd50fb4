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
    train = [p for p in seg.train if not p.final]
    first_bad = first_nonfinite_point(seg)
    first_nonfinite = first_bad[1].iteration if first_bad else None
    tests_bad = [t.iteration for t in seg.tests if _bad(t.loss) or any(_bad(o.value) for o in t.outputs)]
    lrs = [(p.iteration, p.value) for p in seg.lr]
    first_lr_bad = next((i for i, v in lrs if _bad(v)), None)
    seen = [i for i in (first_nonfinite, min(tests_bad, default=None), first_lr_bad) if i is not None]
    onset = min(seen) if seen else None
    before = [p for p in train if onset is None or p.iteration < onset]
    finite = [p for p in before if p.loss is not None and math.isfinite(p.loss)]
    finite_losses = [p.loss for p in finite]
    # a finite test pass also proves the weights were finite then
    finite_marks = [p.iteration for p in before] + [
        t.iteration for t in seg.tests if onset is not None and t.iteration < onset and t.iteration not in tests_bad
    ]
    return Timeline(
        has_log=True,
        seg=seg,
        segment=seg.index,
        first_display=train[0].iteration if train else None,
        last_display=train[-1].iteration if train else None,
        first_nonfinite=first_nonfinite,
        last_finite_before=max(finite_marks) if finite_marks else None,
        first_nonfinite_test=min(tests_bad) if tests_bad else None,
        first_nonfinite_lr=first_lr_bad,
        first_negative_lr=next((i for i, v in lrs if v is not None and v < 0), None),
        crashed=bool(seg.crashes),
        first_loss=finite_losses[0] if finite_losses else None,
        last_finite_loss=finite_losses[-1] if finite_losses else None,
        first_loss_at=(finite[0].line, finite[0].iteration) if finite else None,
        last_finite_loss_at=(finite[-1].line, finite[-1].iteration) if finite else None,
    )
