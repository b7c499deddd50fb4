"""Every log rule (NAN3xx, NAN5xx) fires on a minimal excerpt that shows its symptom, and not on a near miss."""

from __future__ import annotations

import pytest

from nandoctor.core.registry import Facts, all_rules, get_rule, run_rules
from nandoctor.core.types import Cause
from tests.log.conftest import FIXTURES, parse_text_log

P = "I20261123 10:00:00.000000  4242 "


def run_log(losses, lrs=None, outputs=None, extra="", display=10):
    """A log with one display per entry; outputs: list of lists of (name, value, weight)."""
    lines = []
    for k, loss in enumerate(losses):
        it = k * display
        lines.append(f"{P}solver.cpp:239] Iteration {it} (1 iter/s, 1s/{display} iters), loss = {loss}")
        for j, (name, value, weight) in enumerate((outputs or [[]] * len(losses))[k]):
            lines.append(f"{P}solver.cpp:258]     Train net output #{j}: {name} = {value} (* {weight} = {value} loss)")
        lr = (lrs or ["0.01"] * len(losses))[k]
        lines.append(f"{P}sgd_solver.cpp:112] Iteration {it}, lr = {lr}")
    return parse_text_log("\n".join(lines) + "\n" + extra)


def findings(trace, code):
    return list(run_rules(Facts(trace=trace), [get_rule(code)]))


def fires(trace, code):
    found = findings(trace, code)
    assert found, f"{code} should fire"
    return found[0]


def silent(trace, code):
    assert findings(trace, code) == [], f"{code} should stay silent"


HEALTHY = ["2.3", "2.0", "1.5", "1.2", "0.9"]


def test_every_log_rule_is_documented_and_needs_the_trace():
    codes = [c for c in all_rules() if c.code.startswith(("NAN3", "NAN50"))]
    assert len(codes) >= 20
    for cls in codes:
        assert cls.needs == ("trace",)


@pytest.mark.parametrize("code", [c.code for c in all_rules() if c.code.startswith(("NAN3", "NAN50"))])
def test_healthy_log_is_silent(code):
    silent(run_log(HEALTHY), code)


def test_nan300_first_nonfinite():
    f = fires(run_log(["2.3", "2.0", "-nan", "-nan"]), "NAN300")
    assert f.data["first_nonfinite_iteration"] == 20 and f.data["value"] == "-nan"
    assert f.location.line == 5 and f.evidence[0].location.line == 5
    outs = [[("a", "1", 1), ("b", "1", 1)], [("a", "inf", 1), ("b", "1", 1)], [("a", "nan", 1), ("b", "nan", 1)]]
    f = fires(run_log(["2", "3", "-nan"], outputs=outs, lrs=["0.1", "0.1", "nan"]), "NAN300")
    assert f.data["first_nonfinite_iteration"] == 10 and f.data["first_nonfinite_loss_iteration"] == 20
    assert f.data["first_nonfinite_by_output"] == {"a": 10, "b": 20}
    assert f.data["first_nonfinite_lr_iteration"] == 20


def test_nan301_nan_at_start_needs_a_finite_lr():
    f = fires(run_log(["-nan", "-nan"]), "NAN301")
    assert f.data["first_nonfinite_iteration"] == 0
    assert set(f.data["candidates"]) == {"pooling", "bad_input", "loss_function"}
    silent(run_log(["-nan", "-nan"], lrs=["nan", "nan"]), "NAN301")
    silent(run_log(["2.3", "-nan"]), "NAN301")


def test_nan302_rising_loss():
    f = fires(run_log(["2", "4", "9", "20", "45", "-nan"]), "NAN302")
    assert f.cause is Cause.GRADIENT_EXPLOSION and f.data["growth_factor"] >= 10 and f.data["monotonic"]
    fires(run_log(["39038", "-nan"]), "NAN302")
    silent(run_log(["2.3", "2.0", "1.5", "-nan"]), "NAN302")


def test_nan303_flat_then_jump():
    trace = run_log(["2.30", "2.31", "2.29", "2.30", "7.07", "-nan"])
    f = fires(trace, "NAN303")
    assert f.data["trend"] == "flat_then_jump" and f.data["last_step_factor"] > 3
    silent(trace, "NAN302")
    silent(run_log(["2", "4", "9", "20", "45", "-nan"]), "NAN303")


