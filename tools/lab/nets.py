"""Prototxt text for the lab's small nets, built layer by layer.

Every net has a TRAIN and a TEST data layer (the TEST one is used only when the run's shape sets
``test_iter``), so one net serves every log shape. Layers are plain text so a mechanism can insert
whatever construct it studies (a Log layer, a Python loss, a second head) between them.
"""

from __future__ import annotations


class E(str):
    """An enum value, written bare (``pool: MAX``) where every other string is quoted."""


def _fmt(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, E):
        return str(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, float):
        return repr(v) if abs(v) >= 1e-4 or v == 0 else f"{v:g}"
    return str(v)


def block(name: str, fields: dict | list) -> str:
    """``name { k: v ... }`` from a dict (values may be dicts/lists of repeated values) or list of pairs."""
    items = fields.items() if isinstance(fields, dict) else fields
    lines = [f"{name} {{"]
    for k, v in items:
        vals = v if isinstance(v, list) else [v]
        for one in vals:
            if isinstance(one, dict):
                lines.extend("  " + ln for ln in block(k, one).splitlines())
            else:
                lines.append(f"  {k}: {_fmt(one)}")
    lines.append("}")
    return "\n".join(lines)


def layer(name: str, type_: str, bottoms=(), tops=(), **fields) -> str:
    items: list = [("name", name), ("type", type_)]
    items += [("bottom", b) for b in bottoms]
    items += [("top", t) for t in tops]
    for k, v in fields.items():
        items.append((k, v))
    return block("layer", items)


def data_layers(ds: dict, test_ds: dict | None, batch: int, label_top: str = "label", transform: dict | None = None):
    """TRAIN (and TEST) data layers for a data set dict (see datasets.py)."""
    out = []
    for phase, spec in (("TRAIN", ds), ("TEST", test_ds or ds)):
        name = spec["name"] if phase == "TRAIN" else (test_ds or ds)["name"]
        if spec["backend"] == "hdf5":
            out.append(
                layer(
                    "data",
                    "HDF5Data",
                    tops=("data", label_top),
                    include={"phase": E(phase)},
                    hdf5_data_param={"source": f"{name}_h5.txt", "batch_size": batch},
                )
            )
        else:
            tp = dict(transform or {})
            if not spec.get("as_float", True):
                tp.setdefault("scale", 0.00390625)
            fields = {"include": {"phase": E(phase)}}
            if tp:
                fields["transform_param"] = tp
            fields["data_param"] = {"source": name, "batch_size": batch, "backend": E(spec["backend"].upper())}
            out.append(layer("data", "Data", tops=("data", label_top), **fields))
    return out


def ip(
    name: str,
    bottom: str,
    n: int,
    *,
    std: float | None = None,
    lr_mult: float = 1,
    filler: str = "xavier",
    top: str | None = None,
) -> str:
    wf = {"type": "gaussian", "std": std} if std is not None else {"type": filler}
    return layer(
        name,
        "InnerProduct",
        (bottom,),
        (top or name,),
        param=[{"lr_mult": lr_mult}, {"lr_mult": 2 * lr_mult}],
        inner_product_param={"num_output": n, "weight_filler": wf, "bias_filler": {"type": "constant"}},
    )


def conv(name: str, bottom: str, n: int, k: int = 3, pad: int = 1, std: float | None = None) -> str:
    wf = {"type": "gaussian", "std": std} if std is not None else {"type": "xavier"}
    return layer(
        name,
        "Convolution",
        (bottom,),
        (name,),
        param=[{"lr_mult": 1}, {"lr_mult": 2}],
        convolution_param={
            "num_output": n,
            "kernel_size": k,
            "pad": pad,
            "weight_filler": wf,
            "bias_filler": {"type": "constant"},
        },
    )


def relu(name: str, blob: str) -> str:
    return layer(name, "ReLU", (blob,), (blob,))


def pool(name: str, bottom: str, method: str, k: int | tuple[int, int], s: int | tuple[int, int], pad: int = 0) -> str:
    p: dict = {"pool": E(method)}
    if isinstance(k, tuple):
        p["kernel_h"], p["kernel_w"] = k
    else:
        p["kernel_size"] = k
    if isinstance(s, tuple):
        p["stride_h"], p["stride_w"] = s
    else:
        p["stride"] = s
    if pad:
        p["pad"] = pad
    return layer(name, "Pooling", (bottom,), (name,), pooling_param=p)


def softmax_loss(name: str, bottom: str, label: str = "label", loss_weight: float | None = None, **extra) -> str:
    fields = dict(extra)
    if loss_weight is not None:
        fields["loss_weight"] = loss_weight
    return layer(name, "SoftmaxWithLoss", (bottom, label), (name,), **fields)


def accuracy(bottom: str, label: str = "label") -> str:
    return layer("accuracy", "Accuracy", (bottom, label), ("accuracy",), include={"phase": E("TEST")})


def net(name: str, layers: list[str]) -> str:
    return f'name: "{name}"\n' + "\n".join(layers) + "\n"


def solver_text(fields: dict) -> str:
    lines = []
    for k, v in fields.items():
        for one in v if isinstance(v, list) else [v]:
            lines.append(f"{k}: {_fmt(one)}")
    return "\n".join(lines) + "\n"
