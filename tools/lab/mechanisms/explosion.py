"""Gradient explosion: the update is too large for the loss surface, so the loss climbs until it
overflows. Each mechanism names the field that makes the step too large."""

from __future__ import annotations

from tools.lab.mechanisms.common import N, base_solver, classifier, dataset, mechanism, plan, regressor, tokens

CAUSE = "gradient_explosion"


@mechanism("high_lr_classifier", CAUSE, fixes_solver_type=True)
def high_lr_classifier(seed: int):
    """SGD classifier with base_lr 20: logits grow until the softmax overflows."""
    return plan(
        CAUSE,
        "base_lr",
        tokens("base_lr"),
        "base_lr 20 with momentum 0.9 on a small conv classifier",
        classifier(seed),
        base_solver(seed, base_lr=20.0, max_iter=120),
    )


@mechanism("high_lr_regression", CAUSE, fixes_solver_type=True)
def high_lr_regression(seed: int):
    """EuclideanLoss regression with base_lr 0.5: the loss grows by orders of magnitude, then inf, then NaN."""
    return plan(
        CAUSE,
        "base_lr",
        tokens("base_lr"),
        "base_lr 0.5, momentum 0.9 on an MLP regressor",
        regressor(seed),
        base_solver(seed, base_lr=0.5, max_iter=120),
    )


@mechanism("momentum_above_one", CAUSE, fixes_solver_type=True)
def momentum_above_one(seed: int):
    """momentum 1.05: the velocity grows geometrically whatever the gradient."""
    return plan(
        CAUSE,
        "momentum",
        tokens("momentum"),
        "SGD with momentum 1.05 (meant 0.95)",
        regressor(seed),
        base_solver(seed, base_lr=0.01, momentum=1.05, max_iter=200),
    )


@mechanism("nesterov_large_step", CAUSE, fixes_solver_type=True)
def nesterov_large_step(seed: int):
    """Nesterov with base_lr 0.3 and momentum 0.95: the look-ahead step overshoots and diverges."""
    return plan(
        CAUSE,
        "base_lr",
        tokens("base_lr"),
        "type Nesterov, base_lr 0.3, momentum 0.95 on a regressor",
        regressor(seed),
        base_solver(seed, type="Nesterov", base_lr=0.3, momentum=0.95, max_iter=150),
    )


@mechanism("weight_decay_typo", CAUSE, fixes_solver_type=True)
def weight_decay_typo(seed: int):
    """weight_decay 5e4 (typed for 5e-4): the decay term alone overshoots every weight."""
    return plan(
        CAUSE,
        "weight_decay",
        tokens("weight_decay"),
        "weight_decay 5e4 where 5e-4 was meant",
        classifier(seed),
        base_solver(seed, weight_decay=50000.0, max_iter=100),
    )


@mechanism("exploding_head_loss_weight", CAUSE, fixes_solver_type=True)
def exploding_head_loss_weight(seed: int):
    """Two regression heads; the second has loss_weight 2000 and drags the shared trunk into overflow."""
    ds = dataset(
        seed,
        name="train",
        backend="hdf5",
        task="regress",
        shape=[16, 1, 1],
        targets=2,
        label_top="target",
        target_scale=3.0,
    )
    test = dict(ds, name="test", n=128)
    layers = N.data_layers(ds, test, 32, label_top="target")
    layers += [
        N.ip("ip1", "data", 32),
        N.relu("relu1", "ip1"),
        N.layer("slice_t", "Slice", ("target",), ("t_a", "t_b"), slice_param={"axis": 1, "slice_point": 1}),
        N.ip("pred_a", "ip1", 1),
        N.ip("pred_b", "ip1", 1),
        N.layer("loss_a", "EuclideanLoss", ("pred_a", "t_a"), ("loss_a",)),
        N.layer("loss_b", "EuclideanLoss", ("pred_b", "t_b"), ("loss_b",), loss_weight=2000.0),
    ]
    return plan(
        CAUSE,
        "loss_b.loss_weight",
        tokens("loss_b", "loss_weight"),
        "two Euclidean heads; loss_b has loss_weight 2000",
        (tuple(layers), (ds, test)),
        base_solver(seed, base_lr=0.01, max_iter=100),
    )


@mechanism("huge_lr_mult", CAUSE, fixes_solver_type=True)
def huge_lr_mult(seed: int):
    """The regression head has lr_mult 1000: its local rate is 10 while the rest of the net trains at 0.01."""
    layers, dss = regressor(seed, head=N.ip("pred", "ip1", 1, lr_mult=1000))
    return plan(
        CAUSE,
        "pred.lr_mult",
        tokens("pred", "lr_mult"),
        "pred param lr_mult 1000 (the rest 1)",
        (layers, dss),
        base_solver(seed, max_iter=100),
    )


@mechanism("euclidean_raw_targets", CAUSE, fixes_solver_type=True)
def euclidean_raw_targets(seed: int):
    """Regression on unscaled targets (~1e3): the Euclidean gradient is large enough that base_lr 0.01 diverges."""
    ds = dataset(
        seed,
        name="train",
        backend="hdf5",
        task="regress",
        shape=[16, 1, 1],
        targets=1,
        label_top="target",
        target_scale=1000.0,
    )
    return plan(
        CAUSE,
        "base_lr",
        tokens("base_lr"),
        "EuclideanLoss on targets of magnitude ~1e3, base_lr 0.01",
        regressor(seed, ds=ds),
        base_solver(seed, base_lr=0.01, max_iter=100),
    )


@mechanism("adam_beta1_one", CAUSE, fixes_solver_type=True)
def adam_beta1_one(seed: int):
    """Adam with momentum (beta1) 1: the bias correction divides by 1 - 1^t = 0 at the first update."""
    return plan(
        CAUSE,
        "momentum",
        tokens("momentum"),
        "type Adam, momentum 1.0 (beta1)",
        classifier(seed),
        base_solver(seed, type="Adam", base_lr=0.001, momentum=1.0, momentum2=0.999, max_iter=60),
    )


@mechanism("adagrad_zero_delta", CAUSE, fixes_solver_type=True)
def adagrad_zero_delta(seed: int):
    """AdaGrad with delta 0: a weight whose gradient is always 0 (an input pixel that is 0 in every image, like
    MNIST's border) gets 0 / sqrt(0) = NaN at the first update."""
    ds = dataset(seed, set_labels=[{"rows": [], "what": "zero_feature", "col": 0}])
    return plan(
        CAUSE,
        "delta",
        tokens("delta"),
        "type AdaGrad, delta 0 (default 1e-8), weight_decay 0; pixel 0 is 0 in every image",
        classifier(seed, ds=ds, conv=False),
        base_solver(seed, type="AdaGrad", base_lr=0.01, momentum=None, delta=0.0, weight_decay=0.0, max_iter=100),
    )
