"""Records Caffe cannot use as they are: wrong shape, undecodable, bad labels."""

from __future__ import annotations

from nandoctor.core.registry import Rule, register
from nandoctor.core.types import Bearing, Cause, Severity
from nandoctor.rules.data.common import per_record


@register
class ShapeOutlier(Rule):
    """
    ## What it detects
    A record whose shape (channels, height, width; for HDF5 a file whose rows have other dims)
    differs from the data set's majority shape -- the shape the net was built for.

    ## Why it leads to NaN
    Caffe copies each record into a batch sized for the first one. A smaller record fails a
    CHECK; a larger one, or one with the same size in another layout, fills the blob with
    misplaced or stale values (HDF5: rows of another width are read across row boundaries),
    so training sees garbage that can include uninitialised memory.

    ## How to fix
    Rebuild the data set without the records (``nandoctor scan-data SOURCE --clean OUT``) or
    resize them (``convert_imageset -resize_height/-resize_width``, ``-check_size``).

    ## Example
    ``record 00000042: shape 3,32,30 differs from the 999 records of shape 3,32,32``.
    """

    code = "NAN403"
    delayed = True  # rows of another width are read across row boundaries: garbage that builds up
    title = "Record shape differs from the rest of the data set"
    cause = Cause.BAD_INPUT
    bears = Bearing.RECORD
    severity = Severity.ERROR
    needs = ("data",)

    def check(self, facts):
        yield from per_record(self, facts, "shape", "a different shape")


@register
class CorruptRecord(Rule):
    """
    ## What it detects
    Records that cannot be decoded: a Datum protobuf fails to parse, its size disagrees with
    channels*height*width, an encoded image is truncated or not an image, an HDF5 row cannot
    be read, an image list line is empty.

    ## Why it leads to NaN
    Caffe either aborts (``Check failed: cv_img.data``) or -- for truncated JPEGs, which
    OpenCV decodes partially with a warning -- trains on grey filler or, for a Datum whose
    float_data is short, on memory past the message: arbitrary values, NaN included.

    ## How to fix
    Rebuild without the records (``nandoctor scan-data SOURCE --clean OUT``) and re-encode
    the source images.

    ## Example
    ``record 00001234_cat.jpg: encoded Datum: truncated image (image file is truncated)``.
    """

    code = "NAN406"
    delayed = True  # a short record trains on memory past it: garbage that builds up
    title = "Record cannot be decoded"
    cause = Cause.BAD_INPUT
    bears = Bearing.RECORD
    severity = Severity.ERROR
    needs = ("data",)

    def check(self, facts):
        yield from per_record(self, facts, "corrupt", "an undecodable record")


@register
class BadLabel(Rule):
    """
    ## What it detects
    A class label (read by SoftmaxWithLoss, Accuracy, MultinomialLogisticLoss or InfogainLoss)
    that is not an integer, is negative (and not the ignore_label), or is >= the number of
    classes (num_output of the layer feeding the loss).

    ## Why it leads to NaN
    Caffe casts the label to int and only DCHECKs its range (release builds skip the check):
    the loss reads the probability outside its row (garbage, NaN, or ``-log(FLT_MIN)`` =
    87.3365) and the CPU backward writes the gradient outside it, corrupting memory.

    ## How to fix
    Relabel to 0..num_classes-1 or raise num_output; drop the records with
    ``nandoctor scan-data SOURCE --clean OUT``.

    ## Example
    ``record 00000007: label 10 is >= 10 classes for loss``.
    """

    code = "NAN407"
    delayed = True  # an out-of-range label reads and writes outside its row: harm that builds up
    title = "Label out of range for the loss layer"
    cause = Cause.BAD_INPUT
    bears = Bearing.RECORD
    severity = Severity.ERROR
    needs = ("data",)

    def check(self, facts):
        yield from per_record(self, facts, "label", "a bad label", "the records with bad labels")
