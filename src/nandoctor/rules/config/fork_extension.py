"""NAN003: a field that only a well-known fork of Caffe defines."""

from __future__ import annotations

from nandoctor.config import validate
from nandoctor.core.registry import register
from nandoctor.core.types import Severity
from nandoctor.rules.config._schema_rule import SchemaRule


@register
class ForkExtensionField(SchemaRule):
    """
    ## What it detects
    A field BVLC Caffe does not have but a well-known fork adds: SSD's solver `eval_type` /
    `ap_version` and layer `prior_box_param`..., py-faster-rcnn's `smooth_l1_loss_param` /
    `roi_pooling_param`, SegNet's `bn_param` / `upsample_param` / `class_weighting`, the
    BatchNorm fillers of the cifar BN fork, NVCaffe and Intel Caffe solver fields. Reported
    once per field (with the number of places) as information, never as an error.

    ## Why it leads to NaN
    It does not by itself: the fork that defines the field reads it. It matters for the
    diagnosis because BVLC Caffe rejects the file, and because the fork's own layers and
    solver options (warm-up, loss scaling, class weights) follow rules of that fork.

    ## How to fix
    Run the file with the fork it was written for, or remove the fork's layers and fields
    to run it with BVLC Caffe.

    ## Example
    `eval_type: "detection"` in a solver: fine for weiliu89/caffe (SSD), rejected by BVLC Caffe.
    """

    code = validate.FORK_EXTENSION
    title = "Field added by a fork of Caffe"
    severity = Severity.INFO
