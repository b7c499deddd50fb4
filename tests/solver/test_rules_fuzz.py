"""Random solver files: the solver rules never raise, and every fix they offer makes its
finding disappear when applied and the rules are run again."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nandoctor.config import lr, schema
from nandoctor.config.edits import apply_edits
from nandoctor.config.solver import load_solver
from nandoctor.config.textformat import parse_text
from nandoctor.core.registry import Facts, run_rules, select_rules
from nandoctor.core.types import InputError

RULES = select_rules(["NAN2"])

NUM = st.sampled_from(
    ["0", "1", "-1", "0.1", "0.5", "0.9", "0.99", "0.999", "1.05", "2", "10", "-0.01", "1e-8", "1e39", "inf", "nan"]
)
INT = st.sampled_from(["0", "1", "-5", "50", "100", "1000", "3000", "100000"])
FIELDS = {
    "lr_policy": st.sampled_from(
        ['"fixed"', '"step"', '"exp"', '"inv"', '"multistep"', '"poly"', '"sigmoid"', '"Step"', '"plateau"']
    ),
    "type": st.sampled_from(['"SGD"', '"Nesterov"', '"AdaGrad"', '"RMSProp"', '"AdaDelta"', '"Adam"', '"adam"']),
    "solver_type": st.sampled_from(["SGD", "ADAM", "RMSPROP", "ADAGRAD"]),
    "base_lr": NUM,
    "gamma": NUM,
    "power": NUM,
    "momentum": NUM,
    "momentum2": NUM,
    "delta": NUM,
    "rms_decay": NUM,
    "weight_decay": NUM,
    "clip_gradients": NUM,
    "stepsize": INT,
    "max_iter": INT,
    "iter_size": st.sampled_from(["0", "1", "2", "-1"]),
    "display": st.sampled_from(["0", "1", "20"]),
    "regularization_type": st.sampled_from(['"L2"', '"L1"', '"l2"']),
}


@st.composite
def solver_texts(draw):
    names = draw(st.lists(st.sampled_from(sorted(FIELDS)), unique=True, max_size=9))
    if "lr_policy" not in names and draw(st.integers(0, 4)):  # mostly with a policy, to reach the lr rules
        names.insert(draw(st.integers(0, len(names))), "lr_policy")
    lines = [f"{n}: {draw(FIELDS[n])}" for n in names]
    for _ in range(draw(st.integers(0, 4))):
        lines.insert(draw(st.integers(0, len(lines))), f"stepvalue: {draw(INT)}")
    return "\n".join(lines) + draw(st.sampled_from(["", "\n"]))


def run(text: str, iters):
    solver = load_solver(parse_text(text, "s.prototxt"))
    return list(run_rules(Facts(solver=solver, options={"iters": iters}), RULES))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=solver_texts(), iters=st.sampled_from([None, None, 150, 5000]))
def test_rules_never_raise_and_fixes_work(text, iters):
    for f in run(text, iters):
        assert f.fix is not None and f.fix.edits, f.code
        fixed = apply_edits(text, f.fix.edits)
        again = [g for g in run(fixed, iters) if g.code == f.code and g.culprit == f.culprit]
        assert not again, (f.code, f.message, f.fix.description, again[0].message)


JUNK = st.sampled_from(
    ['"x"', "'step'", "step", "true", "0x10", "-3", "1.5", "1e400", "-inf", "nan", "{ a: 1 }", "2147483648", '""']
)
SOLVER_FIELDS = sorted(schema.MESSAGES["SolverParameter"].fields)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(SOLVER_FIELDS), JUNK), max_size=8), st.sampled_from([None, 100]))
def test_badly_typed_values_never_crash(fields, iters):
    """Values of the wrong type (Caffe's parser rejects those files) give InputError or nothing."""
    text = "\n".join(f"{n}: {v}" if not v.startswith("{") else f"{n} {v}" for n, v in fields)
    try:
        solver = load_solver(parse_text(text, "s.prototxt"))
    except InputError:
        return  # the parser already rejects it, as Caffe's does
    for name in SOLVER_FIELDS:
        solver.value(name)
    with contextlib.suppress(InputError):
        lr.LrParams.from_solver(solver)
    list(run_rules(Facts(solver=solver, options={"iters": iters}), RULES))
