"""Every Caffe layer type nandoctor knows, in one table; the other layer-type sets derive from it.

One row per type: its name, the V1 enum name (``V1LayerParameter.LayerType`` in
caffe.proto; None for types added after V1), the ``*_param`` field of LayerParameter it
reads, what it is (flags below), the shape function ``config.shapes`` infers its tops with
(by name), and the sign and bound of its output when the type alone decides them.

Flags, as Caffe's layer sources define them:
  loss      -- a subclass of LossLayer: without ``loss_weight``, top 0 weighs 1 (others 0)
  input     -- has no bottoms and produces the net's input blobs
  source    -- reads records from a data set file (``source``) that a data scan can open
  transform -- built on BaseDataLayer and applies ``transform_param`` (HDF5Data, Input and
               DummyData do not read it)
  math      -- an elementwise function that is undefined or overflows for some inputs
               (log of <= 0, exp overflow, a fractional power of a negative)

Types of Caffe forks (SSD, py-faster-rcnn, SegNet) carry the fork's name; their fields and
``*_param`` messages are described with the fork in ``config.schema.FORK_EXTENSIONS``.
SmoothL1Loss is py-faster-rcnn's ``SmoothL1LossLayer : LossLayer`` (not a BVLC type), so it
is a loss where its fork is, and absent from the BVLC sets.
"""

from __future__ import annotations

from dataclasses import dataclass

NONNEG, POS, ANY = "nonneg", "pos", "any"


@dataclass(frozen=True, slots=True)
class LayerType:
    name: str
    v1: str | None = None
    param: str | None = None
    flags: frozenset[str] = frozenset()
    shape: str | None = None  # the name of config.shapes' function for its tops
    output: tuple[str, bool] | None = None  # (sign: pos | nonneg | any, bounded above) when fixed
    fork: str | None = None

    @property
    def loss(self) -> bool:
        return "loss" in self.flags


def _t(name, v1=None, param=None, flags="", shape=None, output=None, fork=None) -> LayerType:
    return LayerType(name, v1, param, frozenset(flags.split()), shape, output, fork)


_LOSS_OUT = (NONNEG, False)
SSD, FRCNN, SEGNET = "SSD", "py-faster-rcnn", "SegNet"

