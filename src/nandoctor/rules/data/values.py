"""Records whose values poison the first layer: NaN/inf, overflowing magnitudes, empty or constant records."""

from __future__ import annotations

from nandoctor.core.registry import Rule, register
from nandoctor.core.types import Bearing, Cause, Evidence, Location, Severity
from nandoctor.data.checks import OVERFLOW
from nandoctor.rules.data.common import clean_fix, per_record, source_name


@register
class NonFiniteRecord(Rule):
    """
    ## What it detects
    A record (LMDB/LevelDB Datum, HDF5 row, mean-subtracted image) holding NaN, +inf or -inf
    as the net sees it -- including doubles beyond FLT_MAX, which become inf when Caffe loads
    them as float. Each finding names the key (or file and row), counts and first positions,
    and the iteration whose batch first reads it.

    ## Why it leads to NaN
    Caffe copies the values into the data blob unchanged. Any arithmetic with NaN gives NaN,
    so the first layer's outputs, the loss and every gradient of that iteration are NaN, and
    the update writes NaN into the weights: from then on every iteration is NaN.

    ## How to fix
    Rebuild the data set without the record (``nandoctor scan-data SOURCE --clean OUT``) or
    repair it (``--replace-nonfinite 0``), and find the step of the pipeline that produced it.

    ## Example
    ``train_lmdb record 00000555: 12 NaN among 256 values; first read at iteration 17
    (batch 17 of 32, slot 11)`` -- the log shows ``loss = nan`` from iteration 17.
    """

    code = "NAN401"
    title = "Record holds NaN or infinite values"
    cause = Cause.BAD_INPUT
    bears = Bearing.RECORD
    severity = Severity.ERROR
    needs = ("data",)

    def check(self, facts):
        yield from per_record(self, facts, "nonfinite", "non-finite values")


@register
class OverflowRecord(Rule):
    """
    ## What it detects
    A record with finite values whose magnitude, after transform_param (``(x - mean) * scale``),
    exceeds sqrt(FLT_MAX) ~ 1.84e19.

    ## Why it leads to NaN
    The first layer's weight gradient is ``x * delta``, so one update moves the weights in
    proportion to ``x`` and the next forward pass computes terms in ``x**2``; beyond
    sqrt(FLT_MAX) that exceeds float32's 3.4e38 and becomes inf, then inf - inf = NaN in the
    softmax or the following update. Squaring layers (EuclideanLoss, BatchNorm, LRN) overflow
    on the forward pass itself.

    ## How to fix
    Drop or repair the records (``nandoctor scan-data SOURCE --clean OUT``); usually they are
    sensor glitches or uninitialised memory written into the data set.

    ## Example
    ``data/train.h5:data[420]: 36 of 256 values reach 1e+30``: the loss is still finite on
    the iteration that reads it and NaN on the next.
    """

    code = "NAN402"
    title = f"Record values overflow float32 in the first layer (|x| > {OVERFLOW:.3g})"
    cause = Cause.BAD_INPUT
    bears = Bearing.RECORD
    severity = Severity.ERROR
    needs = ("data",)

    def check(self, facts):
        yield from per_record(self, facts, "overflow", "overflowing values")


@register
class EmptyRecord(Rule):
    """
    ## What it detects
    A Datum with neither ``data`` nor ``float_data`` (or an HDF5 row with no values).

    ## Why it leads to NaN
    Caffe's DataTransformer reads ``float_data(i)`` for every pixel when ``data`` is empty:
    with no values it reads past the end of the message (garbage in a release build), which
    can be any bit pattern, NaN included -- or crash.

    ## How to fix
    Rebuild the data set without the record (``nandoctor scan-data SOURCE --clean OUT``).

    ## Example
    A conversion script that wrote a Datum before filling it.
    """

    code = "NAN404"
    title = "Record holds no values"
    cause = Cause.BAD_INPUT
    bears = Bearing.RECORD
    severity = Severity.ERROR
    needs = ("data",)

    def check(self, facts):
        yield from per_record(self, facts, "empty", "no values")


@register
class ConstantRecords(Rule):
    """
    ## What it detects
    Records whose values are all equal (blank images, zero-filled feature vectors).

    ## Why it leads to NaN
    On its own it does not; but a constant input has zero variance, which per-sample
    normalisation (MVN without enough eps, a custom normalize layer) divides by, and many
    constant records usually mean a broken conversion.

    ## How to fix
    Check the conversion that wrote them; drop them if they are not meant to be there.

    ## Example
    ``40 records are constant (first 00000012: all 784 values equal 0)``.
    """

    code = "NAN405"
    title = "Records with constant values"
    cause = Cause.BAD_INPUT
    bears = Bearing.RECORD
    severity = Severity.INFO
    needs = ("data",)

    def check(self, facts):
        for src in facts.data.sources:
            issues = [i for i in src.issues if i.kind == "constant"]
            if not issues:
                continue
            first = issues[0]
            yield self.finding(
                f"{source_name(src)}: {len(issues)} record(s) are constant (first {first.record}: {first.message})",
                Location(src.path, record=first.record),
                evidence=[
                    Evidence(f"{i.record}: {i.message}", Location(src.path, record=i.record), "data")
                    for i in issues[:10]
                ],
                fix=clean_fix(src, "the constant records"),
                culprit=source_name(src),
                data={"source": src.path, "count": len(issues), "records": [i.record for i in issues[:1000]]},
            )
