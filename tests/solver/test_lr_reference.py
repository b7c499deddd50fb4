"""The vectorised lr engine against a plain scalar float32 re-implementation of
SGDSolver::GetLearningRate, over random parameters (hypothesis), plus printing and C math."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nandoctor.config import cmath32, lr

F = np.float32


def ref_pow(x: float, y: float) -> float:
    """C pow in double, from Python's math.pow (the platform libm) plus the C99 special cases."""
    if y == 0 or x == 1:
        return 1.0
    if math.isnan(x) or math.isnan(y):
        return math.nan
    try:
        return math.pow(x, y)
    except ValueError:  # 0 ** negative, or a negative base with a fractional power
        if x == 0:
            odd = y == int(y) and int(y) % 2 == 1
            return math.copysign(math.inf, x) if odd else math.inf
        return math.nan
    except OverflowError:
        odd = y == int(y) and int(y) % 2 == 1
        return -math.inf if (x < 0 and odd) else math.inf


def ref_exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def f32(x: float) -> np.float32:
    with np.errstate(all="ignore"):
        return F(x)


def reference(p: lr.LrParams, n: int) -> list[np.float32]:
    """One iteration at a time, as the C++ does it (float ops, double pow for integer powers)."""
    out = []
    current_step = 0
    with np.errstate(all="ignore"):
        for it in range(n):
            base, gamma, power = p.base_lr, p.gamma, p.power
            if p.policy == "fixed":
                rate = base
            elif p.policy == "step":
                k = int(it / p.stepsize)  # C++ integer division truncates
                rate = f32(float(base) * ref_pow(float(gamma), k))
            elif p.policy == "exp":
                rate = f32(float(base) * ref_pow(float(gamma), it))
            elif p.policy == "inv":
                x = F(1) + gamma * F(it)
                rate = base * f32(ref_pow(float(x), float(-power)))
            elif p.policy == "multistep":
                if current_step < len(p.stepvalues) and it >= p.stepvalues[current_step]:
                    current_step += 1
                rate = f32(float(base) * ref_pow(float(gamma), current_step))
            elif p.policy == "poly":
                x = F(1) - F(it) / F(p.max_iter)
                rate = base * f32(ref_pow(float(x), float(power)))
            else:  # sigmoid
                e = f32(ref_exp(float(-gamma * (F(it) - F(p.stepsize)))))
                rate = base * (F(1) / (F(1) + e))
            out.append(F(rate))
    return out


def same(a, b) -> bool:
    a, b = float(a), float(b)
    return (math.isnan(a) and math.isnan(b)) or a == b


