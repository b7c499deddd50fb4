"""The chain of events of one run, earliest first: what departed from normal, and when.

A diagnosis names the earliest departure that explains the rest. The links come from the
timeline's segment (the lr Caffe printed, the loss per display, clipping lines, aborts) and
from findings that say when they act (a config fact acts from iteration 0, a bad record from
the iteration its batch is read). ``chain_text`` writes them as "lr x10 at 30, 60 -> loss x50
from 60 -> -nan at 72", each link with the log lines that show it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nandoctor.core.types import Evidence, Location
from nandoctor.diagnose.timeline import Timeline
from nandoctor.log.columns import lr_arrays, train_arrays

LR_RISE = 1.5  # an lr this many times the one displayed before it has been raised, not noise
LOSS_DEPARTED = 10.0  # the finite loss ends this many times its best value so far: it blew up
LOSS_BASELINE = 2.0  # ... having last been within this factor of that best value at the departure


@dataclass(frozen=True, slots=True)
class Link:
    iteration: int
    kind: str  # config | record | lr | loss | clip | nonfinite | abort
    text: str
    evidence: tuple[Evidence, ...] = ()


def _ev(text: str, path: str, line: int | None) -> Evidence:
    return Evidence(text, Location(path, line) if line is not None else None, "log")


def lr_rises(tl: Timeline, path: str) -> Link | None:
    """The iterations where the printed lr jumped up (before the first non-finite value)."""
    seg = tl.seg
    if seg is None:
        return None
    onset = tl.onset
    its, values, _none = lr_arrays(seg.lr)
    if onset is not None:  # up to the first lr line past the onset
        past = np.flatnonzero(its > onset)
        if len(past):
            its, values = its[: past[0]], values[: past[0]]
    usable = np.isfinite(values) & (values > 0)  # a None is a NaN here
    with np.errstate(invalid="ignore"):
        up = usable[1:] & usable[:-1] & (values[1:] >= values[:-1] * LR_RISE)
    at_rows = np.flatnonzero(up) + 1
    if not len(at_rows):
        return None
    factors_all = values[at_rows] / values[at_rows - 1]
    # only the points shown are built (a schedule can rise at thousands of lr lines)
    pick = sorted({0, 1, len(at_rows) - 1} & set(range(len(at_rows)))) if len(at_rows) > 4 else range(len(at_rows))
    picked = {k: (seg.lr[int(at_rows[k])], float(factors_all[k])) for k in pick}
    rises = [picked[k] for k in sorted(picked)]
    factors = {round(float(f), 2) for f in factors_all}
    top = max(factors)
    factor = f"x{rises[0][1]:.3g}" if len(factors) == 1 else f"x{rises[0][1]:.3g}..x{top:.3g}"
    at = (
        ", ".join(str(p.iteration) for p, _f in rises)
        if len(at_rows) <= 4
        else (f"{rises[0][0].iteration}, {rises[1][0].iteration} ... {rises[-1][0].iteration}")
    )
    first, last = rises[0][0], rises[-1][0]
    evidence = tuple(_ev(f"Iteration {p.iteration}, lr = {p.text}", path, p.line) for p in (first, last))
    return Link(first.iteration, "lr", f"lr {factor} at {at} (to {last.text})", evidence[: 1 if first is last else 2])


def loss_departure(tl: Timeline, path: str) -> Link | None:
    """Where the finite loss left its best level for good, and by how much it grew after."""
    seg = tl.seg
    if seg is None:
        return None
    onset = tl.onset
    its, _lines, losses, finals = train_arrays(seg.train)
    with np.errstate(invalid="ignore"):
        keep = ~finals & np.isfinite(losses) & (losses > 0)
    if onset is not None:
        keep &= its < onset
    rows = np.flatnonzero(keep)
    if len(rows) < 2:
        return None
    kept = losses[rows]
    best = np.minimum.accumulate(kept)
    near = np.flatnonzero(kept <= LOSS_BASELINE * best)
    base = int(near[-1]) if len(near) else None
    if base is None or base >= len(rows) - 1 or kept[-1] < LOSS_DEPARTED * best[-1]:
        return None
    start, last = seg.train[int(rows[base])], seg.train[int(rows[-1])]
    growth = last.loss / start.loss
    evidence = (
        _ev(f"Iteration {start.iteration}, loss = {start.loss_text}", path, start.line),
        _ev(f"Iteration {last.iteration}, loss = {last.loss_text}", path, last.line),
    )
    return Link(
        start.iteration,
        "loss",
        f"loss x{growth:.3g} from {start.iteration} (to {last.loss_text} at {last.iteration})",
        evidence,
    )


def nonfinite(tl: Timeline, path: str) -> Link | None:
    seg = tl.seg
    if seg is None or tl.first_nonfinite is None:
        if tl.first_nonfinite_test is not None:
            return Link(tl.first_nonfinite_test, "nonfinite", f"non-finite TEST output at {tl.first_nonfinite_test}")
        return None
    at = np.flatnonzero(train_arrays(seg.train)[0] == tl.first_nonfinite)
    point = seg.train[int(at[0])] if len(at) else None
    if point is None:
        return None
    bad = [o for o in point.outputs if o.value is not None and not math.isfinite(o.value)]
    value = (
        point.loss_text if point.loss is not None and not math.isfinite(point.loss) else (bad[0].text if bad else "nan")
    )
    evidence = (_ev(f"Iteration {point.iteration}, loss = {point.loss_text}", path, point.line),)
    return Link(point.iteration, "nonfinite", f"{value} at {point.iteration}", evidence)


def clipping(tl: Timeline, path: str) -> Link | None:
    seg = tl.seg
    if seg is None or not seg.clips:
        return None
    first = seg.clips[0]
    norms = [c.norm for c in seg.clips if c.norm is not None]
    top = max(norms, default=None)
    it = first.iteration if first.iteration is not None else 0
    text = f"gradient clipping from {it} ({len(seg.clips)} lines"
    if top is not None and first.threshold is not None:
        text += f", L2 norm up to {top:.3g} > {first.threshold:g}"
    return Link(it, "clip", text + ")", (_ev("Gradient clipping: scaling down gradients", path, first.line),))


def aborts(tl: Timeline, path: str) -> list[Link]:
    seg = tl.seg
    if seg is None:
        return []
    last = tl.last_display if tl.last_display is not None else 0
    return [
        Link(last, "abort", f"{c.kind.replace('_', ' ')}: {c.message[:80]}", (_ev(c.message, path, c.line),))
        for c in seg.crashes[:2]
    ]


def build(tl: Timeline, path: str, early: list[Link] = ()) -> list[Link]:
    """Every link the log shows, plus the ``early`` ones findings contribute, in order of iteration."""
    links = [*early]
    for make in (lr_rises, loss_departure, clipping, nonfinite):
        link = make(tl, path)
        if link is not None:
            links.append(link)
    links.extend(aborts(tl, path))
    order = {"config": 0, "record": 1, "lr": 2, "clip": 3, "loss": 4, "nonfinite": 5, "abort": 6}
    return sorted(links, key=lambda ln: (ln.iteration, order.get(ln.kind, 9)))


def first(links: list[Link], kind: str) -> Link | None:
    return next((ln for ln in links if ln.kind == kind), None)


def chain_text(links: list[Link]) -> str:
    return " -> ".join(ln.text for ln in links)
