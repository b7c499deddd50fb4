"""NAN6xx rules on hand-made TorchFacts: each fires on its pattern and stays quiet otherwise."""

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from nandoctor.core.registry import DOC_SECTIONS, Facts, all_rules, run_rules, select_rules  # noqa: E402
from nandoctor.core.types import Cause  # noqa: E402
from nandoctor.torch.diagnosis import diagnose_facts, render_text  # noqa: E402
from nandoctor.torch.facts import TorchFacts, num, value  # noqa: E402
from nandoctor.torch.pooling import empty_windows, geometry_report, window_count  # noqa: E402
from tests.torch.loops import CaffeAvgPool2d  # noqa: E402

TORCH_CODES = {
    "NAN601",
    "NAN602",
    "NAN610",
    "NAN611",
    "NAN620",
    "NAN625",
    "NAN630",
    "NAN631",
    "NAN632",
    "NAN640",
    "NAN650",
    "NAN651",
    "NAN652",
    "NAN660",
    "NAN670",
}


def codes(facts: TorchFacts) -> set[str]:
    return {f.code for f in run_rules(Facts(torch=facts), select_rules(["NAN6"]))}


def healthy(**kw) -> TorchFacts:
    base = {"step": 10, "trigger": "loss", "loss": "nan", "lrs": [0.1], "lr_history": [[0.1]] * 5}
    return TorchFacts(**{**base, **kw})


PRODUCER = {"op": "Tensor.div", "where": "loss", "module": None, "stack": [], "input_absmax": 3.0}


def test_torch_rules_are_registered_documented_and_need_torch_facts():
    rules = {r.code: r for r in all_rules() if r.code.startswith("NAN6")}
    assert set(rules) == TORCH_CODES
    for cls in rules.values():
        assert cls.needs == ("torch",)
        assert set(DOC_SECTIONS) <= set(cls.docs())


def test_caffe_facts_never_reach_torch_rules():
    assert not [f for f in run_rules(Facts(net=object(), solver=object()), select_rules(["NAN6"]))]


def test_lr_rules():
    assert codes(healthy(lrs=["nan"])) == {"NAN601"}
    assert codes(healthy(lrs=[-0.01])) == {"NAN601"}
    assert codes(healthy(lrs=[0.0])) == set()
    grown = healthy(lrs=[5.0], lr_history=[[0.01], [0.1], [1.0], [5.0]])
    assert codes(grown) == {"NAN602"}
    assert codes(healthy(lrs=[0.2], lr_history=[[0.1], [0.15], [0.2]])) == set()


def test_explosion_rule_needs_growth_sane_lr_and_finite_batch():
    top = [{"name": "fc.weight", "growth": 1e5, "norm": 1e6, "baseline": 10.0}]
    exploding = dict(growth=1e5, top_params=top, grad_norms=[1.0, 10.0, 1e3, 1e6], suggested_max_norm=2.0)
    assert codes(healthy(**exploding)) == {"NAN610"}
    assert codes(healthy(**{**exploding, "growth": 20.0})) == set()
    assert "NAN610" not in codes(healthy(**exploding, batch=[{"path": "batch[0]", "batch_indices": [0]}]))
    d = diagnose_facts(healthy(**exploding))
    assert d.causes[0].cause is Cause.GRADIENT_EXPLOSION and d.causes[0].culprit == "fc.weight"
    assert "max_norm=2" in d.causes[0].fixes[0].description


def test_growing_lr_outranks_the_explosion_it_caused():
    top = [{"name": "w", "growth": 1e4, "norm": 1e4, "baseline": 1.0}]
    facts = healthy(growth=1e4, top_params=top, lrs=[1.0], lr_history=[[0.01], [0.1], [1.0]])
    assert [c.cause for c in diagnose_facts(facts).causes] == [Cause.LR_POLICY, Cause.GRADIENT_EXPLOSION]


def test_loss_rule_and_its_negative_cases():
    assert codes(healthy(forward={**PRODUCER, "zero_divisor": True})) == {"NAN620"}
    assert codes(healthy(forward={**PRODUCER, "where": "model", "module": "fc"})) == {"NAN650"}
    huge = healthy(forward={**PRODUCER, "input_absmax": 1e30}, growth=1e6)
    d = diagnose_facts(huge)
    assert d.causes[0].cause is not Cause.LOSS_FUNCTION  # the loss only surfaced an explosion
    backward = {"node": "SqrtBackward0", "op": "torch.sqrt", "where": "loss"}
    assert codes(healthy(trigger="grad", loss=1.0, backward=backward)) == {"NAN620"}


def test_bad_input_rules():
    batch = [{"path": "batch[0]", "nan": 2, "inf": 0, "batch_indices": [3], "dataset_indices": [41]}]
    facts = healthy(batch=batch, forward=PRODUCER)
    assert codes(facts) == {"NAN630"}  # a producer seen in a poisoned batch means nothing
    assert diagnose_facts(facts).causes[0].culprit == "batch[0][3] = dataset[41]"
    assert codes(healthy(forward={**PRODUCER, "where": "input"})) == {"NAN631"}