def test_nan304_sudden_nan_after_a_falling_loss():
    f = fires(run_log(["1.8", "1.6", "1.4", "1.29", "-nan"]), "NAN304")
    assert f.data["trend"] == "flat_or_falling" and f.data["candidates"][0] == "loss_function"
    silent(run_log(["2", "4", "9", "20", "45", "-nan"]), "NAN304")


def test_nan305_softmax_plateau():
    outs = [[("loss", "2.3", 1)], [("loss", "87.3365", 1)]]
    f = fires(run_log(["2.3", "87.3365"], outputs=outs), "NAN305")
    assert f.culprit == "loss" and f.data["plateau"] == pytest.approx(87.3365)
    silent(run_log(["2.3", "87.1"], outputs=[[("loss", "2.3", 1)], [("loss", "87.1", 1)]]), "NAN305")


def test_nan306_which_output_first():
    outs = [[("a", "1", 1), ("b", "1", 1)], [("a", "-nan", 1), ("b", "1.1", 1)], [("a", "-nan", 1), ("b", "-nan", 1)]]
    f = fires(run_log(["2", "-nan", "-nan"], outputs=outs), "NAN306")
    assert f.culprit == "a" and f.data["per_output"] == {"a": 10, "b": 20}
    together = [[("a", "1", 1), ("b", "1", 1)], [("a", "-nan", 1), ("b", "-nan", 1)]]
    silent(run_log(["2", "-nan"], outputs=together), "NAN306")


def test_nan307_smoothed_loss_poisoned_while_outputs_are_finite():
    outs = [[("loss", "1.3", 1)], [("loss", "1.2", 1)], [("loss", "1.1", 1)]]
    f = fires(run_log(["1.3", "-nan", "-nan"], outputs=outs), "NAN307")
    assert f.data["outputs_recovered"] is True
    silent(run_log(["1.3", "-nan"], outputs=[[("loss", "1.3", 1)], [("loss", "-nan", 1)]]), "NAN307")


def test_nan308_dominant_output():
    outs = [[("loss_bbox", "39035.7", 200), ("loss_cls", "2.3", 1)]]
    f = fires(run_log(["39038"], outputs=outs), "NAN308")
    assert f.culprit == "loss_bbox" and f.data["ratio"] > 1000
    silent(run_log(["5"], outputs=[[("a", "2.7", 1), ("b", "2.3", 1)]]), "NAN308")


def test_nan310_311_312_lr():
    f = fires(run_log(["1.2", "1.1", "1.0"], lrs=["0.002", "0", "-nan"]), "NAN310")
    assert f.cause is Cause.LR_POLICY and f.data["first_nonfinite_lr_iteration"] == 20
    f = fires(run_log(["1.2", "1.1"], lrs=["0.01", "-0.01"]), "NAN311")
    assert f.data["value"] == -0.01
    f = fires(run_log(["1.2", "1.1", "3", "-nan"], lrs=["0.01", "0.1", "1", "10"]), "NAN312")
    assert f.data["growth_factor"] == pytest.approx(1000)
    silent(run_log(HEALTHY, lrs=["0.1", "0.05", "0.01", "0.005", "0.001"]), "NAN312")


def clip_line(norm, factor):
    return (f"{P}sgd_solver.cpp:99] Gradient clipping: scaling down gradients (L2 norm {norm} > 35) "
            f"by scale factor {factor}\n")  # fmt: skip


def test_nan320_clip_norms_rising():
    f = fires(run_log(HEALTHY, extra=clip_line(40, 0.8) + clip_line(400, 0.08) + clip_line("inf", 0)), "NAN320")
    # three clip lines after the display of iteration 40: Caffe clips (and prints) at 40, 41 and 42
    assert f.data["nonfinite_norm_iteration"] == 42 and f.cause is Cause.GRADIENT_EXPLOSION
    silent(run_log(HEALTHY, extra=clip_line(40, 0.8) + clip_line(45, 0.7)), "NAN320")


def test_nan330_test_output():
    test = (f"{P}solver.cpp:347] Iteration 40, Testing net (#0)\n"
            f"{P}solver.cpp:414]     Test net output #0: loss = nan (* 1 = nan loss)\n")  # fmt: skip
    f = fires(run_log(HEALTHY, extra=test), "NAN330")
    assert f.data["first_nonfinite_test_iteration"] == 40 and f.data["before_train"] is True
    silent(run_log(HEALTHY, extra=test.replace("nan", "0.5")), "NAN330")


