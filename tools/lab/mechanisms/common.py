"""The base nets every mechanism starts from, and the registry mechanisms are listed in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tools.lab import nets as N
from tools.lab.plan import Plan, tokens


@dataclass(frozen=True)
class Mechanism:
    name: str
    cause: str  # or "healthy"
    build: Callable[[int], Plan]
    # Shapes this mechanism can be run in ("*" = every shape that does not fix what it studies).
    shapes: tuple[str, ...] = ("*",)
    fixes_solver_type: bool = False  # the solver type is the mechanism: solver-type shapes skip it
    summary: str = ""


REGISTRY: dict[str, Mechanism] = {}


def mechanism(name: str, cause: str, *, shapes=("*",), fixes_solver_type=False):
    def wrap(fn):
        REGISTRY[name] = Mechanism(name, cause, fn, tuple(shapes), fixes_solver_type, (fn.__doc__ or "").strip())
        return fn

    return wrap


def base_solver(seed: int, **changes) -> dict:
    s = {
        "net": "train_val.prototxt",
        "base_lr": 0.01,
        "momentum": 0.9,
        "weight_decay": 0.0005,
        "lr_policy": "fixed",
        "display": 10,
        "max_iter": 100,
        "snapshot_after_train": False,
        "random_seed": seed,
        "solver_mode": N.E("CPU"),
    }
    for k, v in changes.items():
        if v is None:
            s.pop(k, None)
        else:
            s[k] = v
    return s


def dataset(seed: int, name: str = "train_lmdb", backend: str = "lmdb", **kw) -> dict:
    d = {
        "name": name,
        "backend": backend,
        "n": 512,
        "shape": [1, 8, 8],
        "classes": 10,
        "task": "classify",
        "seed": seed,
        "as_float": True,
    }
    d.update(kw)
    return d


def test_set(train: dict) -> dict:
    name = train["name"].replace("train", "test") if "train" in train["name"] else train["name"] + "_test"
    t = {k: v for k, v in train.items() if k not in ("poison", "test_poison", "set_labels")}
    t.update(name=name, n=128)
    if train.get("test_poison"):
        t["poison"] = train["test_poison"]
    return t


def classifier(
    seed: int,
    *,
    ds: dict | None = None,
    conv: bool = True,
    pool_layer: str | None = None,
    hidden: int = 32,
    head_std: float | None = None,
    middle: tuple[str, ...] = (),
    loss: str | None = None,
    batch: int = 32,
    transform: dict | None = None,
    lr_mult: float = 1,
    after_relu1: tuple[str, ...] = (),
    pool_bottom: str = "conv1",
    head_bottom: str = "ip1",
) -> tuple[tuple[str, ...], tuple[dict, ...]]:
    """data -> [conv1 relu1 (after_relu1) pool1] -> ip1 relu2 -> [middle] -> ip2 -> SoftmaxWithLoss (+ TEST accuracy).

    ``middle`` layers read ``ip1`` and leave their result in ``head_bottom``, which ip2 reads."""
    ds = ds or dataset(seed)
    test = test_set(ds)
    layers = N.data_layers(ds, test, batch, transform=transform)
    top = "data"
    if conv:
        layers += [N.conv("conv1", "data", 8), N.relu("relu1", "conv1"), *after_relu1]
        layers.append(pool_layer or N.pool("pool1", pool_bottom, "MAX", 2, 2))
        top = "pool1"
    layers += [N.ip("ip1", top, hidden, lr_mult=lr_mult), N.relu("relu2", "ip1")]
    layers += list(middle)
    layers += [N.ip("ip2", head_bottom, ds.get("classes", 10), std=head_std)]
    layers.append(loss or N.softmax_loss("loss", "ip2"))
    layers.append(N.accuracy("ip2"))
    return tuple(layers), (ds, test)


def regressor(
    seed: int,
    *,
    ds: dict | None = None,
    hidden: int = 32,
    batch: int = 32,
    middle=(),
    head=None,
    loss_weight: float | None = None,
):
    """HDF5 data + target -> ip1 relu -> [middle] -> pred -> EuclideanLoss."""
    ds = ds or dataset(
        seed, name="train", backend="hdf5", task="regress", shape=[16, 1, 1], targets=1, label_top="target"
    )
    test = test_set(ds)
    layers = N.data_layers(ds, test, batch, label_top="target")
    layers += [N.ip("ip1", "data", hidden), N.relu("relu1", "ip1"), *middle]
    layers.append(head or N.ip("pred", "ip1", ds.get("targets", 1)))
    fields = {"loss_weight": loss_weight} if loss_weight is not None else {}
    layers.append(N.layer("loss", "EuclideanLoss", ("pred", "target"), ("loss",), **fields))
    return tuple(layers), (ds, test)


def plan(cause, culprit, culprit_tokens, what, layers_ds, solver, **kw) -> Plan:
    layers, datasets = layers_ds
    return Plan(
        cause=cause,
        culprit=culprit,
        culprit_tokens=culprit_tokens,
        what=what,
        layers=layers,
        solver=solver,
        datasets=datasets,
        **kw,
    )


__all__ = [
    "REGISTRY",
    "Mechanism",
    "N",
    "base_solver",
    "classifier",
    "dataset",
    "mechanism",
    "plan",
    "regressor",
    "tokens",
]
