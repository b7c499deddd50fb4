"""What BVLC Caffe's caffe.proto (final master, 9b89154) says every field is.

The tables below are our own compact transcription of the proto's facts: for every
message, one line per field ``name number [*]type [= default]`` (``*`` = repeated),
for every enum its value names and numbers. They are parsed once at import time
into :class:`MessageSpec` / :class:`FieldSpec` objects. Defaults are the declared
ones, else proto2's zero default (0, 0.0, False, "", the enum's first value);
repeated fields default to ``()`` and message fields to ``None``.

Enum types nested in a message are named ``Message.Enum`` (``PoolingParameter.PoolMethod``),
top-level ones by their bare name (``Phase``). Message types are bare names.

Besides the proto, the module knows Caffe's layer registry (``V2_LAYER_TYPES``),
the V1 enum -> V2 string mapping, which layers are LossLayers, which ``*_param``
field belongs to which layer type, and the fields/layer types that well-known
forks add (``FORK_EXTENSIONS``): BVLC rejects those, but the fork a file was
written for accepts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nandoctor.config import layers

SCALAR_TYPES = frozenset(
    ("double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64",
     "fixed32", "fixed64", "sfixed32", "sfixed64", "bool", "string", "bytes")
)  # fmt: skip

# Integer ranges protobuf's text parser enforces ("Integer out of range").
INT_RANGES = {
    "int32": (-(2**31), 2**31 - 1),
    "sint32": (-(2**31), 2**31 - 1),
    "sfixed32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "sint64": (-(2**63), 2**63 - 1),
    "sfixed64": (-(2**63), 2**63 - 1),
    "uint32": (0, 2**32 - 1),
    "fixed32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
    "fixed64": (0, 2**64 - 1),
}


# The type of a fork field whose kind we do not pin down (a fork's own enum, say): its
# values are read like any scalar and never checked.
UNKNOWN_TYPE = "?"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    number: int | None  # None only for fork fields whose number we do not rely on
    repeated: bool
    type: str  # proto scalar type, enum name or message name
    default: Any
    required: bool = False


@dataclass(frozen=True, slots=True)
class MessageSpec:
    name: str
    fields: dict[str, FieldSpec]

    def by_number(self, number: int) -> FieldSpec | None:
        for f in self.fields.values():
            if f.number == number:
                return f
        return None


_ENGINE = "DEFAULT 0, CAFFE 1, CUDNN 2"
_POOL = "MAX 0, AVE 1, STOCHASTIC 2"

_ENUM_TABLE = {
    "Phase": "TRAIN 0, TEST 1",
    "FillerParameter.VarianceNorm": "FAN_IN 0, FAN_OUT 1, AVERAGE 2",
    "SolverParameter.SnapshotFormat": "HDF5 0, BINARYPROTO 1",
    "SolverParameter.SolverMode": "CPU 0, GPU 1",
    "SolverParameter.SolverType": "SGD 0, NESTEROV 1, ADAGRAD 2, RMSPROP 3, ADADELTA 4, ADAM 5",
    "ParamSpec.DimCheckMode": "STRICT 0, PERMISSIVE 1",
    "LossParameter.NormalizationMode": "FULL 0, VALID 1, BATCH_SIZE 2, NONE 3",
    "ConvolutionParameter.Engine": _ENGINE,
    "DataParameter.DB": "LEVELDB 0, LMDB 1",
    "EltwiseParameter.EltwiseOp": "PROD 0, SUM 1, MAX 2",
    "HingeLossParameter.Norm": "L1 1, L2 2",
    "LRNParameter.NormRegion": "ACROSS_CHANNELS 0, WITHIN_CHANNEL 1",
    "LRNParameter.Engine": _ENGINE,
    "PoolingParameter.PoolMethod": _POOL,
    "PoolingParameter.Engine": _ENGINE,
    "PoolingParameter.RoundMode": "CEIL 0, FLOOR 1",
    "ReductionParameter.ReductionOp": "SUM 1, ASUM 2, SUMSQ 3, MEAN 4",
    "ReLUParameter.Engine": _ENGINE,
    "SigmoidParameter.Engine": _ENGINE,
    "SoftmaxParameter.Engine": _ENGINE,
    "TanHParameter.Engine": _ENGINE,
    "SPPParameter.PoolMethod": _POOL,
    "SPPParameter.Engine": _ENGINE,
    "V1LayerParameter.LayerType": (
        "NONE 0, ABSVAL 35, ACCURACY 1, ARGMAX 30, BNLL 2, CONCAT 3, CONTRASTIVE_LOSS 37, CONVOLUTION 4, "
        "DATA 5, DECONVOLUTION 39, DROPOUT 6, DUMMY_DATA 32, EUCLIDEAN_LOSS 7, ELTWISE 25, EXP 38, "
        "FLATTEN 8, HDF5_DATA 9, HDF5_OUTPUT 10, HINGE_LOSS 28, IM2COL 11, IMAGE_DATA 12, "
        "INFOGAIN_LOSS 13, INNER_PRODUCT 14, LRN 15, MEMORY_DATA 29, MULTINOMIAL_LOGISTIC_LOSS 16, "
        "MVN 34, POOLING 17, POWER 26, RELU 18, SIGMOID 19, SIGMOID_CROSS_ENTROPY_LOSS 27, SILENCE 36, "
        "SOFTMAX 20, SOFTMAX_LOSS 21, SPLIT 22, SLICE 33, TANH 23, WINDOW_DATA 24, THRESHOLD 31"
    ),
    "V1LayerParameter.DimCheckMode": "STRICT 0, PERMISSIVE 1",
    "V0LayerParameter.PoolMethod": _POOL,
}

# name number [*]type [= default]; one field per line, in the proto's order.
_MESSAGE_TABLE = {
    "BlobShape": "dim 1 *int64",
    "BlobProto": """
        shape 7 BlobShape
        data 5 *float
        diff 6 *float
        double_data 8 *double
        double_diff 9 *double
        num 1 int32 = 0
        channels 2 int32 = 0
        height 3 int32 = 0
        width 4 int32 = 0""",
    "BlobProtoVector": "blobs 1 *BlobProto",
    "Datum": """
        channels 1 int32
        height 2 int32
        width 3 int32
        data 4 bytes
        label 5 int32
        float_data 6 *float
        encoded 7 bool = false""",
    "FillerParameter": """
        type 1 string = "constant"
        value 2 float = 0
        min 3 float = 0
        max 4 float = 1
        mean 5 float = 0
        std 6 float = 1
        sparse 7 int32 = -1
        variance_norm 8 VarianceNorm = FAN_IN""",
    "NetParameter": """
        name 1 string
        input 3 *string
        input_shape 8 *BlobShape
        input_dim 4 *int32
        force_backward 5 bool = false
        state 6 NetState
        debug_info 7 bool = false
        layer 100 *LayerParameter
        layers 2 *V1LayerParameter""",
    "SolverParameter": """
        net 24 string
        net_param 25 NetParameter
        train_net 1 string
        test_net 2 *string
        train_net_param 21 NetParameter
        test_net_param 22 *NetParameter
        train_state 26 NetState
        test_state 27 *NetState
        test_iter 3 *int32
        test_interval 4 int32 = 0
        test_compute_loss 19 bool = false
        test_initialization 32 bool = true
        base_lr 5 float
        display 6 int32
        average_loss 33 int32 = 1
        max_iter 7 int32
        iter_size 36 int32 = 1
        lr_policy 8 string
        gamma 9 float
        power 10 float
        momentum 11 float
        weight_decay 12 float
        regularization_type 29 string = "L2"
        stepsize 13 int32
        stepvalue 34 *int32
        clip_gradients 35 float = -1
        snapshot 14 int32 = 0
        snapshot_prefix 15 string
        snapshot_diff 16 bool = false
        snapshot_format 37 SnapshotFormat = BINARYPROTO
        solver_mode 17 SolverMode = GPU
        device_id 18 int32 = 0
        random_seed 20 int64 = -1
        type 40 string = "SGD"
        delta 31 float = 1e-8
        momentum2 39 float = 0.999
        rms_decay 38 float = 0.99
        debug_info 23 bool = false
        snapshot_after_train 28 bool = true
        solver_type 30 SolverType = SGD
        layer_wise_reduce 41 bool = true
        weights 42 *string""",
    "SolverState": """
        iter 1 int32
        learned_net 2 string
        history 3 *BlobProto
        current_step 4 int32 = 0""",
    "NetState": """
        phase 1 Phase = TEST
        level 2 int32 = 0
        stage 3 *string""",
    "NetStateRule": """
        phase 1 Phase
        min_level 2 int32
        max_level 3 int32
        stage 4 *string
        not_stage 5 *string""",
    "ParamSpec": """
        name 1 string
        share_mode 2 DimCheckMode
        lr_mult 3 float = 1.0
        decay_mult 4 float = 1.0""",
    "LayerParameter": """
        name 1 string
        type 2 string
        bottom 3 *string
        top 4 *string
        phase 10 Phase
        loss_weight 5 *float
        param 6 *ParamSpec
        blobs 7 *BlobProto
        propagate_down 11 *bool
        include 8 *NetStateRule
        exclude 9 *NetStateRule
        transform_param 100 TransformationParameter
        loss_param 101 LossParameter
        accuracy_param 102 AccuracyParameter
        argmax_param 103 ArgMaxParameter
        batch_norm_param 139 BatchNormParameter
        bias_param 141 BiasParameter
        clip_param 148 ClipParameter
        concat_param 104 ConcatParameter
        contrastive_loss_param 105 ContrastiveLossParameter
        convolution_param 106 ConvolutionParameter
        crop_param 144 CropParameter
        data_param 107 DataParameter
        dropout_param 108 DropoutParameter
        dummy_data_param 109 DummyDataParameter
        eltwise_param 110 EltwiseParameter
        elu_param 140 ELUParameter
        embed_param 137 EmbedParameter
        exp_param 111 ExpParameter
        flatten_param 135 FlattenParameter
        hdf5_data_param 112 HDF5DataParameter
        hdf5_output_param 113 HDF5OutputParameter
        hinge_loss_param 114 HingeLossParameter
        image_data_param 115 ImageDataParameter
        infogain_loss_param 116 InfogainLossParameter
        inner_product_param 117 InnerProductParameter
        input_param 143 InputParameter
        log_param 134 LogParameter
        lrn_param 118 LRNParameter
        memory_data_param 119 MemoryDataParameter
        mvn_param 120 MVNParameter
        parameter_param 145 ParameterParameter
        pooling_param 121 PoolingParameter
        power_param 122 PowerParameter
        prelu_param 131 PReLUParameter
        python_param 130 PythonParameter
        recurrent_param 146 RecurrentParameter
        reduction_param 136 ReductionParameter
        relu_param 123 ReLUParameter
        reshape_param 133 ReshapeParameter
        scale_param 142 ScaleParameter
        sigmoid_param 124 SigmoidParameter
        softmax_param 125 SoftmaxParameter
        spp_param 132 SPPParameter
        slice_param 126 SliceParameter
        swish_param 147 SwishParameter
        tanh_param 127 TanHParameter
        threshold_param 128 ThresholdParameter
        tile_param 138 TileParameter
        window_data_param 129 WindowDataParameter""",
    "TransformationParameter": """
        scale 1 float = 1
        mirror 2 bool = false
        crop_size 3 uint32 = 0
        mean_file 4 string
        mean_value 5 *float
        force_color 6 bool = false
        force_gray 7 bool = false""",
    "LossParameter": """
        ignore_label 1 int32
        normalization 3 NormalizationMode = VALID
        normalize 2 bool""",
    "AccuracyParameter": """
        top_k 1 uint32 = 1
        axis 2 int32 = 1
        ignore_label 3 int32""",
    "ArgMaxParameter": """
        out_max_val 1 bool = false
        top_k 2 uint32 = 1
        axis 3 int32""",
    "ClipParameter": """
        min 1 !float
        max 2 !float""",
    "ConcatParameter": """
        axis 2 int32 = 1
        concat_dim 1 uint32 = 1""",
    "BatchNormParameter": """
        use_global_stats 1 bool
        moving_average_fraction 2 float = 0.999
        eps 3 float = 1e-5""",
    "BiasParameter": """
        axis 1 int32 = 1
        num_axes 2 int32 = 1
        filler 3 FillerParameter""",
    "ContrastiveLossParameter": """
        margin 1 float = 1.0
        legacy_version 2 bool = false""",
    "ConvolutionParameter": """
        num_output 1 uint32
        bias_term 2 bool = true
        pad 3 *uint32
        kernel_size 4 *uint32
        stride 6 *uint32
        dilation 18 *uint32
        pad_h 9 uint32 = 0
        pad_w 10 uint32 = 0
        kernel_h 11 uint32
        kernel_w 12 uint32
        stride_h 13 uint32
        stride_w 14 uint32
        group 5 uint32 = 1
        weight_filler 7 FillerParameter
        bias_filler 8 FillerParameter
        engine 15 Engine = DEFAULT
        axis 16 int32 = 1
        force_nd_im2col 17 bool = false""",
    "CropParameter": """
        axis 1 int32 = 2
        offset 2 *uint32""",
    "DataParameter": """
        source 1 string
        batch_size 4 uint32
        rand_skip 7 uint32 = 0
        backend 8 DB = LEVELDB
        scale 2 float = 1
        mean_file 3 string
        crop_size 5 uint32 = 0
        mirror 6 bool = false
        force_encoded_color 9 bool = false
        prefetch 10 uint32 = 4""",
    "DropoutParameter": "dropout_ratio 1 float = 0.5",
    "DummyDataParameter": """
        data_filler 1 *FillerParameter
        shape 6 *BlobShape
        num 2 *uint32
        channels 3 *uint32
        height 4 *uint32
        width 5 *uint32""",
    "EltwiseParameter": """
        operation 1 EltwiseOp = SUM
        coeff 2 *float
        stable_prod_grad 3 bool = true""",
    "ELUParameter": "alpha 1 float = 1",
    "EmbedParameter": """
        num_output 1 uint32
        input_dim 2 uint32
        bias_term 3 bool = true
        weight_filler 4 FillerParameter
        bias_filler 5 FillerParameter""",
    "ExpParameter": """
        base 1 float = -1.0
        scale 2 float = 1.0
        shift 3 float = 0.0""",
    "FlattenParameter": """
        axis 1 int32 = 1
        end_axis 2 int32 = -1""",
    "HDF5DataParameter": """
        source 1 string
        batch_size 2 uint32
        shuffle 3 bool = false""",
    "HDF5OutputParameter": "file_name 1 string",
    "HingeLossParameter": "norm 1 Norm = L1",
    "ImageDataParameter": """
        source 1 string
        batch_size 4 uint32 = 1
        rand_skip 7 uint32 = 0
        shuffle 8 bool = false
        new_height 9 uint32 = 0
        new_width 10 uint32 = 0
        is_color 11 bool = true
        scale 2 float = 1
        mean_file 3 string
        crop_size 5 uint32 = 0
        mirror 6 bool = false
        root_folder 12 string = \"\"""",
    "InfogainLossParameter": """
        source 1 string
        axis 2 int32 = 1""",
    "InnerProductParameter": """
        num_output 1 uint32
        bias_term 2 bool = true
        weight_filler 3 FillerParameter
        bias_filler 4 FillerParameter
        axis 5 int32 = 1
        transpose 6 bool = false""",
    "InputParameter": "shape 1 *BlobShape",
    "LogParameter": """
        base 1 float = -1.0
        scale 2 float = 1.0
        shift 3 float = 0.0""",
    "LRNParameter": """
        local_size 1 uint32 = 5
        alpha 2 float = 1.0
        beta 3 float = 0.75
        norm_region 4 NormRegion = ACROSS_CHANNELS
        k 5 float = 1.0
        engine 6 Engine = DEFAULT""",
    "MemoryDataParameter": """
        batch_size 1 uint32
        channels 2 uint32
        height 3 uint32
        width 4 uint32""",
    "MVNParameter": """
        normalize_variance 1 bool = true
        across_channels 2 bool = false
        eps 3 float = 1e-9""",
    "ParameterParameter": "shape 1 BlobShape",
    "PoolingParameter": """
        pool 1 PoolMethod = MAX
        pad 4 uint32 = 0
        pad_h 9 uint32 = 0
        pad_w 10 uint32 = 0
        kernel_size 2 uint32
        kernel_h 5 uint32
        kernel_w 6 uint32
        stride 3 uint32 = 1
        stride_h 7 uint32
        stride_w 8 uint32
        engine 11 Engine = DEFAULT
        global_pooling 12 bool = false
        round_mode 13 RoundMode = CEIL""",
    "PowerParameter": """
        power 1 float = 1.0
        scale 2 float = 1.0
        shift 3 float = 0.0""",
    "PythonParameter": """
        module 1 string
        layer 2 string
        param_str 3 string = \"\"
        share_in_parallel 4 bool = false""",
    "RecurrentParameter": """
        num_output 1 uint32 = 0
        weight_filler 2 FillerParameter
        bias_filler 3 FillerParameter
        debug_info 4 bool = false
        expose_hidden 5 bool = false""",
    "ReductionParameter": """
        operation 1 ReductionOp = SUM
        axis 2 int32 = 0
        coeff 3 float = 1.0""",
    "ReLUParameter": """
        negative_slope 1 float = 0
        engine 2 Engine = DEFAULT""",
    "ReshapeParameter": """
        shape 1 BlobShape
        axis 2 int32 = 0
        num_axes 3 int32 = -1""",
    "ScaleParameter": """
        axis 1 int32 = 1
        num_axes 2 int32 = 1
        filler 3 FillerParameter
        bias_term 4 bool = false
        bias_filler 5 FillerParameter""",
    "SigmoidParameter": "engine 1 Engine = DEFAULT",
    "SliceParameter": """
        axis 3 int32 = 1
        slice_point 2 *uint32
        slice_dim 1 uint32 = 1""",
    "SoftmaxParameter": """
        engine 1 Engine = DEFAULT
        axis 2 int32 = 1""",
    "SwishParameter": "beta 1 float = 1",
    "TanHParameter": "engine 1 Engine = DEFAULT",
    "TileParameter": """
        axis 1 int32 = 1
        tiles 2 int32""",
    "ThresholdParameter": "threshold 1 float = 0",
    "WindowDataParameter": """
        source 1 string
        scale 2 float = 1
        mean_file 3 string
        batch_size 4 uint32
        crop_size 5 uint32 = 0
        mirror 6 bool = false
        fg_threshold 7 float = 0.5
        bg_threshold 8 float = 0.5
        fg_fraction 9 float = 0.25
        context_pad 10 uint32 = 0
        crop_mode 11 string = "warp"
        cache_images 12 bool = false
        root_folder 13 string = \"\"""",
    "SPPParameter": """
        pyramid_height 1 uint32
        pool 2 PoolMethod = MAX
        engine 6 Engine = DEFAULT""",
    "V1LayerParameter": """
        bottom 2 *string
        top 3 *string
        name 4 string
        include 32 *NetStateRule
        exclude 33 *NetStateRule
        type 5 LayerType
        blobs 6 *BlobProto
        param 1001 *string
        blob_share_mode 1002 *DimCheckMode
        blobs_lr 7 *float
        weight_decay 8 *float
        loss_weight 35 *float
        accuracy_param 27 AccuracyParameter
        argmax_param 23 ArgMaxParameter
        concat_param 9 ConcatParameter
        contrastive_loss_param 40 ContrastiveLossParameter
        convolution_param 10 ConvolutionParameter
        data_param 11 DataParameter
        dropout_param 12 DropoutParameter
        dummy_data_param 26 DummyDataParameter
        eltwise_param 24 EltwiseParameter
        exp_param 41 ExpParameter
        hdf5_data_param 13 HDF5DataParameter
        hdf5_output_param 14 HDF5OutputParameter
        hinge_loss_param 29 HingeLossParameter
        image_data_param 15 ImageDataParameter
        infogain_loss_param 16 InfogainLossParameter
        inner_product_param 17 InnerProductParameter
        lrn_param 18 LRNParameter
        memory_data_param 22 MemoryDataParameter
        mvn_param 34 MVNParameter
        pooling_param 19 PoolingParameter
        power_param 21 PowerParameter
        relu_param 30 ReLUParameter
        sigmoid_param 38 SigmoidParameter
        softmax_param 39 SoftmaxParameter
        slice_param 31 SliceParameter
        tanh_param 37 TanHParameter
        threshold_param 25 ThresholdParameter
        window_data_param 20 WindowDataParameter
        transform_param 36 TransformationParameter
        loss_param 42 LossParameter
        layer 1 V0LayerParameter""",
    "V0LayerParameter": """
        name 1 string
        type 2 string
        num_output 3 uint32
        biasterm 4 bool = true
        weight_filler 5 FillerParameter
        bias_filler 6 FillerParameter
        pad 7 uint32 = 0
        kernelsize 8 uint32
        group 9 uint32 = 1
        stride 10 uint32 = 1
        pool 11 PoolMethod = MAX
        dropout_ratio 12 float = 0.5
        local_size 13 uint32 = 5
        alpha 14 float = 1.0
        beta 15 float = 0.75
        k 22 float = 1.0
        source 16 string
        scale 17 float = 1
        meanfile 18 string
        batchsize 19 uint32
        cropsize 20 uint32 = 0
        mirror 21 bool = false
        blobs 50 *BlobProto
        blobs_lr 51 *float
        weight_decay 52 *float
        rand_skip 53 uint32 = 0
        det_fg_threshold 54 float = 0.5
        det_bg_threshold 55 float = 0.5
        det_fg_fraction 56 float = 0.25
        det_context_pad 58 uint32 = 0
        det_crop_mode 59 string = "warp"
        new_num 60 int32 = 0
        new_channels 61 int32 = 0
        new_height 62 int32 = 0
        new_width 63 int32 = 0
        shuffle_images 64 bool = false
        concat_dim 65 uint32 = 1
        hdf5_output_param 1001 HDF5OutputParameter""",
    "PReLUParameter": """
        filler 1 FillerParameter
        channel_shared 2 bool = false""",
}


