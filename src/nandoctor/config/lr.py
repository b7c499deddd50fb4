"""Caffe's learning-rate policies, computed exactly as ``SGDSolver::GetLearningRate`` does.

The rate at iteration ``iter`` (the number of updates already done) is stored in a
``float``. The seven BVLC policies, with the arithmetic Caffe actually performs
(read from sgd_solver.cpp, and checked against the rates a real Caffe prints in tests/solver/test_lr_oracle.py):

=========  ==================================================================  ===========
fixed      base_lr
step       base_lr * pow(gamma, iter / stepsize)          (int division)        double pow
exp        base_lr * pow(gamma, iter)                                           double pow
inv        base_lr * powf(1 + gamma * float(iter), -power)                      float
multistep  base_lr * pow(gamma, current_step)             (stateful, below)     double pow
poly       base_lr * powf(1 - float(iter) / float(max_iter), power)             float
sigmoid    base_lr * (1 / (1 + expf(-gamma * (float(iter) - float(stepsize)))))  float
=========  ==================================================================  ===========

``pow(float, int)`` is evaluated in double and the product rounded to float once
(``config.cmath32`` does this exactly). ``multistep`` keeps ``current_step``: at each
iteration, if ``current_step < len(stepvalue)`` and ``iter >= stepvalue[current_step]``
it advances by one — one step per iteration at most, comparing only with the next
stepvalue in file order, so unsorted or repeated stepvalues are consumed one per
iteration. Missing fields read as 0 (base_lr, gamma, power, stepsize, max_iter).

Caffe (final master, since Feb 2018) also CHECKs parameters at the first update and
aborts; :func:`caffe_abort` returns the exact FATAL line. Builds up to 1.0 have no
checks: there, ``step`` with stepsize 0 divides by integer zero (SIGFPE).

Which iterations run: ``caffe train`` runs ``[0, max_iter)``; pycaffe's ``solver.step(n)``
runs n iterations whatever max_iter says (then ``poly`` still divides by max_iter and
``step``/``sigmoid`` still need stepsize). :func:`horizon` picks between the two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nandoctor.config import cmath32 as cm
from nandoctor.core.types import InputError, Location

_ZERO = np.float32(0)
POLICIES = ("fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid")
INT32 = (-(2**31), 2**31 - 1)


@dataclass(frozen=True)
class LrParams:
    """The solver fields the learning rate depends on, as Caffe stores them."""

    policy: str = ""  # "" when lr_policy is unset (Caffe then aborts)
    base_lr: np.float32 = _ZERO
    gamma: np.float32 = _ZERO
    power: np.float32 = _ZERO
    stepsize: int = 0
    stepvalues: tuple[int, ...] = ()
    max_iter: int = 0
    display: int = 0
    locations: dict[str, Location] = field(default_factory=dict, compare=False)
    set_fields: frozenset[str] = frozenset()

    @classmethod
    def from_solver(cls, solver) -> LrParams:
        """Read from a :class:`nandoctor.config.solver.Solver`; InputError for values
        Caffe's parser would reject (a non-integer stepsize, a word for base_lr...)."""
        names = ("lr_policy", "base_lr", "gamma", "power", "stepsize", "stepvalue", "max_iter", "display")
        locations = {n: loc for n in names if (loc := solver.location(n)) is not None}
        policy = solver.value("lr_policy")
        if not isinstance(policy, str):
            raise _type_error(solver, "lr_policy", "a string")
        return cls(
            policy=policy,
            base_lr=_float(solver, "base_lr"),
            gamma=_float(solver, "gamma"),
            power=_float(solver, "power"),
            stepsize=_int(solver, "stepsize"),
            stepvalues=tuple(_int_value(solver, "stepvalue", v) for v in solver.value("stepvalue")),
            max_iter=_int(solver, "max_iter"),
            display=_int(solver, "display"),
            locations=locations,
            set_fields=frozenset(n for n in names if solver.is_set(n)),
        )

    @classmethod
    def make(cls, policy: str = "", **values: Any) -> LrParams:
        """Build from plain Python values (tests, hypothesis), rounding floats like protobuf."""
        kw: dict[str, Any] = {"policy": policy}
        for name in ("base_lr", "gamma", "power"):
            if name in values:
                kw[name] = cm.protobuf_float(float(values.pop(name)))
        if "stepvalues" in values:
            kw["stepvalues"] = tuple(int(v) for v in values.pop("stepvalues"))
        kw.update(values)
        set_fields = {"lr_policy"} if policy else set()
        set_fields |= {("stepvalue" if k == "stepvalues" else k) for k in kw if k != "policy"}
        return cls(**kw, set_fields=frozenset(set_fields))