TABLE: tuple[LayerType, ...] = (
    _t("AbsVal", "ABSVAL", None, "", "same", (NONNEG, False)),
    _t("Accuracy", "ACCURACY", "accuracy_param", "", "accuracy", (NONNEG, False)),
    _t("ArgMax", "ARGMAX", "argmax_param", "", "argmax"),
    _t("BNLL", "BNLL", None, "math", "same", (POS, False)),  # softplus: 0 only by float underflow
    _t("BatchNorm", None, "batch_norm_param", "", "same"),
    _t("BatchReindex"),
    _t("Bias", None, "bias_param", "", "same"),
    _t("Clip", None, "clip_param", "", "same"),
    _t("Concat", "CONCAT", "concat_param", "", "concat"),
    _t("ContrastiveLoss", "CONTRASTIVE_LOSS", "contrastive_loss_param", "loss", "scalar_loss", _LOSS_OUT),
    _t("Convolution", "CONVOLUTION", "convolution_param", "", "conv"),
    _t("Crop", None, "crop_param", "", "crop"),
    _t("Data", "DATA", "data_param", "input source transform", "data"),
    _t("Deconvolution", "DECONVOLUTION", "convolution_param", "", "deconv"),
    _t("Dropout", "DROPOUT", "dropout_param", "", "same"),
    _t("DummyData", "DUMMY_DATA", "dummy_data_param", "input", "dummy"),
    _t("ELU", None, "elu_param", "", "same"),
    _t("Eltwise", "ELTWISE", "eltwise_param", "", "eltwise"),
    _t("Embed", None, "embed_param", "", "embed"),
    _t("EuclideanLoss", "EUCLIDEAN_LOSS", None, "loss", "scalar_loss", _LOSS_OUT),
    _t("Exp", "EXP", "exp_param", "math", "same", (POS, False)),
    _t("Filter"),
    _t("Flatten", "FLATTEN", "flatten_param", "", "flatten"),
    _t("HDF5Data", "HDF5_DATA", "hdf5_data_param", "input source", "hdf5"),
    _t("HDF5Output", "HDF5_OUTPUT", "hdf5_output_param"),
    _t("HingeLoss", "HINGE_LOSS", "hinge_loss_param", "loss", "scalar_loss", _LOSS_OUT),
    _t("Im2col", "IM2COL", "convolution_param"),
    _t("ImageData", "IMAGE_DATA", "image_data_param", "input source transform", "image_data"),
    _t("InfogainLoss", "INFOGAIN_LOSS", "infogain_loss_param", "loss", "scalar_loss", _LOSS_OUT),
    _t("InnerProduct", "INNER_PRODUCT", "inner_product_param", "", "inner_product"),
    _t("Input", None, "input_param", "input", "input"),
    _t("LRN", "LRN", "lrn_param", "", "same"),
    _t("LSTM", None, "recurrent_param"),
    _t("LSTMUnit"),
    _t("Log", None, "log_param", "math", "same"),
    _t("MVN", "MVN", "mvn_param", "", "same"),
    _t("MemoryData", "MEMORY_DATA", "memory_data_param", "input transform", "memory_data"),
    _t("MultinomialLogisticLoss", "MULTINOMIAL_LOGISTIC_LOSS", None, "loss", "scalar_loss", _LOSS_OUT),
    _t("PReLU", None, "prelu_param", "", "same"),
    _t("Parameter", None, "parameter_param"),
    _t("Pooling", "POOLING", "pooling_param", "", "pooling"),
    _t("Power", "POWER", "power_param", "math", "same"),
    _t("Python", None, "python_param"),
    _t("RNN", None, "recurrent_param"),
    _t("ReLU", "RELU", "relu_param", "", "same"),
    _t("Reduction", None, "reduction_param", "math", "reduction"),
    _t("Reshape", None, "reshape_param", "", "reshape"),
    _t("SPP", None, "spp_param"),
    _t("Scale", None, "scale_param", "", "same"),
    _t("Sigmoid", "SIGMOID", "sigmoid_param", "", "same", (NONNEG, True)),
    _t("SigmoidCrossEntropyLoss", "SIGMOID_CROSS_ENTROPY_LOSS", None, "loss", "scalar_loss", _LOSS_OUT),
    _t("Silence", "SILENCE", None, "", "none"),
    _t("Slice", "SLICE", "slice_param", "", "slice"),
    _t("Softmax", "SOFTMAX", "softmax_param", "", "same", (NONNEG, True)),
    _t("SoftmaxWithLoss", "SOFTMAX_LOSS", "softmax_param", "loss", "scalar_loss", _LOSS_OUT),
    _t("Split", "SPLIT", None, "", "same"),
    _t("Swish", None, "swish_param", "", "same"),
    _t("TanH", "TANH", "tanh_param", "", "same", (ANY, True)),
    _t("Threshold", "THRESHOLD", "threshold_param", "", "same", (NONNEG, True)),
    _t("Tile", None, "tile_param", "", "tile"),
    _t("WindowData", "WINDOW_DATA", "window_data_param", "input transform", "window_data"),
    # forks
    _t("AnnotatedData", flags="input", fork=SSD),
    _t("MultiBoxLoss", flags="loss", fork=SSD),
    _t("Normalize", shape="same", fork=SSD),
    _t("Permute", shape="permute", fork=SSD),
    _t("SmoothL1Loss", flags="loss", shape="scalar_loss", output=_LOSS_OUT, fork=FRCNN),
    _t("ROIPooling", shape="roi_pooling", fork=FRCNN),
    _t("BN", shape="same", fork=SEGNET),
)

BY_NAME: dict[str, LayerType] = {t.name: t for t in TABLE}
BVLC: tuple[LayerType, ...] = tuple(t for t in TABLE if t.fork is None)


def _names(flag: str, *, forks: bool = False) -> frozenset[str]:
    return frozenset(t.name for t in TABLE if flag in t.flags and (forks or t.fork is None))


V2_LAYER_TYPES = frozenset(t.name for t in BVLC)
V1_TYPE_TO_V2 = {t.v1: t.name for t in BVLC if t.v1}
V2_TO_V1_TYPE = {t.name: t.v1 for t in BVLC if t.v1}
LAYER_PARAM_FIELD = {t.name: t.param for t in BVLC if t.param}
LOSS_LAYER_TYPES = _names("loss")
ANY_LOSS_TYPES = _names("loss", forks=True)  # with the forks' losses (SmoothL1Loss, MultiBoxLoss)
INPUT_TYPES = _names("input", forks=True)
INPUT_TYPES_V1 = frozenset(V2_TO_V1_TYPE[t] for t in INPUT_TYPES if t in V2_TO_V1_TYPE)
SOURCE_TYPES = _names("source")
TRANSFORM_LAYER_TYPES = _names("transform")
MATH_TYPES = _names("math")
MATH_TYPES_V1 = frozenset(V2_TO_V1_TYPE[t] for t in MATH_TYPES if t in V2_TO_V1_TYPE)
SHAPE_OF = {t.name: t.shape for t in TABLE if t.shape}
FIXED_OUTPUT = {t.name: t.output for t in TABLE if t.output}
