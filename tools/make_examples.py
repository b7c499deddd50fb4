"""Make the example runs that ship with nandoctor (``nandoctor demo``).

Caffe cannot be installed on the machines nandoctor is built on, so each example
is *trained* here by a small float32 numpy re-implementation of what Caffe does
for the handful of layers the examples use (HDF5Data, InnerProduct, ReLU,
Pooling AVE, Eltwise SUM, Power, Reduction MEAN, SoftmaxWithLoss, EuclideanLoss)
and of SGDSolver (momentum, weight decay, Caffe's lr policies via
``nandoctor.config.lr``), printing Caffe's glog lines (solver.cpp:239/258,
sgd_solver.cpp:112, the smoothed loss over average_loss iterations that solver.cpp prints). The arithmetic is
real: every number in the logs is computed, none is written by hand. The real
Caffe runs that nandoctor is tested against live in the shared corpus.

Run from the repository root:  python tools/make_examples.py
"""

from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path

import h5py
import numpy as np

from nandoctor.config.lr import format_lr, schedule
from nandoctor.config.solver import load_solver
from nandoctor.config.textformat import parse_text

OUT = Path(__file__).resolve().parents[1] / "src" / "nandoctor" / "examples"
F = np.float32


def g(x) -> str:
    """A float as C++ ostream prints it (6 significant digits, nan sign kept)."""
    return format_lr(F(x))


class Log:
    def __init__(self):
        self.lines: list[str] = []
        self.t = 0.0

    def info(self, where: str, msg: str) -> None:
        self.t += 0.0137
        sec = 10 + int(self.t)
        micro = int((self.t % 1) * 1e6)
        self.lines.append(f"I1123 09:{sec // 60:02d}:{sec % 60:02d}.{micro:06d}  4242 {where}] {msg}")

    def block(self, where: str, title: str, text: str) -> None:
        self.info(where, title)
        self.lines.extend(text.rstrip("\n").splitlines())

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def softmax_loss(scores: np.ndarray, labels: np.ndarray):
    z = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(z, dtype=F)
    p = e / e.sum(axis=1, keepdims=True)
    n = scores.shape[0]
    pl = np.maximum(p[np.arange(n), labels], F(np.finfo(F).tiny))
    loss = F(-np.log(pl).sum() / F(n))
    grad = p.copy()
    grad[np.arange(n), labels] -= 1
    return loss, (grad / F(n)).astype(F)


def ave_pool(x: np.ndarray, k: int, s: int):
    """Caffe's AVE pooling, CEIL mode, pad 0 (the only geometry the pooling example uses)."""
    n, c, h, w = x.shape
    oh = math.ceil((h - k) / s) + 1
    ow = math.ceil((w - k) / s) + 1
    out = np.zeros((n, c, oh, ow), F)
    with np.errstate(invalid="ignore", divide="ignore"):
        for i in range(oh):
            for j in range(ow):
                hs, ws = i * s, j * s
                he, we = min(hs + k, h), min(ws + k, w)
                size = F((he - hs) * (we - ws))
                out[:, :, i, j] = x[:, :, hs:he, ws:we].sum(axis=(2, 3)) / size
    return out


