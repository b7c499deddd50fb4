"""Problems of a data source as a whole: unreadable, missing files, mean file, odd lists, missing scale."""

from __future__ import annotations

from nandoctor.core.registry import Rule, register
from nandoctor.core.types import Bearing, Cause, Evidence, Fix, Location, Severity
from nandoctor.rules.data.common import clean_fix, issue_data, per_record, read_text, source_name


def _each(facts, kind: str):
    for src in facts.data.sources:
        for issue in src.issues:
            if issue.kind == kind:
                yield src, issue


@register
class MissingFile(Rule):
    """
    ## What it detects
    An HDF5 file named in an HDF5Data source list, or an image named in an ImageData list, that
    does not exist or cannot be read (paths resolve from the run directory, as Caffe resolves
    them from its working directory; ``root_folder`` is prepended to image paths).

    ## Why it leads to NaN
    Caffe aborts when it reaches the file (``Failed opening HDF5 file``, ``Could not load``)
    -- often hours into training, when the list wraps to that entry. Not a NaN, but a dead
    run at a predictable iteration, reported here with the iteration that first reads it.

    ## How to fix
    Fix the path (run from the right directory, or ``--root``), or write a list without the
    entry: ``nandoctor scan-data LIST --clean OUT``.

    ## Example
    ``train_h5.txt:3: listed HDF5 file not found: data/train_3.h5; first read at iteration 32``.
    """

    code = "NAN409"
    title = "File named in a source list is missing"
    cause = Cause.BAD_INPUT
    bears = Bearing.RECORD
    severity = Severity.ERROR
    needs = ("data",)

    def check(self, facts):
        yield from per_record(self, facts, "missing_file", "a missing file", "the missing entries")


@register
class DuplicateListEntry(Rule):
    """
    ## What it detects
    A path listed twice in an HDF5 source list or an ImageData list.

    ## Why it leads to NaN
    It does not by itself; the duplicated records are read twice per epoch, which skews
    training towards them -- and if they are bad, doubles the damage. Usually a list built by
    concatenating lists by mistake.

    ## How to fix
    Remove the repeated lines (``nandoctor scan-data LIST --clean OUT`` keeps the first).

    ## Example
    ``train.txt:1041: images/cat_17.jpg already listed on line 17``.
    """

    code = "NAN408"
    title = "Duplicate entry in a source list"
    cause = Cause.BAD_INPUT
    bears = Bearing.RECORD
    severity = Severity.WARNING
    needs = ("data",)

    def check(self, facts):
        for src, issue in _each(facts, "duplicate"):
            yield self.finding(
                f"{source_name(src)}: {issue.message}",
                Location(src.path, line=issue.row, record=issue.record),
                evidence=[Evidence(issue.message, Location(src.path, line=issue.row), "data")],
                fix=clean_fix(src, "the repeated entries"),
                culprit=source_name(src),
                data=issue_data(src, issue),
            )


@register
class UnreadableSource(Rule):
    """
    ## What it detects
    A data source that cannot be read at all: missing, not the backend the net declares,
    a truncated or corrupt LMDB, a LevelDB locked by a running job, an empty list.

    ## Why it leads to NaN
    Caffe aborts at start (or, for a corrupt DB, when the cursor reaches the damage); a DB
    copied while being written can also hand out partially written records.

    ## How to fix
    Rebuild or re-copy the database; for a LevelDB in use by a training job, wait for it or
    scan a snapshot copy (``--snapshot``); set ``backend`` to the format on disk.

    ## Example
    ``truncated LMDB: data.mdb has 100000 bytes but its meta page says 1658880``.
    """

    code = "NAN410"
    title = "Data source cannot be read"
    cause = Cause.BAD_INPUT
    bears = Bearing.RECORD
    severity = Severity.ERROR
    needs = ("data",)

    def check(self, facts):
        for src, issue in _each(facts, "unreadable_source"):
            yield self.finding(
                f"{source_name(src)}: {issue.message}"
                + (f"; {read_text(issue, src)}" if issue.index is not None else ""),
                Location(src.path, record=issue.record),
                evidence=[Evidence(issue.message, Location(src.path), "data")],
                fix=Fix("Rebuild or re-copy the data source, or point the layer at a readable one."),
                culprit=source_name(src),
                data=issue_data(src, issue),
            )


