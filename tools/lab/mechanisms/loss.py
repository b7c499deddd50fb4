"""A loss construct producing NaN: log of 0, sqrt of a negative, 1/0, exp overflow, a hand-written
Python loss dividing by a count that can be zero, a loss layer fed the wrong input."""

from __future__ import annotations

from tools.lab.mechanisms.common import N, base_solver, classifier, dataset, mechanism, plan, tokens

CAUSE = "loss_function"


def _regression(seed: int, *, target_fn: str | None = None, target_scale: float = 1.0):
    ds = dataset(
        seed,
        name="train",
        backend="hdf5",
        task="regress",
        shape=[16, 1, 1],
        targets=1,
        label_top="target",
        target_scale=target_scale,
    )
    if target_fn:
        ds["target_fn"] = target_fn
    test = dict(ds, name="test", n=128)
    return ds, test, N.data_layers(ds, test, 32, label_top="target")


def _euclid(bottom: str) -> str:
    return N.layer("loss", "EuclideanLoss", (bottom, "target"), ("loss",))


@mechanism("log_of_relu", CAUSE)
def log_of_relu(seed: int):
    """Log-probability regression through Log(ReLU(pred)): once a prediction reaches 0 the log is -inf."""
    ds, test, layers = _regression(seed, target_fn="log_sigmoid", target_scale=3.0)
    pred = N.layer(
        "pred",
        "InnerProduct",
        ("ip1",),
        ("pred",),
        param=[{"lr_mult": 1}, {"lr_mult": 2}],
        inner_product_param={
            "num_output": 1,
            "weight_filler": {"type": "gaussian", "std": 0.01},
            "bias_filler": {"type": "constant", "value": 0.5},
        },
    )
    layers += [
        N.ip("ip1", "data", 32),
        N.relu("relu1", "ip1"),
        pred,
        N.relu("relu_pred", "pred"),
        N.layer("log_pred", "Log", ("pred",), ("log_pred",)),
        _euclid("log_pred"),
    ]
    return plan(
        CAUSE,
        "log_pred",
        tokens("log_pred"),
        "Log layer on a ReLU output (log of 0 = -inf)",
        (tuple(layers), (ds, test)),
        base_solver(seed, base_lr=0.02, max_iter=200),
    )


@mechanism("sqrt_of_error", CAUSE)
def sqrt_of_error(seed: int):
    """A 'root error' loss: Power(power 0.5) of target - pred, which is negative for half the samples."""
    ds, test, layers = _regression(seed)
    layers += [
        N.ip("ip1", "data", 32),
        N.relu("relu1", "ip1"),
        N.ip("pred", "ip1", 1),
        N.layer(
            "err",
            "Eltwise",
            ("target", "pred"),
            ("err",),
            eltwise_param={"operation": N.E("SUM"), "coeff": [1.0, -1.0]},
        ),
        N.layer("root_err", "Power", ("err",), ("root_err",), power_param={"power": 0.5}),
        N.layer(
            "loss", "Reduction", ("root_err",), ("loss",), loss_weight=1.0, reduction_param={"operation": N.E("MEAN")}
        ),
    ]
    return plan(
        CAUSE,
        "root_err",
        tokens("root_err"),
        "Power 0.5 of a signed error (sqrt of a negative)",
        (tuple(layers), (ds, test)),
        base_solver(seed, max_iter=100),
    )


@mechanism("reciprocal_of_relu", CAUSE)
def reciprocal_of_relu(seed: int):
    """Power(power -1) of a ReLU output: 1/0 = inf wherever the ReLU is off."""
    ds, test, layers = _regression(seed)
    layers += [
        N.ip("ip1", "data", 32),
        N.relu("relu1", "ip1"),
        N.ip("pred", "ip1", 1),
        N.relu("relu_pred", "pred"),
        N.layer("inv_pred", "Power", ("pred",), ("inv_pred",), power_param={"power": -1.0, "shift": 0.0}),
        _euclid("inv_pred"),
    ]
    return plan(
        CAUSE,
        "inv_pred",
        tokens("inv_pred"),
        "Power -1 of a ReLU output (1/0)",
        (tuple(layers), (ds, test)),
        base_solver(seed, max_iter=100),
    )


_POS_LOSS = '''"""A balanced binary cross-entropy written as a Caffe Python layer: the loss is summed over the
batch and divided by the number of positive labels in it, so a batch without one divides by 0."""

import caffe
import numpy as np


class PositiveNormalizedLoss(caffe.Layer):
    def setup(self, bottom, top):
        if len(bottom) != 2:
            raise Exception("needs scores and labels")

    def reshape(self, bottom, top):
        top[0].reshape(1)

    def forward(self, bottom, top):
        x = bottom[0].data.reshape(-1)
        y = bottom[1].data.reshape(-1)
        p = 1.0 / (1.0 + np.exp(-x))
        self.p, self.y = p, y
        self.npos = np.float32((y > 0.5).sum())
        ce = -(y * np.log(p + 1e-7) + (1 - y) * np.log(1 - p + 1e-7)).sum()
        top[0].data[0] = np.float32(ce) / self.npos

    def backward(self, top, propagate_down, bottom):
        grad = (self.p - self.y) / self.npos * top[0].diff[0]
        bottom[0].diff[...] = grad.reshape(bottom[0].diff.shape)
'''


