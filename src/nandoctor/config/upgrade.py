"""How Caffe upgrades V0 (2013) and V1 (``layers { type: ENUM }``) layers to V2, as facts.

Nothing is rewritten: the net model keeps the file's own messages and scalars, so
findings and fixes still point at the text the user wrote. This module only answers
"what would Caffe's upgrade call this": the V2 type name, and for V0 layers which
``*_param`` message (and field name) each flat V0 field becomes. The mapping was checked
against Caffe's own upgraded files (``zoo/upgraded/*.v2.prototxt``).
"""

from __future__ import annotations

from nandoctor.config.schema import ENUMS, V1_TYPE_TO_V2
from nandoctor.config.tree import Field, Message

# V0 type strings (UpgradeV0LayerType). "padding" has no V2 type: Caffe folds it into
# the convolution/pooling that consumes it.
V0_TYPE_TO_V2 = {
    "accuracy": "Accuracy", "bnll": "BNLL", "concat": "Concat", "conv": "Convolution", "data": "Data",
    "dropout": "Dropout", "euclidean_loss": "EuclideanLoss", "flatten": "Flatten", "hdf5_data": "HDF5Data",
    "hdf5_output": "HDF5Output", "im2col": "Im2col", "images": "ImageData", "infogain_loss": "InfogainLoss",
    "innerproduct": "InnerProduct", "lrn": "LRN", "multinomial_logistic_loss": "MultinomialLogisticLoss",
    "pool": "Pooling", "relu": "ReLU", "sigmoid": "Sigmoid", "softmax": "Softmax",
    "softmax_loss": "SoftmaxWithLoss", "split": "Split", "tanh": "TanH", "window_data": "WindowData",
}  # fmt: skip

_V1_NUMBER_TO_NAME = {n: name for name, n in ENUMS.get("V1LayerParameter.LayerType", {}).items()}

_TRANSFORM = {"scale": "scale", "meanfile": "mean_file", "cropsize": "crop_size", "mirror": "mirror"}
_FILLERS_AND_SHAPE = {
    "num_output": "num_output", "biasterm": "bias_term", "weight_filler": "weight_filler",
    "bias_filler": "bias_filler",
}  # fmt: skip

# V2 type -> {V0 field: (V2 *_param field, V2 field name)}
V0_FIELD_MAP: dict[str, dict[str, tuple[str, str]]] = {
    "Convolution": {
        **{k: ("convolution_param", v) for k, v in _FILLERS_AND_SHAPE.items()},
        "pad": ("convolution_param", "pad"), "kernelsize": ("convolution_param", "kernel_size"),
        "group": ("convolution_param", "group"), "stride": ("convolution_param", "stride"),
    },
    "InnerProduct": {k: ("inner_product_param", v) for k, v in _FILLERS_AND_SHAPE.items()},
    "Pooling": {
        "kernelsize": ("pooling_param", "kernel_size"), "stride": ("pooling_param", "stride"),
        "pad": ("pooling_param", "pad"), "pool": ("pooling_param", "pool"),
    },
    "Dropout": {"dropout_ratio": ("dropout_param", "dropout_ratio")},
    "LRN": {
        "local_size": ("lrn_param", "local_size"), "alpha": ("lrn_param", "alpha"),
        "beta": ("lrn_param", "beta"), "k": ("lrn_param", "k"),
    },
    "Data": {
        "source": ("data_param", "source"), "batchsize": ("data_param", "batch_size"),
        "rand_skip": ("data_param", "rand_skip"),
        **{k: ("transform_param", v) for k, v in _TRANSFORM.items()},
    },
    "HDF5Data": {"source": ("hdf5_data_param", "source"), "batchsize": ("hdf5_data_param", "batch_size")},
    "ImageData": {
        "source": ("image_data_param", "source"), "batchsize": ("image_data_param", "batch_size"),
        "rand_skip": ("image_data_param", "rand_skip"), "shuffle_images": ("image_data_param", "shuffle"),
        "new_height": ("image_data_param", "new_height"), "new_width": ("image_data_param", "new_width"),
        **{k: ("transform_param", v) for k, v in _TRANSFORM.items()},
    },
    "WindowData": {
        "source": ("window_data_param", "source"), "batchsize": ("window_data_param", "batch_size"),
        "det_fg_threshold": ("window_data_param", "fg_threshold"),
        "det_bg_threshold": ("window_data_param", "bg_threshold"),
        "det_fg_fraction": ("window_data_param", "fg_fraction"),
        "det_context_pad": ("window_data_param", "context_pad"),
        "det_crop_mode": ("window_data_param", "crop_mode"),
        **{k: ("transform_param", v) for k, v in _TRANSFORM.items()},
    },
    "Concat": {"concat_dim": ("concat_param", "concat_dim")},
}  # fmt: skip


def v1_type_name(value: object) -> str:
    """V2 name of a V1 ``type`` value (enum identifier, enum number, or already a string)."""
    if isinstance(value, int):
        value = _V1_NUMBER_TO_NAME.get(value, str(value))
    text = str(value)
    return V1_TYPE_TO_V2.get(text, text)


def v0_type_name(value: object) -> str:
    text = str(value)
    return V0_TYPE_TO_V2.get(text, text)


def v0_params(v2_type: str, inner: Message) -> dict[str, Message]:
    """The ``*_param`` messages Caffe's upgrade builds from a V0 layer's flat fields.

    The synthesised messages hold the *original* Field values (Scalars keep their file
    positions), renamed to the V2 field names, so edits computed on them hit the file.
    """
    mapping = V0_FIELD_MAP.get(v2_type, {})
    out: dict[str, Message] = {}
    for f in inner.fields:
        target = mapping.get(f.name)
        if target is None:
            continue
        param, name = target
        msg = out.setdefault(param, Message(start=inner.start, end=inner.end))
        msg.fields.append(Field(name, f.value, f.name_pos, f.after_name))
    return out


def add_field(msg: Message, name: str, source: Field) -> None:
    """Append ``source`` (keeping its position) to ``msg`` under another name."""
    msg.fields.append(Field(name, source.value, source.name_pos, source.after_name))