def _parse_enums(table: dict[str, str]) -> dict[str, dict[str, int]]:
    enums: dict[str, dict[str, int]] = {}
    for name, spec in table.items():
        values = {}
        for item in spec.split(","):
            value_name, number = item.split()
            values[value_name] = int(number)
        enums[name] = values
    return enums


ENUMS: dict[str, dict[str, int]] = _parse_enums(_ENUM_TABLE)


def _resolve_type(message: str, type_name: str) -> str:
    # Like protoc: a bare enum name is looked up in the enclosing message first.
    nested = f"{message}.{type_name}"
    if nested in ENUMS:
        return nested
    return type_name


def _zero_default(type_name: str) -> Any:
    if type_name in ("float", "double"):
        return 0.0
    if type_name == "bool":
        return False
    if type_name in ("string", "bytes"):
        return ""
    if type_name in ENUMS:
        return next(iter(ENUMS[type_name]))  # proto2: the first declared value
    if type_name in SCALAR_TYPES:
        return 0
    return None  # a message


def _literal(type_name: str, text: str) -> Any:
    if type_name in ("float", "double"):
        return float(text)
    if type_name == "bool":
        return text == "true"
    if type_name in ("string", "bytes"):
        return text.strip("\"'")
    if type_name in ENUMS:
        return text
    return int(text)


