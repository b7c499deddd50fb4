"""Pooling with stride > kernel and no pad: Caffe's ceil-mode output size leaves the last window
starting exactly at the input's edge, so AVE pooling divides 0 by 0 (MAX returns -FLT_MAX)."""

from __future__ import annotations

from tools.lab.mechanisms.common import N, base_solver, classifier, dataset, mechanism, plan, tokens

CAUSE = "pooling"


def _pool_plan(seed, h, w, k, s, what, *, method="AVE", name="pool1"):
    ds = dataset(seed, shape=[1, h, w])
    layers_ds = classifier(seed, ds=ds, pool_layer=N.pool(name, "conv1", method, k, s))
    return plan(CAUSE, name, tokens(name), what, layers_ds, base_solver(seed, max_iter=60))


@mechanism("ave_6_k2_s3", CAUSE)
def ave_6_k2_s3(seed: int):
    """AVE pooling, kernel 2, stride 3 over a 6x6 map: the third window starts at 6."""
    return _pool_plan(seed, 6, 6, 2, 3, "AVE pool kernel 2 stride 3 on 6x6")


@mechanism("ave_8_k3_s4", CAUSE)
def ave_8_k3_s4(seed: int):
    """AVE pooling, kernel 3, stride 4 over 8x8: ceil(5/4)+1 = 3 windows, the last empty."""
    return _pool_plan(seed, 8, 8, 3, 4, "AVE pool kernel 3 stride 4 on 8x8")


@mechanism("ave_10_k1_s5", CAUSE)
def ave_10_k1_s5(seed: int):
    """AVE pooling, kernel 1, stride 5 over 10x10."""
    return _pool_plan(seed, 10, 10, 1, 5, "AVE pool kernel 1 stride 5 on 10x10")


@mechanism("ave_rect_one_axis", CAUSE)
def ave_rect_one_axis(seed: int):
    """Rectangular AVE pooling: only the height axis (6, kernel_h 2, stride_h 3) has an empty window."""
    return _pool_plan(seed, 6, 8, (2, 2), (3, 2), "AVE pool kernel 2x2, stride 3x2 on 6x8")


@mechanism("ave_on_data", CAUSE)
def ave_on_data(seed: int):
    """AVE pooling straight on the 6x6 input (no conv before it), kernel 2, stride 3: the third window is empty."""
    ds = dataset(seed, shape=[1, 6, 6])
    layers, datasets = classifier(seed, ds=ds, conv=False)
    pooled = [N.pool("pool0", "data", "AVE", 2, 3)]
    layers = tuple(ln.replace('bottom: "data"', 'bottom: "pool0"') if 'name: "ip1"' in ln else ln for ln in layers)
    i = next(i for i, ln in enumerate(layers) if 'name: "ip1"' in ln)
    layers = layers[:i] + tuple(pooled) + layers[i:]
    return plan(
        CAUSE,
        "pool0",
        tokens("pool0"),
        "AVE pool kernel 2 stride 3 directly on a 6x6 input",
        (layers, datasets),
        base_solver(seed, max_iter=60),
    )


@mechanism("max_empty_window", CAUSE)
def max_empty_window(seed: int):
    """MAX pooling with an empty window returns -FLT_MAX, which overflows in the next InnerProduct."""
    return _pool_plan(seed, 6, 6, 2, 3, "MAX pool kernel 2 stride 3 on 6x6 (empty window = -3.4e38)", method="MAX")


@mechanism("ave_second_pool", CAUSE)
def ave_second_pool(seed: int):
    """The first pooling is fine; pool2 (AVE, kernel 2, stride 3 on the 6x6 map pool1 leaves) is not."""
    ds = dataset(seed, shape=[1, 12, 12])
    layers, datasets = classifier(seed, ds=ds)
    extra = (N.conv("conv2", "pool1", 8), N.relu("relu_c2", "conv2"), N.pool("pool2", "conv2", "AVE", 2, 3))
    i = next(i for i, ln in enumerate(layers) if 'name: "ip1"' in ln)
    ip1 = layers[i].replace('bottom: "pool1"', 'bottom: "pool2"')
    layers = layers[:i] + extra + (ip1,) + layers[i + 1 :]
    return plan(
        CAUSE,
        "pool2",
        tokens("pool2"),
        "second pooling layer AVE kernel 2 stride 3 on 6x6",
        (layers, datasets),
        base_solver(seed, max_iter=60),
    )