@register
class MeanFileProblem(Rule):
    """
    ## What it detects
    A transform_param ``mean_file`` that is missing, not a BlobProto, holds NaN/inf, or whose
    size differs from the records' channels*height*width.

    ## Why it leads to NaN
    The mean is subtracted from every pixel of every record: one NaN in it makes that pixel
    NaN in every batch from iteration 0. A mean of another size fails Caffe's CHECK at start.

    ## How to fix
    Recompute the mean (``compute_image_mean``) from the training data set, or use
    ``mean_value``.

    ## Example
    ``mean_file mean.binaryproto holds 3 non-finite values (first at [0, 1, 2])``.
    """

    code = "NAN411"
    title = "Mean file is unreadable, non-finite or of the wrong size"
    cause = Cause.BAD_INPUT
    bears = Bearing.RECORD
    severity = Severity.ERROR
    needs = ("data",)

    def check(self, facts):
        for src, issue in _each(facts, "mean_file"):
            yield self.finding(
                f"{source_name(src)} ({src.layer}): {issue.message}",
                Location(src.path, record=issue.record),
                evidence=[Evidence(issue.message, None, "data")],
                fix=Fix("Recompute the mean file from the training set (compute_image_mean), or use mean_value."),
                culprit=f"{src.layer}.transform_param.mean_file" if src.layer else source_name(src),
                data=issue_data(src, issue),
            )
        for src in facts.data.sources:
            size = src.transform.get("mean_size")
            if not size or not src.majority_shape:
                continue
            dims = [int(d) for d in src.majority_shape.split(",") if d]
            count = 1
            for d in dims:
                count *= d
            if count != size:
                yield self.finding(
                    f"{source_name(src)} ({src.layer}): mean_file holds {size} values but the records are "
                    f"{src.majority_shape} = {count}: Caffe aborts (mean size check)",
                    Location(src.path),
                    fix=Fix("Recompute the mean file from this data set (compute_image_mean)."),
                    culprit=f"{src.layer}.transform_param.mean_file" if src.layer else source_name(src),
                    data={"source": src.path, "mean_size": size, "record_shape": src.majority_shape},
                )


@register
class OddListLine(Rule):
    """
    ## What it detects
    An ImageData list line Caffe misreads: no space (the whole line becomes the path and the
    label ``atoi`` of it), or a label that is not a number (``atoi`` makes it 0), or an HDF5
    list line holding several paths.

    ## Why it leads to NaN
    Silent relabelling to 0 skews training without an error; lines with spaces in paths
    break into wrong paths. Usually a sign the list was written by another tool's format.

    ## How to fix
    Write ``path label`` lines with an integer label, paths without spaces (or split at the
    last space, as Caffe since rc4 does).

    ## Example
    ``train.txt:12: label 'cat' is not a number: Caffe's atoi makes it 0``.
    """

    code = "NAN413"
    title = "List line Caffe misreads"
    cause = Cause.BAD_INPUT
    bears = Bearing.RECORD
    severity = Severity.WARNING
    needs = ("data",)

    def check(self, facts):
        for src, issue in _each(facts, "list_line"):
            yield self.finding(
                f"{issue.record or source_name(src)}: {issue.message}",
                Location(src.path, line=issue.row, record=issue.record),
                evidence=[Evidence(issue.message, Location(src.path, line=issue.row), "data")],
                fix=Fix("Write `path label` lines with an integer label and no spaces in paths."),
                culprit=source_name(src),
                data=issue_data(src, issue),
            )


