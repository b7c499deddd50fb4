"""Every boolean field nandoctor reads, read as protobuf's text parser reads it: ``true``,
``True``, ``t``, ``1`` are true and ``false``, ``False``, ``f``, ``0`` are false (``bool()`` of
the identifier called ``false`` true, which changed the diagnosis)."""

from __future__ import annotations

import pytest

from nandoctor.config.net import load_net
from nandoctor.config.pooling import PoolParams
from nandoctor.config.solver import load_solver
from nandoctor.config.textformat import boolean, parse_text
from nandoctor.data.netsources import specs_for_net

TRUE = ["true", "True", "t", "1"]
FALSE = ["false", "False", "f", "0"]
SPELLINGS = [(w, True) for w in TRUE] + [(w, False) for w in FALSE]


def _value(literal: str):
    return parse_text(f"x: {literal}", root=None).root.get("x")


@pytest.mark.parametrize(("literal", "expected"), SPELLINGS)
def test_boolean_spellings(literal, expected):
    assert boolean(_value(literal)) is expected


@pytest.mark.parametrize("literal", ["yes", "TRUE", "on", "2", "-1", "1.0"])
def test_not_a_boolean_is_not_guessed(literal):
    assert boolean(_value(literal)) is None
    assert boolean(_value(literal), default=False) is False


def _net(layer: str) -> object:
    text = f'name: "n"\n{layer}\nlayer {{ name: "loss" type: "EuclideanLoss" bottom: "data" bottom: "label" top: "loss" }}\n'
    return load_net(parse_text(text, "net.prototxt", "NetParameter"))


def _spec(layer: str, solver_text: str = "", phase: str = "TRAIN"):
    solver = load_solver(parse_text(solver_text or 'base_lr: 0.1\nlr_policy: "fixed"', "s.prototxt", "SolverParameter"))
    specs = specs_for_net(_net(layer), "/nonexistent", solver, phases=(phase,))
    assert len(specs) == 1
    return specs[0]


HDF5 = 'layer {{ name: "d" type: "HDF5Data" top: "data" top: "label" hdf5_data_param {{ source: "l.txt" batch_size: 2 {} }} }}'
IMAGE = (
    'layer {{ name: "d" type: "ImageData" top: "data" top: "label" {t}'
    'image_data_param {{ source: "l.txt" batch_size: 2 {p} }} }}'
)
DATA = 'layer {{ name: "d" type: "Data" top: "data" top: "label" {t} data_param {{ source: "db" batch_size: 2 backend: LMDB }} }}'


@pytest.mark.parametrize(("literal", "expected"), SPELLINGS)
def test_hdf5_shuffle(literal, expected):
    assert _spec(HDF5.format(f"shuffle: {literal}")).schedule.shuffle is expected


@pytest.mark.parametrize(("literal", "expected"), SPELLINGS)
def test_image_data_shuffle(literal, expected):
    assert _spec(IMAGE.format(t="", p=f"shuffle: {literal}")).schedule.shuffle is expected


@pytest.mark.parametrize(("literal", "expected"), SPELLINGS)
def test_image_data_is_color(literal, expected):
    assert _spec(IMAGE.format(t="", p=f"is_color: {literal}")).is_color is expected


@pytest.mark.parametrize("field", ["force_color", "force_gray"])
@pytest.mark.parametrize(("literal", "expected"), SPELLINGS)
def test_transform_force_color_and_gray(field, literal, expected):
    spec = _spec(DATA.format(t=f"transform_param {{ {field}: {literal} }}"))
    assert getattr(spec, field) is expected


@pytest.mark.parametrize(("literal", "expected"), SPELLINGS)
def test_solver_test_initialization(literal, expected):
    solver = f'base_lr: 0.1\nlr_policy: "fixed"\ntest_iter: 1\ntest_interval: 10\ntest_initialization: {literal}'
    layer = DATA.format(t="include { phase: TEST }")
    assert _spec(layer, solver, "TEST").schedule.test_initialization is expected


@pytest.mark.parametrize(("literal", "expected"), SPELLINGS)
def test_pooling_global_pooling(literal, expected):
    msg = parse_text(f"global_pooling: {literal}", root=None).root
    assert PoolParams.from_message(msg).global_pooling is expected


@pytest.mark.parametrize(("literal", "expected"), SPELLINGS)
def test_shapes_is_color_force_color_out_max_val(literal, expected):
    from nandoctor.config import shapes

    image = _net(IMAGE.format(t="", p=f"is_color: {literal} new_height: 4 new_width: 4")).layers[0]
    assert shapes._image_data(image, [], None)[0][1] == (3 if expected else 1)
    data = _net(DATA.format(t=f"transform_param {{ force_color: {literal} }}")).layers[0]
    assert shapes._transform_dims(data, None)[0] == (3 if expected else None)
    gray = _net(DATA.format(t=f"transform_param {{ force_gray: {literal} }}")).layers[0]
    assert shapes._transform_dims(gray, None)[0] == (1 if expected else None)


BN_NET = """name: "bn"
layer {{ name: "d" type: "Input" top: "data" input_param {{ shape {{ dim: 2 dim: 3 }} }} }}
layer {{ name: "bn" type: "BatchNorm" bottom: "data" top: "bn" batch_norm_param {{ use_global_stats: {} }} }}
layer {{ name: "loss" type: "EuclideanLoss" bottom: "bn" bottom: "data" top: "loss" }}
"""
PROD_NET = """name: "prod"
layer {{ name: "d" type: "Input" top: "data" input_param {{ shape {{ dim: 2 dim: 3 }} }} }}
layer {{ name: "p" type: "Eltwise" bottom: "data" bottom: "data" top: "p" eltwise_param {{ operation: PROD stable_prod_grad: {} }} }}
layer {{ name: "loss" type: "EuclideanLoss" bottom: "p" bottom: "data" top: "loss" }}
"""


def _codes(tmp_path, text: str) -> set[str]:
    from nandoctor.lint import lint_paths

    path = tmp_path / "net.prototxt"
    path.write_text(text)
    return {f.code for f in lint_paths([str(path)])[0].findings}


@pytest.mark.parametrize(("literal", "expected"), SPELLINGS)
def test_batchnorm_use_global_stats(tmp_path, literal, expected):
    assert ("NAN130" in _codes(tmp_path, BN_NET.format(literal))) is expected


@pytest.mark.parametrize(("literal", "expected"), SPELLINGS)
def test_eltwise_stable_prod_grad_changes_the_finding(tmp_path, literal, expected):
    unstable = _codes(tmp_path, PROD_NET.format("false"))
    got = _codes(tmp_path, PROD_NET.format(literal))
    assert (got == unstable) is (not expected)