def _parse_field(message: str, line: str) -> FieldSpec:
    head, _, default_text = line.partition("=")
    name, number, type_text = head.split()
    repeated = type_text.startswith("*")
    required = type_text.startswith("!")
    type_name = _resolve_type(message, type_text.lstrip("*!"))
    if repeated:
        default: Any = ()
    elif default_text.strip():
        default = _literal(type_name, default_text.strip())
    else:
        default = _zero_default(type_name)
    return FieldSpec(name, int(number), repeated, type_name, default, required)


def _parse_messages(table: dict[str, str]) -> dict[str, MessageSpec]:
    out = {}
    for message, body in table.items():
        fields = {}
        for line in body.strip().splitlines():
            spec = _parse_field(message, line.strip())
            fields[spec.name] = spec
        out[message] = MessageSpec(message, fields)
    return out


MESSAGES: dict[str, MessageSpec] = _parse_messages(_MESSAGE_TABLE)


def is_enum(type_name: str) -> bool:
    return type_name in ENUMS


def is_message(type_name: str) -> bool:
    return type_name not in SCALAR_TYPES and type_name not in ENUMS and type_name != UNKNOWN_TYPE


def field_spec(message: str, field: str) -> FieldSpec | None:
    spec = MESSAGES.get(message)
    if spec is None:
        return None
    return spec.fields.get(field)


