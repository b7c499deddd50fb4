"""Which runs the lab makes (mechanism x log shape x seed) and the fixed held-out split.

The held-out part is chosen by mechanism *and* by shape: a run is held out when its mechanism or
its shape is in the lists below, so some mechanisms and some shapes occur only there. Nothing in
nandoctor may be tuned on held-out runs; `bench/accuracy.py` reports the two parts apart.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tools.lab.mechanisms import REGISTRY
from tools.lab.shapes import SHAPES

# Held out by mechanism: about a quarter of each cause, chosen once and never changed.
HELD_OUT_MECHANISMS = frozenset(
    {
        "weight_decay_typo",
        "nesterov_large_step",
        "huge_lr_mult",
        "adagrad_zero_delta",
        "inv_negative_power",
        "poly_odd_power_step_past",
        "exp_negative_gamma",
        "eltwise_prod_unstable_grad",
        "lrn_k_zero",
        "leveldb_nan_float_data",
        "hdf5_nan_target",
        "nan_mean_file",
        "ave_8_k3_s4",
        "max_empty_window",
        "maxpool_hides_nan",
        "sigmoid_warmup",
        "batchnorm_warmup",
        "poly_to_zero",
    }
)
# Held out by shape.
HELD_OUT_SHAPES = frozenset({"d50", "logfile", "resume", "adadelta", "combo_b"})

SHAPES_PER_MECHANISM = 6  # d10 plus five drawn from the compatible shapes
SEEDS_PER_RUN = 1


@dataclass(frozen=True)
class RunSpec:
    id: str
    mechanism: str
    shape: str
    seed: int
    part: str  # tune | heldout


def compatible(mech_name: str, shape_name: str) -> bool:
    mech = REGISTRY[mech_name]
    shape = SHAPES[shape_name]
    if "-" + shape_name in mech.shapes:
        return False
    if shape.sets_solver_type and mech.fixes_solver_type:
        return False
    probe = mech.build(1)
    shaped = shape.apply(probe)
    field = (probe.culprit or "").split(".")[-1]
    # a shape must not touch the field the mechanism is about (e.g. Adam's base_lr on a base_lr run)
    if field in probe.solver and shaped.solver.get(field) != probe.solver.get(field):
        return False
    # pycaffe never starts glog's file logging, so a step-driven run has no log file to take
    if probe.driver == "step" and shape_name in ("pycaffe", "logfile"):
        return False
    return not (probe.solver.get("test_iter") and shape_name in ("test", "combo_a"))


def runs() -> list[RunSpec]:
    out = []
    for name in sorted(REGISTRY):
        rng = random.Random(f"lab:{name}")
        options = [s for s in SHAPES if s != "d10" and compatible(name, s)]
        chosen = ["d10", *rng.sample(options, min(SHAPES_PER_MECHANISM - 1, len(options)))]
        for shape in chosen:
            for k in range(SEEDS_PER_RUN):
                seed = 1 + (abs(hash_text(f"{name}/{shape}/{k}")) % 9973)
                part = "heldout" if name in HELD_OUT_MECHANISMS or shape in HELD_OUT_SHAPES else "tune"
                out.append(RunSpec(f"{name}.{shape}.s{seed}", name, shape, seed, part))
    return out


def hash_text(text: str) -> int:
    """A hash that does not change between Python processes (str hash is salted)."""
    h = 1469598103934665603
    for b in text.encode():
        h = (h ^ b) * 1099511628211 % (1 << 64)
    return h
