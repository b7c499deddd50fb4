"""caffe.proto knowledge: defaults Caffe documents, consistency of the tables, agreement with Caffe's output."""

from __future__ import annotations

import csv

import pytest

from nandoctor.config import schema
from nandoctor.config.textformat import parse_file
from nandoctor.config.validate import validate
from tests.conftest import CORPUS, corpus_files

# Defaults as caffe.proto declares them, written out here independently of our tables.
DOCUMENTED_DEFAULTS = [
    ("SolverParameter", "base_lr", 0.0),
    ("SolverParameter", "lr_policy", ""),
    ("SolverParameter", "gamma", 0.0),
    ("SolverParameter", "max_iter", 0),
    ("SolverParameter", "momentum", 0.0),
    ("SolverParameter", "momentum2", 0.999),
    ("SolverParameter", "delta", 1e-8),
    ("SolverParameter", "rms_decay", 0.99),
    ("SolverParameter", "weight_decay", 0.0),
    ("SolverParameter", "regularization_type", "L2"),
    ("SolverParameter", "clip_gradients", -1.0),
    ("SolverParameter", "iter_size", 1),
    ("SolverParameter", "type", "SGD"),
    ("SolverParameter", "solver_type", "SGD"),
    ("SolverParameter", "display", 0),
    ("SolverParameter", "average_loss", 1),
    ("SolverParameter", "test_interval", 0),
    ("SolverParameter", "test_initialization", True),
    ("SolverParameter", "test_compute_loss", False),
    ("SolverParameter", "snapshot", 0),
    ("SolverParameter", "snapshot_format", "BINARYPROTO"),
    ("SolverParameter", "snapshot_diff", False),
    ("SolverParameter", "snapshot_after_train", True),
    ("SolverParameter", "solver_mode", "GPU"),
    ("SolverParameter", "device_id", 0),
    ("SolverParameter", "random_seed", -1),
    ("SolverParameter", "debug_info", False),
    ("SolverParameter", "layer_wise_reduce", True),
    ("SolverParameter", "stepvalue", ()),
    ("SolverParameter", "test_iter", ()),
    ("ParamSpec", "lr_mult", 1.0),
    ("ParamSpec", "decay_mult", 1.0),
    ("FillerParameter", "type", "constant"),
    ("FillerParameter", "value", 0.0),
    ("FillerParameter", "std", 1.0),
    ("FillerParameter", "min", 0.0),
    ("FillerParameter", "max", 1.0),
    ("FillerParameter", "variance_norm", "FAN_IN"),
    ("NetState", "phase", "TEST"),
    ("PoolingParameter", "pool", "MAX"),
    ("PoolingParameter", "stride", 1),
    ("PoolingParameter", "pad", 0),
    ("PoolingParameter", "round_mode", "CEIL"),
    ("PoolingParameter", "global_pooling", False),
    ("LayerParameter", "loss_weight", ()),
    ("LayerParameter", "transform_param", None),
    ("LossParameter", "normalization", "VALID"),
    ("BatchNormParameter", "eps", 1e-5),
    ("BatchNormParameter", "moving_average_fraction", 0.999),
    ("ConvolutionParameter", "bias_term", True),
    ("ConvolutionParameter", "group", 1),
    ("HingeLossParameter", "norm", "L1"),  # no declared default: the first value, L1 = 1
    ("ReductionParameter", "operation", "SUM"),
    ("DataParameter", "backend", "LEVELDB"),
    ("LRNParameter", "beta", 0.75),
    ("MVNParameter", "eps", 1e-9),
    ("ExpParameter", "base", -1.0),
    ("ClipParameter", "min", 0.0),
    ("SwishParameter", "beta", 1.0),
]


@pytest.mark.parametrize(("message", "field", "expected"), DOCUMENTED_DEFAULTS)
def test_documented_defaults(message, field, expected):
    assert schema.default(message, field) == expected
    assert type(schema.default(message, field)) is type(expected)


