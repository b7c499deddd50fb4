"""Runs that stay finite, including the near-misses a careless diagnosis flags: clipping that saves
an exploding run, a spike that recovers, an lr that decays to 0, a NaN in the data that MAX pooling
hides, a net stuck at chance, BatchNorm's first TEST pass."""

from __future__ import annotations

from tools.lab.mechanisms.common import N, base_solver, classifier, dataset, mechanism, plan, regressor, tokens

H = "healthy"


def _healthy(kind: str, what: str, layers_ds, solver, **kw):
    return plan(H, None, tokens(), what, layers_ds, solver, expect="healthy", healthy_kind=kind, **kw)


@mechanism("plain_classifier", H)
def plain_classifier(seed: int):
    """A small conv classifier trained with SGD at a sane lr."""
    return _healthy(
        "plain", "conv classifier, SGD base_lr 0.01 momentum 0.9", classifier(seed), base_solver(seed, max_iter=150)
    )


@mechanism("plain_regression", H)
def plain_regression(seed: int):
    """An MLP regressor on unit-scale targets."""
    return _healthy(
        "regression", "MLP regressor, EuclideanLoss, base_lr 0.01", regressor(seed), base_solver(seed, max_iter=150)
    )


@mechanism("clip_saves_explosion", H, fixes_solver_type=True)
def clip_saves_explosion(seed: int):
    """The base_lr of the exploding regression (0.5), but clip_gradients 1 holds every step back."""
    return _healthy(
        "clipped",
        "base_lr 0.5 (explodes without clipping) with clip_gradients 1",
        regressor(seed),
        base_solver(seed, base_lr=0.5, clip_gradients=1.0, max_iter=150),
    )


@mechanism("spike_recovers", H)
def spike_recovers(seed: int):
    """A few records 20x larger than the rest: the loss spikes when they are read, then recovers."""
    ds = dataset(
        seed,
        name="train",
        backend="hdf5",
        shape=[16, 1, 1],
        poison=[{"rows": [200, 201], "what": "scale_rows", "value": 20.0}],
    )
    return _healthy(
        "spike",
        "records 200-201 scaled by 20 (finite outliers)",
        classifier(seed, ds=ds, conv=False),
        base_solver(seed, max_iter=150),
    )


@mechanism("high_stable_lr", H, fixes_solver_type=True)
def high_stable_lr(seed: int):
    """base_lr 0.2 without momentum: large, noisy, but stable."""
    return _healthy(
        "high_lr",
        "base_lr 0.2, momentum 0",
        classifier(seed),
        base_solver(seed, base_lr=0.2, momentum=0.0, max_iter=150),
    )


@mechanism("lr_decays_to_zero", H)
def lr_decays_to_zero(seed: int):
    """exp policy with gamma 0.5: the lr underflows to exactly 0 after ~150 iterations; the run just stops moving."""
    return _healthy(
        "lr_zero",
        "lr_policy exp, gamma 0.5 (lr reaches 0)",
        classifier(seed),
        base_solver(seed, lr_policy="exp", gamma=0.5, max_iter=200),
    )


@mechanism("maxpool_hides_nan", H)
def maxpool_hides_nan(seed: int):
    """NaN pixels in some records, but MAX pooling on the raw input skips NaN: the run never sees one."""
    ds = dataset(seed, poison=[{"rows": list(range(40, 60)), "what": "nan", "col": 9}])
    layers, datasets = classifier(seed, ds=ds, conv=False)
    i = next(i for i, ln in enumerate(layers) if 'name: "ip1"' in ln)
    ip1 = layers[i].replace('bottom: "data"', 'bottom: "pool0"')
    layers = (*layers[:i], N.pool("pool0", "data", "MAX", 2, 2), ip1, *layers[i + 1 :])
    return _healthy(
        "nan_hidden",
        "NaN at pixel 9 of records 40-59; MAX pooling 2x2 on the input hides it",
        (layers, datasets),
        base_solver(seed, max_iter=120),
    )