@mechanism("python_loss_zero_count", CAUSE)
def python_loss_zero_count(seed: int):
    """A Python loss normalised by the positives in the batch; batch 9 of every epoch has none."""
    ds = dataset(
        seed,
        name="train",
        backend="hdf5",
        shape=[16, 1, 1],
        classes=2,
        pos_rate=0.3,
        n=480,
        set_labels=[{"rows": list(range(9 * 16, 10 * 16)), "what": "set", "value": 0}],
    )
    test = dict(ds, name="test", n=128, set_labels=[])
    layers = N.data_layers(ds, test, 16)
    layers += [
        N.ip("ip1", "data", 32),
        N.relu("relu1", "ip1"),
        N.ip("score", "ip1", 1),
        N.layer(
            "pos_loss",
            "Python",
            ("score", "label"),
            ("pos_loss",),
            loss_weight=1.0,
            python_param={"module": "pos_loss", "layer": "PositiveNormalizedLoss"},
        ),
    ]
    return plan(
        CAUSE,
        "pos_loss",
        tokens("pos_loss"),
        "Python loss layer dividing by the count of positive labels; one batch has none",
        (tuple(layers), (ds, test)),
        base_solver(seed, base_lr=0.01, max_iter=120),
        extra_files=(("pos_loss.py", _POS_LOSS),),
    )


@mechanism("multinomial_on_raw_scores", CAUSE)
def multinomial_on_raw_scores(seed: int):
    """MultinomialLogisticLoss fed raw InnerProduct scores instead of probabilities (log of <= 0 clamps at 1e-20;
    the gradient is -1/p)."""
    loss = N.layer("loss", "MultinomialLogisticLoss", ("ip2", "label"), ("loss",))
    return plan(
        CAUSE,
        "loss",
        tokens("loss"),
        "MultinomialLogisticLoss on raw scores (no Softmax before it)",
        classifier(seed, loss=loss),
        base_solver(seed, max_iter=100),
    )


@mechanism("eltwise_prod_unstable_grad", CAUSE)
def eltwise_prod_unstable_grad(seed: int):
    """Eltwise PROD of two ReLU outputs with stable_prod_grad false: the gradient top/bottom is 0/0."""
    middle = (
        N.ip("ip1b", "ip1", 32),
        N.relu("relu2b", "ip1b"),
        N.layer(
            "gate",
            "Eltwise",
            ("ip1", "ip1b"),
            ("gate",),
            eltwise_param={"operation": N.E("PROD"), "stable_prod_grad": False},
        ),
    )
    return plan(
        CAUSE,
        "gate",
        tokens("gate"),
        "Eltwise PROD with stable_prod_grad: false after ReLUs",
        classifier(seed, middle=middle, head_bottom="gate"),
        base_solver(seed, max_iter=100),
    )


@mechanism("lrn_k_zero", CAUSE)
def lrn_k_zero(seed: int):
    """LRN with k 0 after a ReLU: an all-zero channel window gives 0 * 0^-0.75 = 0 * inf."""
    lrn = N.layer(
        "norm1", "LRN", ("conv1",), ("norm1",), lrn_param={"local_size": 3, "alpha": 1.0, "beta": 0.75, "k": 0.0}
    )
    return plan(
        CAUSE,
        "norm1",
        tokens("norm1"),
        "LRN with k: 0 (default 1) after relu1",
        classifier(seed, after_relu1=(lrn,), pool_bottom="norm1"),
        base_solver(seed, max_iter=100),
    )


@mechanism("log_base_one", CAUSE)
def log_base_one(seed: int):
    """A Log layer with base 1: 1/ln(1) is inf and Caffe aborts while setting the layer up."""
    ds, test, layers = _regression(seed)
    layers += [
        N.ip("ip1", "data", 32),
        N.relu("relu1", "ip1"),
        N.ip("pred", "ip1", 1),
        N.layer("log_pred", "Log", ("pred",), ("log_pred",), log_param={"base": 1.0, "shift": 10.0}),
        _euclid("log_pred"),
    ]
    return plan(
        CAUSE,
        "log_pred",
        tokens("log_pred"),
        "Log layer with base: 1",
        (tuple(layers), (ds, test)),
        base_solver(seed),
        expect="abort",
    )


# New mechanisms join the tuning part only: the held-out part stays the runs it was
TUNE_SHAPES_ONLY = ("-d50", "-logfile", "-resume", "-adadelta", "-combo_b")


@mechanism("exp_head_overflow", CAUSE, shapes=TUNE_SHAPES_ONLY)
def exp_head_overflow(seed: int):
    """A positive-output head Exp(pred) regressed with EuclideanLoss on targets in the thousands:
    the gradient grows with exp's output, one step sends pred past ln(FLT_MAX) = 88.7 and exp
    overflows to inf (a smaller target instead lets pred jump far negative, where exp is 0 and
    its gradient dies: a stuck, finite run)."""
    ds, test, layers = _regression(seed, target_scale=2000.0)
    layers += [
        N.ip("ip1", "data", 32),
        N.relu("relu1", "ip1"),
        N.ip("pred", "ip1", 1),
        N.layer("exp_pred", "Exp", ("pred",), ("exp_pred",)),
        _euclid("exp_pred"),
    ]
    return plan(
        CAUSE,
        "exp_pred",
        tokens("exp_pred"),
        "Exp head on an unbounded score, EuclideanLoss against targets in the thousands",
        (tuple(layers), (ds, test)),
        base_solver(seed, base_lr=0.001, max_iter=200),
    )