def test_field_specs_carry_number_type_and_repetition():
    spec = schema.field_spec("ConvolutionParameter", "kernel_size")
    assert (spec.number, spec.repeated, spec.type) == (4, True, "uint32")
    spec = schema.field_spec("PoolingParameter", "kernel_size")
    assert (spec.number, spec.repeated, spec.type) == (2, False, "uint32")
    assert schema.field_spec("PoolingParameter", "pool").type == "PoolingParameter.PoolMethod"
    assert schema.field_spec("NetStateRule", "phase").type == "Phase"
    assert schema.field_spec("NetParameter", "layer").number == 100
    assert schema.field_spec("ClipParameter", "max").required
    assert schema.MESSAGES["LayerParameter"].by_number(121).name == "pooling_param"
    assert schema.field_spec("PoolingParameter", "kernel") is None
    assert schema.field_spec("NoSuchParameter", "x") is None


def test_default_raises_for_unknown_fields():
    with pytest.raises(KeyError):
        schema.default("PoolingParameter", "kernel")
    with pytest.raises(KeyError):
        schema.default("NoSuchParameter", "x")


def test_message_type_of_and_is_enum():
    assert schema.message_type_of("LayerParameter", "pooling_param") == "PoolingParameter"
    assert schema.message_type_of("PoolingParameter", "pool") is None
    assert schema.message_type_of("BatchNormParameter", "scale_filler") == "FillerParameter"  # a fork field
    assert schema.message_type_of("LayerParameter", "no_such") is None
    assert schema.is_enum("V1LayerParameter.LayerType")
    assert not schema.is_enum("FillerParameter")
    assert schema.ENUMS["Phase"] == {"TRAIN": 0, "TEST": 1}
    assert schema.ENUMS["HingeLossParameter.Norm"] == {"L1": 1, "L2": 2}
    assert schema.enum_value_name("PoolingParameter.PoolMethod", 1) == "AVE"


PROTO_MESSAGES = (
    "NetParameter NetState NetStateRule LayerParameter ParamSpec LossParameter TransformationParameter "
    "BlobShape BlobProto BlobProtoVector Datum FillerParameter SolverParameter SolverState "
    "V1LayerParameter V0LayerParameter AccuracyParameter ArgMaxParameter BatchNormParameter BiasParameter "
    "ConcatParameter ContrastiveLossParameter ConvolutionParameter CropParameter DataParameter "
    "DropoutParameter DummyDataParameter EltwiseParameter ELUParameter EmbedParameter ExpParameter "
    "FlattenParameter HDF5DataParameter HDF5OutputParameter HingeLossParameter ImageDataParameter "
    "InfogainLossParameter InnerProductParameter InputParameter LogParameter LRNParameter "
    "MemoryDataParameter MVNParameter ParameterParameter PoolingParameter PowerParameter PythonParameter "
    "RecurrentParameter ReductionParameter ReLUParameter ReshapeParameter ScaleParameter SigmoidParameter "
    "SoftmaxParameter SPPParameter SliceParameter SwishParameter ClipParameter TanHParameter TileParameter "
    "ThresholdParameter WindowDataParameter PReLUParameter"
)


def test_every_message_the_proto_lists_is_known():
    missing = [name for name in PROTO_MESSAGES.split() if name not in schema.MESSAGES]
    assert missing == []