def default(message: str, field: str) -> Any:
    """The value Caffe reads when ``field`` is unset; KeyError for unknown message/field."""
    spec = field_spec(message, field)
    if spec is None:
        raise KeyError(f"{message}.{field}")
    return spec.default


def message_type_of(message: str, field: str) -> str | None:
    """The message type of a message-typed field (also for fork fields), else None."""
    spec = field_spec(message, field)
    if spec is None:
        ext = fork_field(message, field)
        spec = ext[1] if ext else None
    if spec is None or not is_message(spec.type):
        return None
    return spec.type


def enum_value_name(enum: str, number: int) -> str | None:
    for name, value in ENUMS.get(enum, {}).items():
        if value == number:
            return name
    return None


# --- layer types -------------------------------------------------------------------------

# Derived from the one layer-type table (config/layers.py).
V2_LAYER_TYPES = layers.V2_LAYER_TYPES
V1_TYPE_TO_V2 = layers.V1_TYPE_TO_V2
V2_TO_V1_TYPE = layers.V2_TO_V1_TYPE

# V1 layer fields that the V1 -> V2 upgrade moves into a sub-message: (block, field).
V1_LAYER_FIELD_TO_V2 = {"blobs_lr": ("param", "lr_mult"), "weight_decay": ("param", "decay_mult")}