@mechanism("stuck_at_chance", H)
def stuck_at_chance(seed: int):
    """No weight fillers: every weight starts at 0, the loss sits at ln(10) = 2.30259 for the whole run."""
    layers, datasets = classifier(seed, conv=False)
    layers = tuple(ln.replace('type: "xavier"', 'type: "constant"') for ln in layers)
    return _healthy(
        "chance",
        "all-zero initial weights (constant filler): loss stays at ln 10",
        (layers, datasets),
        base_solver(seed, max_iter=100),
    )


@mechanism("batchnorm_warmup", H, shapes=("-test",))
def batchnorm_warmup(seed: int):
    """BatchNorm tested at iteration 0: the statistics are still zero, so TEST outputs start far off, then settle."""
    bn = (
        N.layer("bn1", "BatchNorm", ("ip1",), ("ip1",)),
        N.layer("scale1", "Scale", ("ip1",), ("ip1",), scale_param={"bias_term": True}),
    )
    layers, datasets = classifier(seed, middle=bn)
    return _healthy(
        "batchnorm",
        "BatchNorm + Scale after ip1, TEST at iteration 0",
        (layers, datasets),
        base_solver(seed, max_iter=150, test_iter=4, test_interval=50),
    )


@mechanism("sigmoid_warmup", H)
def sigmoid_warmup(seed: int):
    """sigmoid lr policy: a warm-up whose lr grows from ~0 to base_lr, as intended."""
    return _healthy(
        "lr_warmup",
        "lr_policy sigmoid, gamma 0.1, stepsize 50 (lr rises to 0.01)",
        classifier(seed),
        base_solver(seed, lr_policy="sigmoid", gamma=0.1, stepsize=50, max_iter=150),
    )


@mechanism("multistep_schedule", H)
def multistep_schedule(seed: int):
    """multistep with gamma 0.1 at 60 and 100."""
    return _healthy(
        "schedule",
        "multistep 60/100 gamma 0.1",
        classifier(seed),
        base_solver(seed, lr_policy="multistep", stepvalue=[60, 100], gamma=0.1, max_iter=150),
    )


@mechanism("poly_to_zero", H)
def poly_to_zero(seed: int):
    """poly power 1: the lr falls linearly to 0 exactly at max_iter, where caffe train stops."""
    return _healthy(
        "poly",
        "poly power 1, max_iter 150",
        classifier(seed),
        base_solver(seed, lr_policy="poly", power=1.0, max_iter=150),
    )


@mechanism("two_balanced_heads", H)
def two_balanced_heads(seed: int):
    """Two regression heads with loss weights 1 and 0.5."""
    ds = dataset(seed, name="train", backend="hdf5", task="regress", shape=[16, 1, 1], targets=2, label_top="target")
    test = dict(ds, name="test", n=128)
    layers = N.data_layers(ds, test, 32, label_top="target")
    layers += [
        N.ip("ip1", "data", 32),
        N.relu("relu1", "ip1"),
        N.layer("slice_t", "Slice", ("target",), ("t_a", "t_b"), slice_param={"axis": 1, "slice_point": 1}),
        N.ip("pred_a", "ip1", 1),
        N.ip("pred_b", "ip1", 1),
        N.layer("loss_a", "EuclideanLoss", ("pred_a", "t_a"), ("loss_a",)),
        N.layer("loss_b", "EuclideanLoss", ("pred_b", "t_b"), ("loss_b",), loss_weight=0.5),
    ]
    return _healthy(
        "two_heads",
        "two Euclidean heads, loss weights 1 and 0.5",
        (tuple(layers), (ds, test)),
        base_solver(seed, max_iter=150),
    )


@mechanism("ignore_label_batches", H)
def ignore_label_batches(seed: int):
    """SoftmaxWithLoss with ignore_label 255; one batch is entirely ignored (VALID normalisation divides by max(1, 0))."""
    ds = dataset(seed, set_labels=[{"rows": list(range(64, 96)), "what": "set", "value": 255}])
    loss = N.softmax_loss("loss", "ip2", loss_param={"ignore_label": 255})
    return _healthy(
        "ignore_label",
        "ignore_label 255, batch 2 fully ignored",
        classifier(seed, ds=ds, loss=loss),
        base_solver(seed, max_iter=120),
    )