def test_tables_are_consistent():
    for message in schema.MESSAGES.values():
        numbers = [f.number for f in message.fields.values()]
        assert len(numbers) == len(set(numbers)), message.name
        for f in message.fields.values():
            known = f.type in schema.SCALAR_TYPES or f.type in schema.ENUMS or f.type in schema.MESSAGES
            assert known, (message.name, f.name, f.type)
            if schema.is_enum(f.type) and not f.repeated:
                assert f.default in schema.ENUMS[f.type], (message.name, f.name)
    layer = schema.MESSAGES["LayerParameter"]
    for layer_type, param in schema.LAYER_PARAM_FIELD.items():
        assert layer_type in schema.V2_LAYER_TYPES
        assert schema.message_type_of("LayerParameter", param) is not None, param
        assert param in layer.fields
    v1_names = set(schema.ENUMS["V1LayerParameter.LayerType"]) - {"NONE"}
    assert set(schema.V1_TYPE_TO_V2) == v1_names
    assert set(schema.V1_TYPE_TO_V2.values()) <= schema.V2_LAYER_TYPES
    assert schema.LOSS_LAYER_TYPES <= schema.V2_LAYER_TYPES
    assert len(schema.V2_LAYER_TYPES) == 61


def test_fork_extensions_name_their_fork_and_never_shadow_bvlc():
    for ext in schema.FORK_EXTENSIONS.values():
        assert ext.fork
        for layer_type in ext.layer_types:
            assert layer_type not in schema.V2_LAYER_TYPES
            assert schema.fork_layer_type(layer_type) == ext.fork
        for message, fields in ext.fields.items():
            assert message in schema.MESSAGES
            for name in fields:
                assert schema.field_spec(message, name) is None, (message, name)
                assert schema.fork_field(message, name)[0] == ext.fork
    assert schema.fork_field("SolverParameter", "eval_type")[0].startswith("SSD")
    assert schema.fork_field("SolverParameter", "base_lr") is None
    assert schema.fork_layer_type("ROIPooling").startswith("py-faster-rcnn")
    assert schema.fork_layer_type("Convolution") is None
    assert schema.param_field("SmoothL1Loss") == "smooth_l1_loss_param"
    assert schema.param_field("Pooling") == "pooling_param"
    assert "SmoothL1Loss" in schema.FORK_LOSS_LAYER_TYPES
    nv = schema.FORK_EXTENSIONS["NVCaffe (NVIDIA/caffe)"].fields["SolverParameter"]
    assert {"rampup_interval", "rampup_lr", "min_lr"} <= set(nv)
    intel = schema.FORK_EXTENSIONS["Intel Caffe (intel/caffe)"].fields["SolverParameter"]
    assert {"plateau_winsize", "stagelr", "stageiter", "warmup_iter", "warmup_start_lr"} <= set(intel)


# --- agreement with what Caffe itself wrote -------------------------------------------------------


def test_caffes_own_serializations_and_the_lr_oracle_solvers_validate_clean():
    upgraded = corpus_files("zoo", "upgraded", pattern="*.prototxt")
    solvers = corpus_files("oracles", "lr", pattern="*.prototxt")
    if not upgraded and not solvers:
        pytest.skip("corpus not available")
    for path in upgraded + solvers:
        root = "SolverParameter" if "solver" in path.name or path.parent.name == "lr" else "NetParameter"
        assert validate(parse_file(path, root), root) == [], path


def test_v1_to_v2_type_mapping_matches_caffes_upgrade():
    manifest = CORPUS / "zoo" / "MANIFEST.tsv"
    if not manifest.is_file():
        pytest.skip("corpus not available")
    with manifest.open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if r["syntax"] == "v1" and r["kind"] != "solver"]
    checked = 0
    for row in rows:
        upgraded = CORPUS / "zoo" / "upgraded" / f"{row['file']}.v2.prototxt"
        original = parse_file(CORPUS / "zoo" / row["file"], "NetParameter").root
        if not upgraded.is_file():
            continue
        v1_types = [m.get("type") for m in original.messages("layers") if m.has("type")]
        if not v1_types or not all(t in schema.V1_TYPE_TO_V2 for t in v1_types):
            continue  # V0 files carry string types of their own
        v2_types = [m.get("type") for m in parse_file(upgraded, "NetParameter").root.messages("layer")]
        assert [schema.V1_TYPE_TO_V2[t] for t in v1_types] == v2_types, row["file"]
        checked += 1
    assert checked >= 2