def test_pooling_rule_with_geometry_evidence():
    module = {
        "module": "pool",
        "module_type": "CaffeAvgPool2d",
        "input_shape": [8, 4, 6, 6],
        "attrs": {"kernel_size": 2, "stride": 3, "padding": 0, "ceil_mode": True},
    }
    fwd = {**PRODUCER, "where": "model", "module": "pool", "module_type": "CaffeAvgPool2d", "module_producer": module}
    d = diagnose_facts(healthy(forward=fwd))
    assert d.causes[0].cause is Cause.POOLING and d.causes[0].culprit == "pool"
    assert any("covers positions 6..7" in e.text for e in d.causes[0].evidence)
    plain = {**PRODUCER, "where": "model", "module": "fc", "module_type": "Linear", "stack": [["fc", "Linear"]]}
    assert "NAN640" not in codes(healthy(forward=plain))


def test_backward_producer_in_model_and_scale_collapse():
    bwd = {"node": "SqrtBackward0", "op": "torch.sqrt", "where": "model", "module": "dist"}
    assert codes(healthy(trigger="grad", loss=1.0, backward=bwd)) == {"NAN651"}
    scaler = {"scale": 2.0**-9, "consecutive_skips": 12, "scale_history": [1.0, 0.5]}
    assert "NAN611" in codes(healthy(trigger="scale_collapse", loss=1.0, scaler=scaler))
    assert "NAN611" not in codes(healthy(trigger="grad", loss=1.0, scaler=scaler))


def test_update_rule_names_the_poisoned_weight_and_zero_eps():
    adam = {"type": "Adam", "groups": [{"lr": 1e-3, "eps": 0.0}]}
    facts = healthy(nonfinite_params=["gate"], optimizer=adam, forward={**PRODUCER, "where": "model"})
    d = diagnose_facts(facts)
    assert d.causes[0].cause is Cause.GRADIENT_EXPLOSION and d.causes[0].culprit == "gate"
    assert d.causes[0].confidence == 0.9 and "eps" in d.causes[0].fixes[0].description
    sgd = {"type": "SGD", "groups": [{"lr": 0.1}]}
    assert next(f for f in diagnose_facts(healthy(nonfinite_params=["w"], optimizer=sgd)).findings).data[
        "confidence"
    ] == pytest.approx(0.6)
    assert "NAN652" not in codes(healthy(optimizer=adam))
    assert "NAN652" not in codes(healthy(nonfinite_params=["w"], optimizer=adam, growth=1e4))


def test_nothing_named_is_an_honest_unknown():
    d = diagnose_facts(healthy(replay={"ran": False, "reason": "no batch given to check()"}))
    assert d.causes[0].cause is Cause.UNKNOWN and d.causes[0].confidence < 0.5
    assert any("closure" in s for s in d.next_steps)
    assert "verdict: nan" in render_text(d)


def test_facts_json_round_trip_keeps_non_finite_numbers_standard():
    facts = healthy(lrs=[num(float("inf"))], grad_norms=[1.0, num(float("nan"))])
    again = TorchFacts.from_dict(facts.to_dict())
    assert again == facts and again.lrs == ["inf"] and value(again.lrs[0]) == float("inf")


@settings(max_examples=150, deadline=None)
@given(
    size=st.integers(1, 9),
    kernel=st.integers(1, 4),
    stride=st.integers(1, 5),
    pad=st.integers(0, 2),
    ceil_mode=st.booleans(),
)
def test_geometry_predicts_exactly_when_caffe_style_pooling_makes_nan(size, kernel, stride, pad, ceil_mode):
    if pad >= kernel or size + 2 * pad < kernel:
        return
    x = torch.rand(1, 1, size, size) + 0.5
    out = CaffeAvgPool2d(kernel, stride, pad, ceil_mode)(x)
    report = geometry_report(
        {"kernel_size": kernel, "stride": stride, "padding": pad, "ceil_mode": ceil_mode}, list(x.shape)
    )
    assert bool(report["empty_windows"]) == (not bool(torch.isfinite(out).all()))
    assert out.shape[-1] == window_count(size, kernel, stride, pad, 1, ceil_mode)


def test_torch_builtin_pooling_never_has_empty_windows_for_the_same_geometries():
    # why the rule looks for hand-written pooling: PyTorch clips the last window itself
    for size, kernel, stride in [(6, 2, 3), (5, 1, 3), (6, 1, 4)]:
        out = torch.nn.AvgPool2d(kernel, stride, ceil_mode=True)(torch.rand(1, 1, size, size))
        assert torch.isfinite(out).all()
        assert empty_windows(size, kernel, stride, 0, 1, True)
