"""Which Caffe a file is written for: BVLC Caffe or one of the well-known forks.

The schema (``schema.FORK_EXTENSIONS``) knows the layer types and fields each fork adds;
this module adds the fork-only enum values and lr policies, names the forks by short
flavor ids (``--caffe ssd``), and decides how severe a fork-only construct is:

- no flavor given: the file's own fork constructs are information (the fork reads them);
  one finding per file says which fork it needs, as a warning (BVLC Caffe refuses it);
- ``--caffe FLAVOR`` given: constructs of that fork are information, constructs of any
  other fork (of any fork at all for ``--caffe bvlc``) are errors: the run breaks there.
"""

from __future__ import annotations

from nandoctor.config import schema
from nandoctor.core.types import Severity

BVLC = "bvlc"

# flavor id -> the fork's name as the schema spells it (None: BVLC Caffe itself)
FLAVORS: dict[str, str | None] = {
    BVLC: None,
    "ssd": "SSD (weiliu89/caffe)",
    "faster-rcnn": "py-faster-rcnn (rbgirshick/caffe-fast-rcnn)",
    "segnet": "SegNet (alexgkendall/caffe-segnet)",
    "sphereface": "SphereFace (wy1iu/sphereface)",
    "deeplab": "DeepLab (deeplab-public)",
    "intel": "Intel Caffe (intel/caffe)",
    "nvcaffe": "NVCaffe (NVIDIA/caffe)",
    "cifar-bn": "cifar BatchNorm fork (batch_norm_param fillers)",
    "other": "a Caffe fork with its own lr policies",
}
_ALIASES = {"weiliu89": "ssd", "py-faster-rcnn": "faster-rcnn", "fast-rcnn": "faster-rcnn", "caffe-segnet": "segnet",
            "intel-caffe": "intel", "nvidia": "nvcaffe", "nv-caffe": "nvcaffe", "caffe": BVLC}  # fmt: skip

# Enum values a fork adds to an enum of BVLC's caffe.proto: (enum type, value name) -> fork.
# Intel Caffe's layers choose its MKL engines; caffe-fast-rcnn keeps a V1 enum for ROI pooling.
_INTEL = FLAVORS["intel"]
FORK_ENUM_VALUES: dict[tuple[str, str], str] = {
    **{(enum, value): _INTEL for enum in schema.ENUMS if enum.endswith(".Engine") for value in ("MKL2017", "MKLDNN")},
    ("V1LayerParameter.LayerType", "ROI_POOLING"): FLAVORS["faster-rcnn"],
}

# lr policies only some forks compute (BVLC Caffe aborts with "Unknown learning rate policy")
FORK_LR_POLICIES: dict[str, str] = {
    "plateau": _INTEL,
    "multifixed": _INTEL,
    "stepearly": FLAVORS["other"],
    "sgdr": FLAVORS["other"],
}


def flavor_id(text: str) -> str:
    """The flavor id for a user's ``--caffe`` word (case and spelling variants accepted)."""
    word = text.strip().lower().replace("_", "-")
    word = _ALIASES.get(word, word)
    if word not in FLAVORS:
        raise ValueError(f"unknown Caffe flavor {text!r}; known: {', '.join(FLAVORS)}")
    return word


def flavor_of_fork(fork: str) -> str | None:
    """The flavor id of a fork name as the schema spells it."""
    return next((fid for fid, name in FLAVORS.items() if name == fork), None)


def fork_enum_value(enum: str, value: str) -> str | None:
    return FORK_ENUM_VALUES.get((enum, value))


def severity_for(fork: str, flavor: str | None) -> Severity:
    """How severe a construct of ``fork`` is for a file run on ``flavor`` (None: not said)."""
    if flavor is None or FLAVORS.get(flavor) == fork:
        return Severity.INFO
    return Severity.ERROR


def chosen_flavor(options: dict | None) -> str | None:
    """The flavor the user named (``options["caffe"]``), or None when they did not."""
    value = (options or {}).get("caffe")
    return flavor_id(value) if value else None
