"""A broken learning-rate policy: the lr itself turns NaN, infinite, negative or grows until the
weights follow it into overflow, or Caffe refuses the policy outright."""

from __future__ import annotations

from tools.lab.mechanisms.common import base_solver, classifier, mechanism, plan, regressor, tokens

CAUSE = "lr_policy"


@mechanism("exp_gamma_above_one", CAUSE)
def exp_gamma_above_one(seed: int):
    """exp policy with gamma 1.15: the lr grows 15% per iteration until the weights overflow."""
    return plan(
        CAUSE,
        "gamma",
        tokens("gamma"),
        "lr_policy exp, gamma 1.15 (meant 0.9999)",
        regressor(seed),
        base_solver(seed, lr_policy="exp", gamma=1.15, max_iter=200),
    )


@mechanism("step_gamma_ten", CAUSE)
def step_gamma_ten(seed: int):
    """step policy with gamma 10: the lr is multiplied by 10 every 30 iterations."""
    return plan(
        CAUSE,
        "gamma",
        tokens("gamma"),
        "lr_policy step, stepsize 30, gamma 10 (meant 0.1)",
        regressor(seed),
        base_solver(seed, lr_policy="step", stepsize=30, gamma=10.0, max_iter=200),
    )


@mechanism("multistep_gamma_ten", CAUSE)
def multistep_gamma_ten(seed: int):
    """multistep with gamma 10 at stepvalues 25, 50, 75."""
    return plan(
        CAUSE,
        "gamma",
        tokens("gamma"),
        "lr_policy multistep, stepvalue 25/50/75, gamma 10",
        regressor(seed),
        base_solver(seed, lr_policy="multistep", stepvalue=[25, 50, 75], gamma=10.0, max_iter=200),
    )


@mechanism("inv_negative_power", CAUSE)
def inv_negative_power(seed: int):
    """inv policy with power -3: (1 + gamma*iter)^3 grows without bound."""
    return plan(
        CAUSE,
        "power",
        tokens("power"),
        "lr_policy inv, gamma 0.05, power -3 (meant 0.75)",
        regressor(seed),
        base_solver(seed, lr_policy="inv", gamma=0.05, power=-3.0, max_iter=250),
    )


@mechanism("poly_negative_power", CAUSE)
def poly_negative_power(seed: int):
    """poly with power -4: (1 - iter/max_iter)^-4 blows up near the end of the run."""
    return plan(
        CAUSE,
        "power",
        tokens("power"),
        "lr_policy poly, power -4, max_iter 200",
        regressor(seed),
        base_solver(seed, lr_policy="poly", power=-4.0, max_iter=200),
    )


@mechanism("poly_step_past_max_iter", CAUSE, shapes=("-pycaffe", "-resume", "-restart"))
def poly_step_past_max_iter(seed: int):
    """pycaffe solver.step(160) with poly power 0.5 and max_iter 100: past max_iter the base is negative -> lr nan."""
    return plan(
        CAUSE,
        "max_iter",
        tokens("max_iter"),
        "poly, power 0.5, max_iter 100, driven by solver.step(160)",
        classifier(seed),
        base_solver(seed, lr_policy="poly", power=0.5, max_iter=100),
        driver="step",
        step_iters=160,
    )


@mechanism("poly_odd_power_step_past", CAUSE, shapes=("-pycaffe", "-resume", "-restart"))
def poly_odd_power_step_past(seed: int):
    """solver.step(260) with poly power 3, max_iter 80: past max_iter the lr turns negative (gradient ascent)."""
    return plan(
        CAUSE,
        "max_iter",
        tokens("max_iter"),
        "poly, power 3, max_iter 80, base_lr 0.05, solver.step(260)",
        regressor(seed),
        base_solver(seed, lr_policy="poly", power=3.0, base_lr=0.05, max_iter=80),
        driver="step",
        step_iters=260,
    )


@mechanism("poly_without_max_iter", CAUSE, shapes=("-pycaffe", "-resume", "-restart"))
def poly_without_max_iter(seed: int):
    """pycaffe solver.step(40) with poly and no max_iter: iter/0 makes the lr -nan from iteration 0."""
    return plan(
        CAUSE,
        "max_iter",
        tokens("max_iter"),
        "poly, power 0.9, max_iter unset, solver.step(40)",
        classifier(seed),
        base_solver(seed, lr_policy="poly", power=0.9, max_iter=None),
        driver="step",
        step_iters=40,
    )


@mechanism("negative_base_lr", CAUSE)
def negative_base_lr(seed: int):
    """base_lr -0.05: every update climbs the loss instead of descending it."""
    return plan(
        CAUSE,
        "base_lr",
        tokens("base_lr"),
        "base_lr -0.05 (a sign typo)",
        regressor(seed),
        base_solver(seed, base_lr=-0.05, max_iter=200),
    )


@mechanism("step_without_stepsize", CAUSE)
def step_without_stepsize(seed: int):
    """step policy with stepsize unset: Caffe checks stepsize > 0 and aborts."""
    return plan(
        CAUSE,
        "stepsize",
        tokens("stepsize"),
        "lr_policy step, gamma 0.1, stepsize unset",
        classifier(seed),
        base_solver(seed, lr_policy="step", gamma=0.1),
        expect="abort",
    )


@mechanism("lr_policy_unset", CAUSE)
def lr_policy_unset(seed: int):
    """lr_policy missing: Caffe aborts with 'Unknown learning rate policy' at the first update."""
    return plan(
        CAUSE,
        "lr_policy",
        tokens("lr_policy"),
        "solver without lr_policy",
        classifier(seed),
        base_solver(seed, lr_policy=None),
        expect="abort",
    )


@mechanism("exp_negative_gamma", CAUSE)
def exp_negative_gamma(seed: int):
    """exp policy with gamma -0.9: Caffe checks gamma >= 0 and aborts."""
    return plan(
        CAUSE,
        "gamma",
        tokens("gamma"),
        "lr_policy exp, gamma -0.9",
        classifier(seed),
        base_solver(seed, lr_policy="exp", gamma=-0.9),
        expect="abort",
    )