class Example:
    """One run: configs written as text, data made with numpy, a training loop that logs like Caffe."""

    name = ""
    solver_text = ""
    net_text = ""
    iters_override: int | None = None  # pycaffe solver.step(N) style horizon

    def __init__(self):
        self.dir = OUT / self.name
        self.rng = np.random.default_rng(7)
        self.log = Log()

    def make_data(self) -> None:
        raise NotImplementedError

    def step(self, it: int) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """Forward and backward of iteration ``it``: (outputs, gradients by param name)."""
        raise NotImplementedError

    def write(self) -> None:
        if self.dir.exists():
            shutil.rmtree(self.dir)
        (self.dir / "data").mkdir(parents=True)
        (self.dir / "solver.prototxt").write_text(self.solver_text)
        (self.dir / "train_val.prototxt").write_text(self.net_text)
        self.make_data()
        self.train()
        (self.dir / "train.log").write_text(self.log.text())

    def h5(self, **arrays) -> None:
        with h5py.File(self.dir / "data" / "train.h5", "w") as f:
            for k, v in arrays.items():
                f.create_dataset(k, data=v)
        (self.dir / "train_h5.txt").write_text("data/train.h5\n")

    def batch(self, it: int, *arrays, size: int):
        n = arrays[0].shape[0]
        idx = (np.arange(size) + it * size) % n
        return [a[idx] for a in arrays]

    def train(self) -> None:
        solver = load_solver(parse_text(self.solver_text, "solver.prototxt"))
        p = solver.value
        max_iter = self.iters_override or int(p("max_iter"))
        display, momentum, decay = int(p("display")), F(p("momentum")), F(p("weight_decay"))
        rates = schedule(solver, np.arange(max_iter), checks=False)
        log = self.log
        log.info("caffe.cpp:197", "Use CPU.")
        log.block("solver.cpp:45", "Initializing solver from parameters: ", self.solver_text)
        log.info("solver.cpp:102", "Creating training net from net file: train_val.prototxt")
        log.block("net.cpp:53", "Initializing net from parameters: ", self.net_text)
        log.info("net.cpp:283", "Network initialization done.")
        log.info("solver.cpp:57", "Solver scaffolding done.")
        log.info("caffe.cpp:239", "Starting Optimization")
        log.info("solver.cpp:289", f"Solving {self.name}")
        log.info("solver.cpp:290", f"Learning Rate Policy: {p('lr_policy')}")
        history = {k: np.zeros_like(v) for k, v in self.params.items()}
        smoothed = prev = F(0)
        for it in range(max_iter):
            outputs, grads = self.step(it)
            loss = F(sum(w * v for v, w in outputs.values()))
            # average_loss 1: Caffe's incremental update, so one nan stays for good
            with np.errstate(invalid="ignore"):
                smoothed = loss if it == 0 else F(smoothed + (loss - prev))
            prev = loss
            if display and it % display == 0:
                log.info("solver.cpp:239", f"Iteration {it} (0 iter/s, 0.01s/{display} iters), loss = {g(smoothed)}")
                for k, (name, (v, w)) in enumerate(outputs.items()):
                    suffix = f" (* {g(w)} = {g(w * v)} loss)" if w else ""
                    log.info("solver.cpp:258", f"    Train net output #{k}: {name} = {g(v)}{suffix}")
                log.info("sgd_solver.cpp:112", f"Iteration {it}, lr = {format_lr(rates[it])}")
            rate = rates[it]
            with np.errstate(all="ignore"):
                for name, w in self.params.items():
                    diff = grads[name] + decay * w
                    history[name] = (momentum * history[name] + rate * diff).astype(F)
                    self.params[name] = (w - history[name]).astype(F)
        if display and max_iter % display == 0:
            log.info("solver.cpp:327", f"Iteration {max_iter}, loss = {g(smoothed)}")
        log.info("solver.cpp:332", "Optimization Done.")
        log.info("caffe.cpp:250", "Optimization Done.")


def mlp_net(name: str, hidden: int, classes: int, extra: str = "", loss: str = "") -> str:
    return f'''name: "{name}"
layer {{
  name: "data"
  type: "HDF5Data"
  top: "data"
  top: "label"
  include {{ phase: TRAIN }}
  hdf5_data_param {{ source: "train_h5.txt" batch_size: 20 }}
}}
{extra}layer {{
  name: "ip1"
  type: "InnerProduct"
  bottom: "{"pool1" if extra else "data"}"
  top: "ip1"
  inner_product_param {{ num_output: {hidden} weight_filler {{ type: "xavier" }} }}
}}
layer {{ name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }}
layer {{
  name: "ip2"
  type: "InnerProduct"
  bottom: "ip1"
  top: "ip2"
  inner_product_param {{ num_output: {classes} weight_filler {{ type: "xavier" }} }}
}}
{loss or 'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }'}
'''


def solver(base_lr: str, policy: str = '"fixed"', extra: str = "", max_iter: int = 200, display: int = 10) -> str:
    return (
        f'net: "train_val.prototxt"\nbase_lr: {base_lr}\nlr_policy: {policy}\n{extra}'
        f"momentum: 0.9\nweight_decay: 0.0005\ndisplay: {display}\nmax_iter: {max_iter}\n"
        "snapshot_after_train: false\nrandom_seed: 7\nsolver_mode: CPU\n"
    )