LOSS_LAYER_TYPES = layers.LOSS_LAYER_TYPES
TRANSFORM_LAYER_TYPES = layers.TRANSFORM_LAYER_TYPES
LAYER_PARAM_FIELD = layers.LAYER_PARAM_FIELD


# --- forks -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ForkExtension:
    """What one fork adds: layer types (with their *_param field) and fields in BVLC messages."""

    fork: str
    layer_types: dict[str, str | None]  # type -> its *_param field in LayerParameter (None: none)
    fields: dict[str, dict[str, FieldSpec]]  # BVLC message -> field name -> spec


def _ext_fields(table: dict[str, str]) -> dict[str, dict[str, FieldSpec]]:
    # Same line format as above; number "?" where the fork's number does not matter to us.
    out: dict[str, dict[str, FieldSpec]] = {}
    for message, body in table.items():
        fields = {}
        for line in body.strip().splitlines():
            parts = line.split()
            number = parts[1]
            line = line.replace(f" {number} ", " 0 ", 1) if number == "?" else line
            spec = _parse_field(message, line.strip())
            if number == "?":
                spec = FieldSpec(spec.name, None, spec.repeated, spec.type, spec.default)
            fields[spec.name] = spec
        out[message] = fields
    return out


FORK_EXTENSIONS: dict[str, ForkExtension] = {
    "SSD (weiliu89/caffe)": ForkExtension(
        "SSD (weiliu89/caffe)",
        {
            "Normalize": "norm_param",
            "PriorBox": "prior_box_param",
            "MultiBoxLoss": "multibox_loss_param",
            "DetectionOutput": "detection_output_param",
            "DetectionEvaluate": "detection_evaluate_param",
            "Permute": "permute_param",
            "AnnotatedData": "annotated_data_param",
            "VideoData": "video_data_param",
        },
        _ext_fields(
            {
                "LayerParameter": """
                annotated_data_param 200 AnnotatedDataParameter
                multibox_loss_param 201 MultiBoxLossParameter
                permute_param 202 PermuteParameter
                prior_box_param 203 PriorBoxParameter
                detection_output_param 204 DetectionOutputParameter
                detection_evaluate_param 205 DetectionEvaluateParameter
                norm_param 206 NormalizeParameter
                video_data_param 207 VideoDataParameter""",
                "SolverParameter": """
                eval_type 41 string = "classification"
                ap_version 42 string = "Integral"
                show_per_class_result 44 bool = false""",
                "TransformationParameter": """
                resize_param ? ResizeParameter
                noise_param ? NoiseParameter
                distort_param ? DistortionParameter
                expand_param ? ExpansionParameter
                emit_constraint ? EmitConstraint""",
            }
        ),
    ),
    "py-faster-rcnn (rbgirshick/caffe-fast-rcnn)": ForkExtension(
        "py-faster-rcnn (rbgirshick/caffe-fast-rcnn)",
        {"SmoothL1Loss": "smooth_l1_loss_param", "ROIPooling": "roi_pooling_param"},
        _ext_fields(
            {
                "LayerParameter": """
                roi_pooling_param 8266711 ROIPoolingParameter
                smooth_l1_loss_param 8266712 SmoothL1LossParameter""",
                "V1LayerParameter": "roi_pooling_param ? ROIPoolingParameter",
                "DropoutParameter": "scale_train ? bool = true",
            }
        ),
    ),
    "SegNet (alexgkendall/caffe-segnet)": ForkExtension(
        "SegNet (alexgkendall/caffe-segnet)",
        {"DenseImageData": "dense_image_data_param", "BN": "bn_param", "Upsample": "upsample_param"},
        _ext_fields(
            {
                "LayerParameter": """
                dense_image_data_param ? DenseImageDataParameter
                bn_param ? BNParameter
                upsample_param ? UpsampleParameter""",
                "LossParameter": """
                weight_by_label_freqs ? bool = false
                class_weighting ? *float""",
            }
        ),
    ),
    "SphereFace (wy1iu/sphereface)": ForkExtension(
        "SphereFace (wy1iu/sphereface)",
        {"MarginInnerProduct": "margin_inner_product_param"},
        _ext_fields({"LayerParameter": "margin_inner_product_param ? MarginInnerProductParameter"}),
    ),
    "DeepLab (deeplab-public)": ForkExtension(
        "DeepLab (deeplab-public)",
        {
            "Interp": "interp_param",
            "ImageSegData": None,
            "SegAccuracy": "seg_accuracy_param",
            "DenseCRF": "dense_crf_param",
            "UniqueLabel": "unique_label_param",
        },
        _ext_fields(
            {
                "LayerParameter": """
                interp_param ? InterpParameter
                seg_accuracy_param ? SegAccuracyParameter
                dense_crf_param ? DenseCRFParameter
                unique_label_param ? UniqueLabelParameter""",
            }
        ),
    ),
    "cifar BatchNorm fork (batch_norm_param fillers)": ForkExtension(
        "cifar BatchNorm fork (batch_norm_param fillers)",
        {},
        _ext_fields(
            {
                "BatchNormParameter": """
                scale_filler ? FillerParameter
                bias_filler ? FillerParameter""",
            }
        ),
    ),
    "NVCaffe (NVIDIA/caffe)": ForkExtension(
        "NVCaffe (NVIDIA/caffe)",
        {},
        _ext_fields(
            {
                "SolverParameter": """
                rampup_interval ? int32 = 0
                rampup_lr ? float = 0
                min_lr ? float = 0
                global_grad_scale ? float = 1
                global_grad_scale_adaptive ? bool = false
                solver_data_type ? ?
                store_blobs_in_old_format ? bool = false""",
                "LayerParameter": """
                forward_type ? ?
                backward_type ? ?
                forward_math ? ?
                backward_math ? ?
                detectnet_groundtruth_param 6801 DetectNetGroundTruthParameter
                detectnet_augmentation_param 6802 DetectNetAugmentationParameter""",
            }
        ),
    ),
    "Intel Caffe (intel/caffe)": ForkExtension(
        "Intel Caffe (intel/caffe)",
        {},
        _ext_fields(
            {
                "SolverParameter": """
                plateau_winsize ? *int32
                stagelr ? *float
                stageiter ? *int32
                warmup_iter ? int32 = 0
                warmup_start_lr ? float = 0""",
                "LayerParameter": "engine ? string",
            }
        ),
    ),
}