def _type_error(solver, name: str, what: str) -> InputError:
    f = solver.field(name)
    line = f.name_pos.line if f is not None else None
    col = f.name_pos.col if f is not None else None
    return InputError(f"{name}: expected {what}", solver.path, line, col)


def _float(solver, name: str) -> np.float32:
    v = solver.value(name)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _type_error(solver, name, "a number")
    return cm.protobuf_float(float(v))


def _int(solver, name: str) -> int:
    return _int_value(solver, name, solver.value(name))


def _int_value(solver, name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not INT32[0] <= v <= INT32[1]:
        raise _type_error(solver, name, "a 32-bit integer")
    return v


def params_of(source) -> LrParams:
    return source if isinstance(source, LrParams) else LrParams.from_solver(source)


# --- Caffe's run-time checks ---------------------------------------------------------------


@dataclass(frozen=True)
class CaffeAbort:
    """A FATAL error Caffe raises at the first update (iteration 0)."""

    where: str  # "sgd_solver.cpp:33"
    message: str  # "Check failed: this->param_.stepsize() > 0 (0 vs. 0)"
    culprit: str  # the solver field to change
    legacy: str  # what builds without the checks (<= 1.0) do instead

    @property
    def text(self) -> str:
        return f"{self.where}] {self.message}"


class LrAbort(Exception):
    """Raised by :func:`schedule` when Caffe would abort instead of producing a rate."""

    def __init__(self, abort: CaffeAbort):
        super().__init__(abort.text)
        self.abort = abort


_GAMMA_LINES = {"step": 35, "exp": 39, "inv": 42, "multistep": 53, "sigmoid": 61}


def caffe_abort(source) -> CaffeAbort | None:
    """The FATAL line Caffe (final master) prints at the first update, or None."""
    p = params_of(source)
    if p.policy not in POLICIES:
        return CaffeAbort(
            "sgd_solver.cpp:67",
            f"Unknown learning rate policy: {p.policy}",
            "lr_policy",
            "the same FATAL error (every version)",
        )
    stepsize_check = CaffeAbort(
        "sgd_solver.cpp:33" if p.policy == "step" else "sgd_solver.cpp:62",
        f"Check failed: this->param_.stepsize() > 0 ({p.stepsize} vs. 0)",
        "stepsize",
        "a crash with SIGFPE (integer division by zero)"
        if p.policy == "step" and p.stepsize == 0
        else "no error: the schedule is computed with this stepsize",
    )
    if p.policy == "step" and p.stepsize <= 0:
        return stepsize_check
    if p.policy in _GAMMA_LINES and not float(p.gamma) >= 0:  # NaN fails the check too
        return CaffeAbort(
            f"sgd_solver.cpp:{_GAMMA_LINES[p.policy]}",
            f"Check failed: this->param_.gamma() >= 0 ({format_lr(p.gamma)} vs. 0)",
            "gamma",
            "no error: the schedule is computed with this gamma",
        )
    if p.policy == "sigmoid" and p.stepsize <= 0:
        return stepsize_check
    return None


# --- the schedule --------------------------------------------------------------------------


def iterations(iters) -> np.ndarray:
    """An int64 array of iteration numbers from an int n (0..n-1), a range or an array."""
    if isinstance(iters, (int, np.integer)):
        return np.arange(int(iters), dtype=np.int64)
    if isinstance(iters, range):
        return np.arange(iters.start, iters.stop, iters.step, dtype=np.int64)
    return np.asarray(iters, dtype=np.int64)


def schedule(source, iters, *, checks: bool = True) -> np.ndarray:
    """The float32 rate Caffe uses at each iteration of ``iters`` (run started at 0).

    With ``checks`` (default) a configuration that Caffe aborts on raises :class:`LrAbort`.
    Without, the rate is what builds lacking the checks (<= 1.0) compute; a configuration
    that has no rate there either (unknown policy, step with stepsize 0) still raises.
    """
    p = params_of(source)
    it = iterations(iters)
    abort = caffe_abort(p)
    if abort is not None and (checks or p.policy not in POLICIES or (p.policy == "step" and p.stepsize == 0)):
        raise LrAbort(abort)
    rate = _RATE[p.policy]
    if p.policy not in _CHUNKED or it.size <= _CHUNK:
        return rate(p, it)
    # Element-wise policies run in cache-sized pieces: about twice as fast as whole arrays.
    flat = it.reshape(-1)
    out = np.empty(flat.shape, dtype=np.float32)
    for start in range(0, flat.size, _CHUNK):
        out[start : start + _CHUNK] = rate(p, flat[start : start + _CHUNK])
    return out.reshape(it.shape)


def _fixed(p: LrParams, it: np.ndarray) -> np.ndarray:
    return np.full(it.shape, p.base_lr, dtype=np.float32)


def _step(p: LrParams, it: np.ndarray) -> np.ndarray:
    if p.stepsize > 0 and (it.size == 0 or it.min() >= 0):
        k = it // p.stepsize
    else:  # C++ integer division truncates toward zero
        k = np.abs(it) // abs(p.stepsize) * (np.sign(it) * np.sign(p.stepsize))
    return cm.scaled_pow_f32(p.base_lr, p.gamma, k)


def _exp(p: LrParams, it: np.ndarray) -> np.ndarray:
    return cm.scaled_pow_f32(p.base_lr, p.gamma, it)


def _inv(p: LrParams, it: np.ndarray) -> np.ndarray:
    x = cm.f32_add(np.float32(1), cm.f32_mul(p.gamma, it.astype(np.float32)))
    return cm.f32_mul(p.base_lr, cm.powf(x, -p.power))


def _multistep(p: LrParams, it: np.ndarray) -> np.ndarray:
    return cm.scaled_pow_f32(p.base_lr, p.gamma, multistep_steps(p.stepvalues, it))


def _poly(p: LrParams, it: np.ndarray) -> np.ndarray:
    frac = cm.f32_div(it.astype(np.float32), np.float32(p.max_iter))
    return cm.f32_mul(p.base_lr, cm.powf(cm.f32_sub(np.float32(1), frac), p.power))


def _sigmoid(p: LrParams, it: np.ndarray) -> np.ndarray:
    t = cm.f32_sub(it.astype(np.float32), np.float32(p.stepsize))
    e = cm.expf(cm.f32_mul(-p.gamma, t))
    return cm.f32_mul(p.base_lr, cm.f32_div(np.float32(1), cm.f32_add(np.float32(1), e)))


_CHUNK = 1 << 16
_CHUNKED = frozenset(("inv", "poly", "sigmoid"))
_RATE = {
    "fixed": _fixed,
    "step": _step,
    "exp": _exp,
    "inv": _inv,
    "multistep": _multistep,
    "poly": _poly,
    "sigmoid": _sigmoid,
}


def multistep_advances(stepvalues, start: int = 0) -> list[int]:
    """The iterations at which ``current_step`` advances (Caffe logs ``MultiStep Status``
    there), for a run starting at ``start`` with current_step 0."""
    out: list[int] = []
    earliest = start
    for sv in stepvalues:
        at = max(earliest, sv)
        out.append(at)
        earliest = at + 1
    return out


def multistep_steps(stepvalues, it: np.ndarray) -> np.ndarray:
    """``current_step`` at each iteration of a run that started at 0."""
    adv = np.asarray(multistep_advances(stepvalues), dtype=np.int64)
    return np.searchsorted(adv, it, side="right").astype(np.int64)


# --- what runs, where it changes, how Caffe prints it ----------------------------------------


@dataclass(frozen=True)
class Horizon:
    stop: int  # iterations [0, stop) run
    runner: str  # "train" (caffe train: max_iter) or "step" (solver.step(n))

    def describe(self) -> str:
        if self.runner == "train":
            return f"caffe train: iterations 0..{self.stop - 1} (max_iter {self.stop})"
        return f"solver.step({self.stop}): iterations 0..{self.stop - 1} (max_iter does not stop it)"


def horizon(source, iters: int | None = None) -> Horizon:
    """``[0, max_iter)`` for ``caffe train``, or ``[0, iters)`` for ``solver.step(iters)``."""
    if iters is not None:
        return Horizon(max(0, int(iters)), "step")
    return Horizon(max(0, params_of(source).max_iter), "train")


def changes(source, stop: int, *, checks: bool = True) -> np.ndarray:
    """Iterations in ``[0, stop)`` where the rate differs (bitwise) from the previous one;
    iteration 0 always counts."""
    rates = schedule(source, stop, checks=checks)
    if rates.size == 0:
        return np.zeros(0, dtype=np.int64)
    bits = rates.view(np.uint32)
    return np.concatenate(([0], np.flatnonzero(bits[1:] != bits[:-1]) + 1)).astype(np.int64)


def display_points(source, stop: int) -> np.ndarray:
    """Iterations where Caffe prints ``Iteration N, lr = X`` (display > 0, N % display == 0)."""
    p = params_of(source)
    if p.display <= 0:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, max(0, stop), p.display, dtype=np.int64)


def format_lr(x) -> str:
    """A float32 rate exactly as Caffe prints it (``ostream <<``, 6 significant digits):
    ``0.00777822``, ``1.56288e-20``, ``-nan``, ``nan``, ``inf``, ``-inf``, ``0``."""
    return cm.ostream_float(np.float32(x))


def first_where(mask: np.ndarray, it: np.ndarray) -> int | None:
    idx = np.flatnonzero(mask)
    return int(it[idx[0]]) if idx.size else None


def is_finite_rate(x: float) -> bool:
    return math.isfinite(float(x))