class Classifier(Example):
    """Two InnerProducts and SoftmaxWithLoss on 4 Gaussian blobs in 16-d."""

    classes, dim, hidden = 4, 16, 32

    def make_data(self) -> None:
        n = 800
        centers = self.rng.normal(0, 1.5, (self.classes, self.dim)).astype(F)
        self.labels = self.rng.integers(0, self.classes, n)
        self.x = (centers[self.labels] + self.rng.normal(0, 1, (n, self.dim))).astype(F)
        self.poison()
        self.h5(data=self.x, label=self.labels.astype(F))
        fan = lambda a, b: self.rng.uniform(-math.sqrt(3 / a), math.sqrt(3 / a), (b, a)).astype(F)  # noqa: E731 (xavier)
        self.params = {
            "w1": fan(self.in_dim(), self.hidden),
            "b1": np.zeros(self.hidden, F),
            "w2": fan(self.hidden, self.classes),
            "b2": np.zeros(self.classes, F),
        }

    def in_dim(self) -> int:
        return self.dim

    def poison(self) -> None:
        pass

    def features(self, x):
        return x, None

    def step(self, it):
        x, labels = self.batch(it, self.x, self.labels, size=20)
        p = self.params
        with np.errstate(all="ignore"):
            f, _ = self.features(x)
            f = f.reshape(f.shape[0], -1)
            h = f @ p["w1"].T + p["b1"]
            r = np.maximum(h, 0)
            s = r @ p["w2"].T + p["b2"]
            loss, ds = softmax_loss(s, labels)
            dr = ds @ p["w2"]
            dh = dr * (h > 0)
            grads = {"w2": ds.T @ r, "b2": ds.sum(0), "w1": dh.T @ f, "b1": dh.sum(0)}
        return {"loss": (loss, F(1))}, grads


class Healthy(Classifier):
    name = "healthy"
    solver_text = solver("0.05")
    net_text = mlp_net("healthy_mlp", 32, 4)


class LrPolicy(Classifier):
    name = "lr_policy"
    # poly without max_iter: (1 - iter/0)^power is 0/0 at iteration 0; driven by solver.step(200)
    solver_text = 'net: "train_val.prototxt"\nbase_lr: 0.05\nlr_policy: "poly"\npower: 0.9\nmomentum: 0.9\nweight_decay: 0.0005\ndisplay: 10\nsnapshot_after_train: false\nrandom_seed: 7\nsolver_mode: CPU\n'
    net_text = mlp_net("poly_mlp", 32, 4)
    iters_override = 200


class BadInput(Classifier):
    name = "bad_input"
    solver_text = solver("0.05")
    net_text = mlp_net("dirty_data_mlp", 32, 4)

    def poison(self) -> None:
        # three corrupt samples (a failed feature extraction wrote NaN); batch of iteration 23
        self.x[463, 5] = np.nan
        self.x[470, :3] = np.nan
        self.x[611, 0] = np.inf


class Explosion(Example):
    """Linear regression with EuclideanLoss on unnormalised targets and far too high an lr."""

    name = "gradient_explosion"
    solver_text = solver("0.8", display=5, max_iter=100)
    net_text = """name: "regression"
layer {
  name: "data"
  type: "HDF5Data"
  top: "data"
  top: "target"
  include { phase: TRAIN }
  hdf5_data_param { source: "train_h5.txt" batch_size: 20 }
}
layer {
  name: "pred"
  type: "InnerProduct"
  bottom: "data"
  top: "pred"
  inner_product_param { num_output: 1 weight_filler { type: "gaussian" std: 0.01 } }
}
layer { name: "loss" type: "EuclideanLoss" bottom: "pred" bottom: "target" top: "loss" }
"""

    def make_data(self) -> None:
        n, d = 600, 8
        self.x = self.rng.normal(0, 2.0, (n, d)).astype(F)
        w = self.rng.normal(0, 1, d).astype(F)
        self.y = (self.x @ w + self.rng.normal(0, 0.1, n)).astype(F)[:, None]
        self.h5(data=self.x, target=self.y)
        self.params = {"w": self.rng.normal(0, 0.01, (1, d)).astype(F), "b": np.zeros(1, F)}

    def step(self, it):
        x, y = self.batch(it, self.x, self.y, size=20)
        p = self.params
        with np.errstate(all="ignore"):
            pred = x @ p["w"].T + p["b"]
            diff = pred - y
            n = F(x.shape[0])
            loss = F((diff * diff).sum() / (2 * n))
            dpred = diff / n
            grads = {"w": dpred.T @ x, "b": dpred.sum(0)}
        return {"loss": (loss, F(1))}, grads


