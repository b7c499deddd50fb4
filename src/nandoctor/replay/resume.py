"""Does a replay resumed from a snapshot read the batches the original run read?

A ``.solverstate`` holds the weights, the solver history and the iteration, but not where the
data readers were: a resumed Caffe starts every data layer at its first record again (and
HDF5Data at its first file). The original run at iteration ``i`` read records
``[i * per_iteration, (i + 1) * per_iteration)`` (modulo the source's size, the reader wraps);
the replay resumed at ``S`` reads at iteration ``i`` what the original read at ``i - S``. Both
agree for every iteration exactly when ``S * per_iteration`` is a multiple of the source's size
(the snapshot was taken at an epoch boundary, or the source is one batch). A failure made by one
batch is therefore reproduced by a resumed replay only from such a snapshot; from any other it
shows ``S`` iterations later or not at all.

``train_alignment(run, iteration) -> Alignment`` says which case a snapshot is; a source nandoctor
cannot count (shuffled, unreadable, a Python or fork data layer) makes it ``None`` (unknown).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nandoctor.core.types import InputError
from nandoctor.replay.locate import RunFiles


@dataclass(frozen=True, slots=True)
class SourceCount:
    layer: str | None
    records: int
    per_iteration: int  # batch_size * iter_size


@dataclass
class Alignment:
    sources: list[SourceCount] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # why some train source could not be counted

    def aligned(self, iteration: int) -> bool | None:
        """True when every train source reads the original's batches after resuming at ``iteration``;
        False when one does not; None when that cannot be told."""
        if any((iteration * s.per_iteration) % s.records for s in self.sources):
            return False
        if self.unknown or not self.sources:
            return None
        return True

    def shift_text(self, iteration: int) -> str:
        """What the replay resumed at ``iteration`` reads, for people."""
        off = [s for s in self.sources if (iteration * s.per_iteration) % s.records]
        if not off:
            return ""
        s = off[0]
        name = f"{s.layer} " if s.layer else ""
        return (f"the data layer {name}restarts at its first record ({s.records} records, {s.per_iteration} per "
                f"iteration), so from iteration {iteration} on the replay reads at iteration i the batch the "
                f"original read at iteration i - {iteration}")  # fmt: skip


def train_alignment(run: RunFiles) -> Alignment:
    """Count the records of every TRAIN data source of the run's solver (nothing is decoded)."""
    from nandoctor.data.netsources import specs_for_config
    from nandoctor.data.scan import plan_source

    out = Alignment()
    try:
        specs = specs_for_config(str(run.solver_path), root=str(run.cwd.resolve()), phases=("TRAIN",))
    except InputError as exc:
        out.unknown.append(f"cannot read the nets: {exc.message}")
        return out
    if not specs:
        out.unknown.append("no data source nandoctor can read")
    for spec in specs:
        sched = spec.schedule
        if sched.shuffle or sched.rand_skip:
            why = "shuffle is on (the order is random)" if sched.shuffle else "rand_skip skips a random count"
            out.unknown.append(f"{spec.layer}: {why}")
            continue
        if not sched.batch_size or sched.batch_size <= 0:
            out.unknown.append(f"{spec.layer}: batch_size unknown")
            continue
        plan = plan_source(spec, 1)
        if plan.error or not plan.total:
            out.unknown.append(f"{spec.layer}: {plan.error or 'empty source'}")
            continue
        out.sources.append(SourceCount(spec.layer, plan.total, sched.batch_size * max(1, sched.iter_size)))
    return out