floats = st.one_of(
    st.floats(-3, 3, allow_nan=False, width=32),
    st.sampled_from([0.0, 1.0, -1.0, 0.1, 0.5, 0.9, 0.999, 1.05, 2.0, 10.0, 1e-8, 1e38, 1e39, math.inf, math.nan]),
)
params = st.builds(
    lambda policy, base, gamma, power, stepsize, stepvalues, max_iter: lr.LrParams.make(
        policy,
        base_lr=base,
        gamma=gamma,
        power=power,
        stepsize=stepsize,
        stepvalues=stepvalues,
        max_iter=max_iter,
    ),
    st.sampled_from([*lr.POLICIES, "", "Step"]),
    st.one_of(st.floats(-1, 1, allow_nan=False, width=32), st.sampled_from([0.0, 1e-38, 3e38, 1e39, math.nan])),
    floats,
    floats,
    st.integers(-5, 120),
    st.lists(st.integers(-5, 150), max_size=5),
    st.integers(-100, 200),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(p=params, n=st.integers(0, 160))
def test_schedule_agrees_with_scalar_reference(p, n):
    abort = lr.caffe_abort(p)
    try:
        checked = lr.schedule(p, n)
        assert abort is None
    except lr.LrAbort as exc:
        assert abort is not None and exc.abort == abort
    try:
        got = lr.schedule(p, n, checks=False)  # the arithmetic of builds without the checks
    except lr.LrAbort:
        assert p.policy not in lr.POLICIES or (p.policy == "step" and p.stepsize == 0)
        return
    want = reference(p, n)
    bad = [(i, got[i], want[i]) for i in range(n) if not same(got[i], want[i])]
    assert not bad, bad[:5]
    if abort is None:
        assert np.array_equal(checked.view(np.uint32), got.view(np.uint32))


@settings(max_examples=25, deadline=None)
@given(
    base=st.sampled_from([0.01, 1.0, 3e38, 0.0, math.inf, -0.5]),
    gamma=st.one_of(st.floats(0.5, 1.5, width=32), st.sampled_from([0.999, 1.0001, -0.9999, 0.0])),
)
def test_long_exponent_ranges_are_exact(base, gamma):
    """exp over 70,000 iterations takes the table path; compare a sample with libm pow."""
    p = lr.LrParams.make("exp", base_lr=base, gamma=abs(gamma) if gamma != -0.9999 else 0.9999)
    rates = lr.schedule(p, 70_000, checks=False)
    picks = np.unique(np.concatenate([np.arange(0, 70_000, 97), [69_999]]))
    for i in picks:
        want = f32(float(p.base_lr) * ref_pow(float(p.gamma), int(i)))
        assert same(rates[i], want), (i, rates[i], want)


def test_scaled_pow_negative_gamma_long_range():
    k = np.arange(70_000)
    got = cmath32.scaled_pow_f32(F(0.5), F(-0.9999), k)
    for i in range(0, 70_000, 301):
        assert same(got[i], f32(float(F(0.5)) * ref_pow(float(F(-0.9999)), i)))


def test_format_lr_matches_caffe_printing():
    assert lr.format_lr(F(0.01)) == "0.01"
    assert lr.format_lr(F(1e-5)) == "1e-05"
    assert lr.format_lr(F(3e38)) == "3e+38"
    assert lr.format_lr(F(0.0)) == "0"
    assert lr.format_lr(F(-0.0)) == "-0"
    assert lr.format_lr(F(math.inf)) == "inf"
    assert lr.format_lr(F(-math.inf)) == "-inf"
    assert lr.format_lr(F(math.nan)) == "nan"
    assert lr.format_lr(F(-math.nan)) == "-nan"
    assert lr.format_lr(F(2.8026e-45)) == "2.8026e-45"


def test_invalid_operations_give_the_x86_default_nan():
    zero = np.zeros(1, dtype=F)
    assert np.signbit(cmath32.f32_div(zero, zero))[0]  # 0/0 -> -nan
    assert np.signbit(cmath32.powf(np.array([-0.5], dtype=F), 0.9))[0]  # powf(neg, 0.9) -> -nan
    nan = np.array([math.nan], dtype=F)
    assert not np.signbit(cmath32.f32_mul(nan, F(2)))[0]  # a positive NaN operand propagates
    assert cmath32.powf(np.array([-math.inf], dtype=F), 0.9)[0] == math.inf
    assert cmath32.powf(nan, 0.0)[0] == 1.0


def test_protobuf_float_rounds_like_safe_double_to_float():
    assert cmath32.protobuf_float(1e39) == math.inf
    assert cmath32.protobuf_float(3.4028235677973366e38) == math.inf  # above FLT_MAX: inf, not FLT_MAX
    assert cmath32.protobuf_float(0.1) == F(0.1)


def test_multistep_advances_one_step_per_iteration():
    assert lr.multistep_advances([150, 50, 100]) == [150, 151, 152]
    assert lr.multistep_advances([0, 20]) == [0, 20]
    assert lr.multistep_advances([5, 5, 5]) == [5, 6, 7]
    assert lr.multistep_steps([10, 20], np.array([0, 9, 10, 19, 20, 99])).tolist() == [0, 0, 1, 1, 2, 2]


def test_changes_and_horizon():
    p = lr.LrParams.make("step", base_lr=0.01, gamma=0.1, stepsize=100, max_iter=350, display=50)
    assert lr.changes(p, 350).tolist() == [0, 100, 200, 300]
    assert lr.horizon(p).stop == 350 and lr.horizon(p).runner == "train"
    assert lr.horizon(p, 1000).stop == 1000 and lr.horizon(p, 1000).runner == "step"
    assert lr.display_points(p, 350).tolist() == [0, 50, 100, 150, 200, 250, 300]


def test_ten_million_iterations():
    p = lr.LrParams.make("exp", base_lr=0.01, gamma=0.9999999)
    rates = lr.schedule(p, 10_000_000)
    assert rates.dtype == np.float32 and rates.shape == (10_000_000,)
    assert lr.format_lr(rates[9_999_999]) == lr.format_lr(f32(float(F(0.01)) * ref_pow(float(F(0.9999999)), 9_999_999)))


def test_chunked_evaluation_equals_whole_array():
    it = np.arange(200_000)
    for policy, kw in (
        ("inv", dict(base_lr=0.01, gamma=0.0001, power=0.75)),
        ("poly", dict(base_lr=0.01, power=0.9, max_iter=150_000)),
        ("sigmoid", dict(base_lr=0.01, gamma=0.001, stepsize=100_000)),
    ):
        p = lr.LrParams.make(policy, **kw)
        whole = lr._RATE[policy](p, it)
        assert np.array_equal(lr.schedule(p, it).view(np.uint32), whole.view(np.uint32)), policy
        grid = it.reshape(400, 500)
        assert np.array_equal(lr.schedule(p, grid).reshape(-1).view(np.uint32), whole.view(np.uint32))


def test_scattered_iterations_over_a_long_range():
    """Display points over a long run take the table path with gathers instead of an outer product."""
    for gamma in (0.9999995, 1.000001):
        p = lr.LrParams.make("exp", base_lr=0.01, gamma=gamma)
        full = lr.schedule(p, 3_000_000)
        picks = np.arange(0, 3_000_000, 997)[::-1]
        assert np.array_equal(lr.schedule(p, picks).view(np.uint32), full[picks].view(np.uint32))