@register
class ColourMismatch(Rule):
    """
    ## What it detects
    ImageData images stored in gray while the layer reads colour (``is_color: true``) or the
    other way round.

    ## Why it leads to NaN
    It does not: OpenCV converts them. It is reported because a mixed data set often means
    a mixed-up source, and the converted images carry less information than expected.

    ## How to fix
    Set ``is_color`` to match the data, or convert the images.

    ## Example
    ``train.txt: 12 gray images read with is_color: true``.
    """

    code = "NAN414"
    title = "Image colour differs from is_color"
    cause = Cause.BAD_INPUT
    bears = Bearing.RECORD
    severity = Severity.INFO
    needs = ("data",)

    def check(self, facts):
        for src in facts.data.sources:
            issues = [i for i in src.issues if i.kind == "color"]
            if issues:
                yield self.finding(
                    f"{source_name(src)}: {len(issues)} image(s) {issues[0].message} (first {issues[0].file})",
                    Location(src.path, line=issues[0].row),
                    culprit=source_name(src),
                    data={"source": src.path, "count": len(issues)},
                )


@register
class MissingScale(Rule):
    """
    ## What it detects
    8-bit data (0..255) that reaches the net unscaled: no transform_param ``scale``, no mean,
    and no Power/Scale/BatchNorm layer right after the data layer.

    ## Why it leads to NaN
    Inputs 255 times larger than a net initialised and tuned for 0..1 give 255-times larger
    activations and gradients in the first layer: with a learning rate chosen for scaled
    inputs the first updates overshoot and the loss diverges to inf/NaN.

    ## How to fix
    Add ``transform_param { scale: 0.00390625 }`` (1/256) to the data layer, or subtract a
    mean (``mean_value``/``mean_file``), or lower the learning rate accordingly.

    ## Example
    ``train_lmdb: uint8 values 0..255 reach the net unscaled (no scale, no mean)``.
    """

    code = "NAN412"
    title = "Pixel data without scale"
    cause = Cause.BAD_INPUT
    bears = Bearing.RECORD
    severity = Severity.WARNING
    needs = ("data",)

    def check(self, facts):
        for src in facts.data.sources:
            t = src.transform
            if src.layer is None:  # a source given without its net: how it is transformed is unknown
                continue
            if t.get("scale", 1.0) != 1.0 or t.get("mean") or t.get("rescaled_by") or src.value_max is None:
                continue
            kinds = set((src.value_kind or "").split("/"))
            eight_bit = bool(kinds & {"uint8", "encoded", "image"})
            looks_like_pixels = "float" in kinds and (src.raw_min or 0) >= 0 and 200 < src.value_max <= 255
            if not (eight_bit and src.value_max > 1) and not looks_like_pixels:
                continue
            yield self.finding(
                f"{source_name(src)}: values {src.value_min:g}..{src.value_max:g} reach the net unscaled "
                f"(no transform_param scale, no mean{', layer ' + src.layer if src.layer else ''})",
                Location(src.path),
                evidence=[
                    Evidence(
                        f"value range {src.value_min:g}..{src.value_max:g} over {src.records} records",
                        Location(src.path),
                        "data",
                    )
                ],
                fix=Fix(
                    "Add `transform_param { scale: 0.00390625 }` to the data layer (or subtract a mean).", safe=False
                ),
                culprit=f"{src.layer}.transform_param.scale" if src.layer else source_name(src),
                data={"source": src.path, "min": src.value_min, "max": src.value_max},
            )


@register
class IncompleteScan(Rule):
    """
    ## What it detects
    A scan that stopped before the end of a source (Ctrl-C, a crashed reader, ``--shard``).

    ## Why it leads to NaN
    It does not; it says that records after this point were not checked, so "no bad record
    found" is only true for the part scanned.

    ## How to fix
    Run the scan to the end, or merge every shard's report with ``--merge``.

    ## Example
    ``train_lmdb: scanned 412000 of 1000000 records (interrupted)``.
    """

    code = "NAN415"
    title = "Data scan incomplete"
    cause = Cause.BAD_INPUT
    bears = Bearing.RECORD
    severity = Severity.INFO
    needs = ("data",)

    def check(self, facts):
        for src in facts.data.sources:
            if src.complete and (src.total is None or src.records >= src.total):
                continue
            why = "stopped early: interrupted or unreadable" if not src.complete else "partial scan (shard)"
            yield self.finding(
                f"{source_name(src)}: scanned {src.records} of {src.total} records ({why})",
                Location(src.path),
                culprit=source_name(src),
                data={"source": src.path, "records": src.records, "total": src.total},
            )
