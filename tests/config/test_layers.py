"""The layer-type table agrees with caffe.proto's enums, the forks' schema and the shape functions."""

from __future__ import annotations

from nandoctor.config import layers, schema, shapes


def test_v1_names_are_caffe_protos_enum():
    enum = set(schema.ENUMS["V1LayerParameter.LayerType"]) - {"NONE"}
    assert set(layers.V1_TYPE_TO_V2) == enum
    assert all(layers.V2_TO_V1_TYPE[v2] == v1 for v1, v2 in layers.V1_TYPE_TO_V2.items())


def test_fork_rows_are_the_forks_layer_types():
    fork_types = {t for ext in schema.FORK_EXTENSIONS.values() for t in ext.layer_types}
    for row in layers.TABLE:
        assert (row.name in fork_types) == (row.fork is not None), row.name
        assert row.fork is None or row.param is None  # a fork's *_param lives with its fork's schema


def test_losses_are_the_loss_layers():
    # every BVLC LossLayer subclass is named ...Loss, and every ...Loss type is one
    assert {t for t in layers.V2_LAYER_TYPES if t.endswith("Loss")} == layers.LOSS_LAYER_TYPES
    assert {"SmoothL1Loss", "MultiBoxLoss"} == layers.ANY_LOSS_TYPES - layers.LOSS_LAYER_TYPES
    assert {"SmoothL1Loss", "MultiBoxLoss"} == schema.FORK_LOSS_LAYER_TYPES


def test_every_shape_name_is_a_shape_function():
    assert set(shapes.SHAPE_FUNCTIONS) == set(layers.SHAPE_OF)
    assert all(f.__name__ == "_" + layers.SHAPE_OF[t] for t, f in shapes.SHAPE_FUNCTIONS.items())


def test_param_fields_are_layer_parameter_fields():
    fields = schema.MESSAGES["LayerParameter"].fields
    assert all(p in fields for p in layers.LAYER_PARAM_FIELD.values())
    assert layers.INPUT_TYPES >= layers.SOURCE_TYPES and layers.INPUT_TYPES >= layers.TRANSFORM_LAYER_TYPES
