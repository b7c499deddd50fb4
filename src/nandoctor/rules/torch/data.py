"""NAN630/NAN631: the batch itself holds NaN/inf, or the step made it non-finite before the model."""

from __future__ import annotations

from nandoctor.core.registry import Rule, register
from nandoctor.core.types import Bearing, Cause, Evidence, Fix, Severity
from nandoctor.rules.torch.common import producer_evidence


@register
class TorchNonFiniteBatch(Rule):
    """
    ## What it detects
    A tensor of the batch passed to the guard contains NaN or inf. The finding names the
    batch rows and, when the batch carries an index field (``index``/``idx``) or the
    loop passes ``indices=``, the data set items.

    ## Why it leads to NaN
    Any arithmetic on NaN gives NaN and inf turns into NaN at the first inf - inf or
    0 * inf, so one bad item poisons the loss, every gradient and, after the step, all
    weights.

    ## How to fix
    Remove or repair the items (re-export them; guard the feature computation that
    divides by zero; filter them in the Dataset). The guard skipped the step.

    ## Example
    A CSV cell ``inf`` after a log-transform of 0, or a zero-variance feature
    normalised by its standard deviation.
    """

    code = "NAN630"
    title = "The batch contains NaN or inf"
    cause = Cause.BAD_INPUT
    bears = Bearing.GUARD
    severity = Severity.ERROR
    needs = ("torch",)

    def check(self, facts):
        f = facts.torch
        if not f.batch:
            return
        first = f.batch[0]
        rows = first.get("batch_indices", [])
        items = first.get("dataset_indices")
        where = f"rows {rows}" + (f" (data set items {items})" if items is not None else "")
        culprit = f"{first['path']}[{rows[0]}]" if rows else first["path"]
        if items:
            culprit += f" = dataset[{items[0]}]"
        yield self.finding(
            f"step {f.step}: {first['path']} has {first.get('nan', 0)} NaN and {first.get('inf', 0)} inf in {where}",
            evidence=[
                Evidence(
                    f"{b['path']} shape {b.get('shape')}: {b.get('nan', 0)} NaN, {b.get('inf', 0)} inf, "
                    f"batch rows {b.get('batch_indices', [])}, data set items {b.get('dataset_indices', '?')}",
                    kind="data",
                )
                for b in f.batch[:5]
            ],
            fix=Fix("repair or drop these items (or fix the transform that makes them); the step was skipped"),
            culprit=culprit,
            data={"confidence": 0.97, "batch_indices": rows, "dataset_indices": items},
        )


@register
class TorchInputTransformProducer(Rule):
    """
    ## What it detects
    The batch was finite, but the first NaN/inf was made inside the step's code before
    the model ran (a normalisation or feature transform in the training step).

    ## Why it leads to NaN
    The model receives NaN inputs exactly as if the data set held them.

    ## How to fix
    Make the transform safe (divide by ``std.clamp_min(eps)``, avoid ``log(0)``).

    ## Example
    ``x = (x - x.mean(0)) / x.std(0)`` on a batch where a feature is constant.
    """

    code = "NAN631"
    title = "A transform before the model produced the first NaN"
    cause = Cause.BAD_INPUT
    bears = Bearing.GUARD
    severity = Severity.WARNING
    needs = ("torch",)

    def check(self, facts):
        f = facts.torch
        if f.bad_batch or not f.forward or f.forward.get("where") != "input":
            return
        yield self.finding(
            f"step {f.step}: {f.forward.get('op')} made NaN/inf from the finite batch before the model ran",
            evidence=producer_evidence(f.forward),
            fix=Fix(f"make {f.forward.get('op')} safe for this batch (clamp its divisor/argument)", safe=False),
            culprit=f"{f.forward.get('op')} (input transform)",
            data={"confidence": 0.7},
        )


@register
class TorchAbsurdBatchRows(Rule):
    """
    ## What it detects
    The failing step's batch is finite, but some of its rows hold values more than a
    thousand times larger than anything in the earlier batches the guard checked (it
    keeps each batch tensor's largest magnitude). The finding names the rows and, with
    ``guard.track(loader)``, an index field or ``(x, y, idx)`` batches, the data set items.

    ## Why it leads to NaN
    A record with a feature of 1e30 is finite, so a NaN scan passes it, but its square
    in a mean-squared error, its exponential in a softmax, or the gradient it produces
    overflows float32: the loss or the gradients become inf and then NaN. The op where
    that happens (MSELoss, a linear layer) is only where the bad value surfaced.

    ## How to fix
    Repair or drop the items (a unit mix-up, a sentinel such as 1e30 for "missing", a
    corrupt export); normalise or clip features in the Dataset.

    ## Example
    A CSV with ``1e30`` in the cells of missing measurements, fed to a regression
    trained with ``F.mse_loss``: the step with that row has an inf loss.
    """

    code = "NAN632"
    title = "The batch holds values absurd against earlier batches"
    cause = Cause.BAD_INPUT
    bears = Bearing.GUARD
    severity = Severity.ERROR
    needs = ("torch",)

    def check(self, facts):
        f = facts.torch
        if f.batch or not f.batch_absurd:
            return
        first = f.batch_absurd[0]
        rows = first.get("batch_indices", [])
        items = first.get("dataset_indices")
        culprit = f"{first['path']}[{rows[0]}]" if rows else first["path"]
        if items:
            culprit += f" = dataset[{items[0]}]"
        micro = f" (micro-batch {first['micro_batch']})" if "micro_batch" in first else ""
        yield self.finding(
            f"step {f.step}: {first['path']}{micro} rows {rows} hold |x| up to {max(first['row_absmax']):.3g}, "
            f"{first['ratio']:.3g}x the largest value of the {first['history_batches']} batches before",
            evidence=[
                Evidence(
                    f"{b['path']}: rows {b['batch_indices']} (data set items {b.get('dataset_indices', '?')}) "
                    f"max |x| {', '.join(f'{v:.3g}' for v in b['row_absmax'])}; earlier batches at most "
                    f"{b['history_absmax']:.3g}",
                    kind="data",
                )
                for b in f.batch_absurd[:5]
            ],
            fix=Fix(
                "repair or drop these items (a sentinel such as 1e30 for missing values, a unit mix-up), or clip / "
                "normalise the feature in the Dataset; the step was skipped"
            ),
            culprit=culprit,
            data={"confidence": 0.95, "batch_indices": rows, "dataset_indices": items, "ratio": first["ratio"]},
        )