def test_nan340_check_failed():
    trace = parse_text_log((FIXTURES / "crash_stepsize.log").read_bytes())
    f = fires(trace, "NAN340")
    assert f.cause is Cause.LR_POLICY and f.culprit == "stepsize" and f.location.line == 4
    other = run_log(HEALTHY, extra="F1123 10:00:00.0 1 blob.cpp:1] Check failed: shape[i] >= 0 (-1 vs. 0)\n")
    assert fires(other, "NAN340").cause is Cause.UNKNOWN
    silent(run_log(HEALTHY), "NAN340")


def test_nan341_crash():
    sigfpe = "*** SIGFPE (@0x55) received by PID 5 (TID 0x7f) from PID 5; stack trace: ***\n"
    trace = parse_text_log(
        f"{P}solver.cpp:290] Learning Rate Policy: step\n{P}solver.cpp:239] Iteration 0, loss = 2.3\n" + sigfpe
    )
    f = fires(trace, "NAN341")
    assert f.cause is Cause.LR_POLICY and f.culprit == "stepsize"
    after_nan = run_log(["2", "-nan"], extra="double free or corruption (out)\n")
    f = fires(after_nan, "NAN341")
    assert f.cause is Cause.UNKNOWN and f.data["after_nonfinite"]


def debug_log(body: str, net_types: dict[str, str] | None = None) -> str:
    head = ""
    if net_types:
        layers = "".join(f'layer {{\n  name: "{n}"\n  type: "{t}"\n}}\n' for n, t in net_types.items())
        head = f'{P}net.cpp:53] Initializing net from parameters: \nname: "N"\n{layers}'
    return head + body


def fwd(layer, value, blob=None):
    return f"{P}net.cpp:593]     [Forward] Layer {layer}, top blob {blob or layer} data: {value}\n"


def it_line(i):
    return f"{P}solver.cpp:239] Iteration {i} (1 iter/s, 1s/1 iters), loss = 1\n"


def test_nan500_forward_origin_with_layer_type():
    types = {"data": "Data", "conv1": "Convolution", "pool1": "Pooling", "loss": "SoftmaxWithLoss"}
    body = fwd("data", 0.5) + fwd("conv1", 0.2) + fwd("pool1", "nan") + fwd("loss", "nan") + it_line(0)
    f = fires(parse_text_log(debug_log(body, types)), "NAN500")
    assert (f.culprit, f.cause, f.data["phase"], f.data["layer_type"]) == ("pool1", Cause.POOLING, "forward", "Pooling")
    body = fwd("data", "nan") + fwd("loss", "nan") + it_line(0)
    assert fires(parse_text_log(debug_log(body, types)), "NAN500").cause is Cause.BAD_INPUT
    silent(parse_text_log(debug_log(fwd("data", 0.5) + it_line(0), types)), "NAN500")


def test_nan501_backward_origin():
    trace = parse_text_log((FIXTURES / "debug_info.log").read_bytes())
    f = fires(trace, "NAN501")
    assert (f.culprit, f.data["phase"], f.data["iteration"]) == ("loss", "backward", 1)
    silent(trace, "NAN500")


def test_nan502_weights_broken_by_the_update():
    param = f"{P}net.cpp:605]     [Forward] Layer conv1, param blob 0 data: "
    body = fwd("conv1", 0.2) + param + "0.1\n" + it_line(0) + param + "nan\n" + fwd("conv1", "nan") + it_line(1)
    f = fires(parse_text_log(body), "NAN502")
    assert (f.culprit, f.data["phase"], f.data["iteration"]) == ("conv1", "update", 1)
    silent(parse_text_log(body), "NAN500")


def test_nan503_growth_by_orders_of_magnitude():
    body = fwd("fc6", 0.25) + it_line(0) + fwd("fc6", 250) + it_line(1) + fwd("fc6", "inf") + it_line(2)
    f = fires(parse_text_log(body), "NAN503")
    assert (f.culprit, f.data["from_iteration"], f.data["iteration"]) == ("fc6", 0, 1)
    assert f.data["growth_factor"] == pytest.approx(1000)
    calm = fwd("fc6", 0.25) + it_line(0) + fwd("fc6", 2.5) + it_line(1)
    silent(parse_text_log(calm), "NAN503")


def test_findings_of_several_runs_say_which_run():
    a = f"{P}solver.cpp:239] Iteration 0 (1 iter/s, 1s/1 iters), loss = 2\n"
    b = f"{P}solver.cpp:239] Iteration 0 (1 iter/s, 1s/1 iters), loss = nan\n"
    f = fires(parse_text_log(a + b), "NAN300")
    assert f.message.startswith("run 2:") and f.data["segment"] == 1