class LossFunction(Example):
    """mean(sqrt(target - pred)): fine while pred < target, NaN once pred overshoots."""

    name = "loss_function"
    solver_text = solver("0.01", display=5, max_iter=100)
    net_text = """name: "sqrt_regression"
layer {
  name: "data"
  type: "HDF5Data"
  top: "data"
  top: "target"
  include { phase: TRAIN }
  hdf5_data_param { source: "train_h5.txt" batch_size: 20 }
}
layer {
  name: "pred"
  type: "InnerProduct"
  bottom: "data"
  top: "pred"
  inner_product_param { num_output: 1 weight_filler { type: "constant" value: 0 } }
}
layer {
  name: "err"
  type: "Eltwise"
  bottom: "target"
  bottom: "pred"
  top: "err"
  eltwise_param { operation: SUM coeff: 1 coeff: -1 }
}
layer { name: "sqrt_err" type: "Power" bottom: "err" top: "sqrt_err" power_param { power: 0.5 } }
layer {
  name: "loss"
  type: "Reduction"
  bottom: "sqrt_err"
  top: "loss"
  loss_weight: 1
  reduction_param { operation: MEAN }
}
"""

    def make_data(self) -> None:
        n, d = 600, 4
        self.x = self.rng.uniform(0.5, 1.5, (n, d)).astype(F)
        self.y = (2.0 + self.x.sum(axis=1) + self.rng.normal(0, 0.3, n)).astype(F)[:, None]
        self.h5(data=self.x, target=self.y)
        self.params = {"w": np.zeros((1, d), F), "b": np.zeros(1, F)}

    def step(self, it):
        x, y = self.batch(it, self.x, self.y, size=20)
        p = self.params
        with np.errstate(all="ignore"):
            pred = x @ p["w"].T + p["b"]
            err = y - pred
            root = np.power(err, F(0.5))
            loss = F(root.mean())
            dpred = -(F(0.5) / root) / F(err.size)
            grads = {"w": dpred.T @ x, "b": dpred.sum(0)}
        return {"loss": (loss, F(1))}, grads


class Pooling(Classifier):
    """25x25 single-channel images, AVE pooling kernel 3 stride 5: the last row/column window is empty."""

    name = "pooling"
    solver_text = solver("0.01", max_iter=40)
    net_text = mlp_net(
        "pooled_mlp",
        32,
        4,
        extra="""layer {
  name: "pool1"
  type: "Pooling"
  bottom: "data"
  top: "pool1"
  pooling_param { pool: AVE kernel_size: 3 stride: 5 }
}
""",
    )

    def make_data(self) -> None:
        n = 120
        self.labels = self.rng.integers(0, self.classes, n)
        base = self.rng.normal(0, 1, (self.classes, 1, 25, 25)).astype(F)
        self.x = (base[self.labels] + self.rng.normal(0, 0.5, (n, 1, 25, 25))).astype(F)
        self.h5(data=self.x, label=self.labels.astype(F))
        fan = lambda a, b: self.rng.uniform(-math.sqrt(3 / a), math.sqrt(3 / a), (b, a)).astype(F)  # noqa: E731
        self.params = {
            "w1": fan(36, 32),
            "b1": np.zeros(32, F),
            "w2": fan(32, 4),
            "b2": np.zeros(4, F),
        }

    def features(self, x):
        return ave_pool(x, 3, 5), None


EXAMPLES = [Healthy, Explosion, LrPolicy, LossFunction, BadInput, Pooling]


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for cls in EXAMPLES:
        ex = cls()
        ex.write()
        print(f"wrote {ex.dir.relative_to(OUT.parent)} ({len(ex.log.lines)} log lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