def fork_field(message: str, field: str) -> tuple[str, FieldSpec] | None:
    """``(fork name, spec)`` when a BVLC message lacks ``field`` but a well-known fork adds it."""
    if field_spec(message, field) is not None:
        return None
    for ext in FORK_EXTENSIONS.values():
        spec = ext.fields.get(message, {}).get(field)
        if spec is not None:
            return ext.fork, spec
    return None


def fork_layer_type(layer_type: str) -> str | None:
    """The fork that registers ``layer_type`` (None for BVLC types and unknown ones)."""
    if layer_type in V2_LAYER_TYPES:
        return None
    for ext in FORK_EXTENSIONS.values():
        if layer_type in ext.layer_types:
            return ext.fork
    return None


def fork_param_field(layer_type: str) -> str | None:
    for ext in FORK_EXTENSIONS.values():
        if ext.layer_types.get(layer_type):
            return ext.layer_types[layer_type]
    return None


FORK_LOSS_LAYER_TYPES = layers.ANY_LOSS_TYPES - layers.LOSS_LAYER_TYPES


def param_field(layer_type: str) -> str | None:
    """The ``*_param`` field of LayerParameter that configures ``layer_type`` (BVLC or fork)."""
    return LAYER_PARAM_FIELD.get(layer_type) or fork_param_field(layer_type)
