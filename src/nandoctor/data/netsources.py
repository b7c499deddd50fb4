"""Find a net's data sources and everything that decides how Caffe reads them.

For each data layer of the TRAIN and TEST phases: the source path as Caffe resolves it (from
the run directory, i.e. the process CWD -- by default the folder of the solver or net file),
batch_size and the solver's iter_size / test schedule (for the first-read iteration), the
transform_param (scale, mean_file, mean_value: magnitudes as the net sees them), the loss layer
reading the label (class count = num_output of the layer feeding it, ignore_label) and any
Power/Scale layer that rescales the data right after it (the HDF5 way of scaling).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from nandoctor.config.layers import SOURCE_TYPES
from nandoctor.config.textformat import Message, boolean, number
from nandoctor.core.safeio import MB, read_input
from nandoctor.core.types import InputError
from nandoctor.data.checks import LabelRule, Transform
from nandoctor.data.datum import CorruptRecord, decode_blobproto
from nandoctor.data.report import Issue
from nandoctor.data.schedule import ReadSchedule
from nandoctor.data.spec import SourceSpec, detect_kind

CLASS_LABEL_LOSSES = ("SoftmaxWithLoss", "MultinomialLogisticLoss", "InfogainLoss", "Accuracy")
# losses whose target is a probability in [0, 1]: a target of 255 pushes the logit without bound
PROBABILITY_TARGET_LOSSES = ("SigmoidCrossEntropyLoss",)
RESCALERS = ("Power", "Scale", "BatchNorm", "MVN")
_CHANNEL_KEEPING = frozenset(
    {"Pooling", "ReLU", "PReLU", "ELU", "Sigmoid", "TanH", "Dropout", "Softmax", "Flatten", "Reshape",
     "Scale", "BatchNorm", "Bias", "Power", "AbsVal", "BNLL", "Split", "LRN", "MVN", "Clip", "Swish"}
)  # fmt: skip


# a mean BlobProto is one image's worth of floats (3x256x256: 0.8 MB); far more is no mean file
MAX_MEAN_FILE = 256 * MB


def specs_for_config(path: str, root: str | None = None, phases=("TRAIN", "TEST")) -> list[SourceSpec]:
    """Specs for every data source of a net or solver file (the solver's nets, schedule, iter_size)."""
    from nandoctor.config.load import load_configs

    configs = load_configs([path])
    run_dir = root if root is not None else str(Path(path).resolve().parent)
    solver = configs.solvers[0] if configs.solvers else None
    if solver is not None:
        train = configs.train_net
        tests = [n for n in configs.nets if n is not train] or ([train] if train is not None else [])
        specs = []
        if "TRAIN" in phases and train is not None:
            specs += specs_for_net(train, run_dir, solver, ("TRAIN",))
        if "TEST" in phases:
            for k, net in enumerate(tests):
                specs += specs_for_net(net, run_dir, solver, ("TEST",), test_index=k)
        return _dedupe(specs)
    if not configs.nets:
        raise InputError("no net found in this file", path)
    return specs_for_net(configs.nets[0], run_dir, None, phases)


def specs_for_net(net, run_dir: str, solver=None, phases=("TRAIN", "TEST"), test_index: int = 0) -> list[SourceSpec]:
    specs: list[SourceSpec] = []
    for phase in phases:
        layers = net.phase_layers(phase)
        for layer in layers:
            if layer.type in SOURCE_TYPES:
                spec = _spec(layer, layers, phase, run_dir, solver, test_index)
                if spec is not None:
                    specs.append(spec)
    return _dedupe(specs)


def _dedupe(specs: list[SourceSpec]) -> list[SourceSpec]:
    seen, out = set(), []
    for s in specs:
        key = (s.kind, os.path.realpath(s.path), s.phase)
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out


def _get(msg: Message | None, name: str, default: Any = None) -> Any:
    if msg is None:
        return default
    value = msg.get(name, default)
    return default if isinstance(value, Message) else value


def _spec(layer, layers, phase: str, run_dir: str, solver, test_index: int) -> SourceSpec | None:
    param_name = {"Data": "data_param", "HDF5Data": "hdf5_data_param", "ImageData": "image_data_param"}[layer.type]
    p = layer.param(param_name)
    source = _get(p, "source")
    if source is None:
        return None
    declared = str(source)
    path = declared if os.path.isabs(declared) else os.path.join(run_dir, declared)
    pre: list[Issue] = []
    if layer.type == "Data":
        backend = _get(p, "backend", "LEVELDB")
        backend = {0: "LEVELDB", 1: "LMDB"}.get(backend, str(backend))
        kind = "lmdb" if backend == "LMDB" else "leveldb"
        try:
            found = detect_kind(path)
        except InputError:
            found = kind
        if found != kind:
            pre.append(
                Issue(
                    "unreadable_source",
                    f"backend is {backend} but {declared} is a {found} database: "
                    f"Caffe fails to open it (set backend: {found.upper()})",
                )
            )
            kind = found if found in ("lmdb", "leveldb") else kind
    elif layer.type == "HDF5Data":
        kind = "hdf5"
    else:
        kind = "imagelist"
    batch = _int(_get(p, "batch_size"), 1 if layer.type == "ImageData" else None)
    schedule = ReadSchedule(
        batch_size=batch,
        phase=phase,
        iter_size=_int(solver.value("iter_size"), 1) if solver is not None else 1,
        shuffle=boolean(_get(p, "shuffle"), False),
        rand_skip=_int(_get(p, "rand_skip"), 0),
    )
    if phase == "TEST" and solver is not None:
        test_iter = solver.value("test_iter") or []
        schedule.test_iter = _int(test_iter[test_index], None) if test_index < len(test_iter) else None
        schedule.test_interval = _int(solver.value("test_interval"), None)
        schedule.test_initialization = boolean(solver.value("test_initialization"), True)
    transform, mean_issues = _transform(layer, p, run_dir)
    pre += mean_issues
    labels, label_top = _label_rule(layer, layers)
    spec = SourceSpec(
        kind=kind, path=path, layer=layer.name, phase=phase, tops=tuple(layer.tops), schedule=schedule,
        transform=transform, labels=labels, label_top=label_top, cwd=run_dir, declared=declared,
        rescaled_by=_rescaler(layer, layers), pre_issues=pre,
    )  # fmt: skip
    if layer.type == "ImageData":
        spec.root_folder = str(_get(p, "root_folder", ""))
        spec.is_color = boolean(_get(p, "is_color"), True)
        spec.resize = (_int(_get(p, "new_height"), 0), _int(_get(p, "new_width"), 0))
    tp = layer.param("transform_param")
    spec.force_color = boolean(_get(tp, "force_color"), False)
    spec.force_gray = boolean(_get(tp, "force_gray"), False)
    return spec


def _int(value: Any, default: Any) -> Any:
    v = number(value) if value is not None else None
    return int(v) if v is not None and np.isfinite(v) else default


def _transform(layer, data_param: Message | None, run_dir: str) -> tuple[Transform, list[Issue]]:
    tp = layer.param("transform_param")
    scale = number(_get(tp, "scale", _get(data_param, "scale", 1.0)))
    t = Transform(scale=1.0 if scale is None else scale)
    issues: list[Issue] = []
    mean_file = _get(tp, "mean_file", _get(data_param, "mean_file"))
    values = [number(v) for v in (tp.get_all("mean_value") if tp is not None else [])]
    if mean_file is not None:
        t.mean_source = f"mean_file {mean_file}"
        path = str(mean_file) if os.path.isabs(str(mean_file)) else os.path.join(run_dir, str(mean_file))
        try:
            blob = decode_blobproto(read_input(path, "a mean file", MAX_MEAN_FILE))
        except InputError as exc:
            if not os.path.exists(path):
                issues.append(
                    Issue(
                        "mean_file", f"mean_file {mean_file} not found (Caffe aborts at start)", record=str(mean_file)
                    )
                )
            else:
                issues.append(Issue("mean_file", f"mean_file {mean_file}: {exc.message}", record=str(mean_file)))
        except (OSError, CorruptRecord) as exc:
            issues.append(
                Issue("mean_file", f"mean_file {mean_file} is not a readable BlobProto: {exc}", record=str(mean_file))
            )
        else:
            data = blob.data.astype(np.float32)
            bad = ~np.isfinite(data)
            if data.size == 0:
                # Caffe checks the mean's C, H, W against the record's: an empty blob fails that check
                issues.append(
                    Issue(
                        "mean_file",
                        f"mean_file {mean_file} holds no values: Caffe aborts at its first batch "
                        "(the mean's channels, height and width must equal the record's)",
                        record=str(mean_file),
                    )
                )
            elif bad.any():
                first = np.flatnonzero(bad)[:8].tolist()
                issues.append(
                    Issue(
                        "mean_file",
                        f"mean_file {mean_file} holds {int(bad.sum())} non-finite values "
                        f"(first at {first}): every record becomes NaN after mean subtraction",
                        record=str(mean_file),
                        detail={"nonfinite": int(bad.sum()), "first_positions": first},
                    )
                )
            t.mean = data
            dims = [d for d in blob.shape if d]
            t.mean_source += f" ({'x'.join(map(str, dims))})"
    elif values:
        t.mean = np.array([v for v in values if v is not None], np.float64)
        t.mean_source = f"mean_value {', '.join(f'{v:g}' for v in values if v is not None)}"
    return t, issues


def _label_rule(layer, layers) -> tuple[LabelRule | None, str | None]:
    """The class-label rule for the data layer's label top, if a classification loss reads it."""
    if len(layer.tops) < 2:
        return None, None
    for label_top in layer.tops[1:]:
        for consumer in layers:
            if len(consumer.bottoms) < 2 or consumer.bottoms[1] != label_top:
                continue
            if consumer.type in PROBABILITY_TARGET_LOSSES:
                return LabelRule(None, None, False, consumer.name, high=1.0), label_top
            if consumer.type not in CLASS_LABEL_LOSSES:
                continue
            lp = consumer.param("loss_param")
            ignore = _int(_get(lp, "ignore_label"), None)
            return LabelRule(
                _num_classes(consumer.bottoms[0], consumer, layers), ignore, True, consumer.name
            ), label_top
    return None, None


def _num_classes(blob: str, consumer, layers) -> int | None:
    """num_output of the last layer before ``consumer`` producing ``blob`` (in-place layers skipped)."""
    for producer in reversed(layers[: layers.index(consumer)]):
        if blob not in producer.tops:
            continue
        for name in ("inner_product_param", "convolution_param", "deconvolution_param", "embed_param"):
            n = _int(_get(producer.param(name), "num_output"), None)
            if n:
                return n
        if len(producer.bottoms) == 1 and producer.type in _CHANNEL_KEEPING:
            blob = producer.bottoms[0]  # in place, or a layer that keeps the class axis: look further up
            continue
        return None
    return None


def _rescaler(layer, layers) -> str | None:
    """The layer that rescales the data top right after the data layer, if any (then no missing-scale warning)."""
    if not layer.tops:
        return None
    data = layer.tops[0]
    for consumer in layers:
        if data in consumer.bottoms and consumer is not layer:
            if consumer.type == "Power":
                scale = number(_get(consumer.param("power_param"), "scale", 1.0))
                return consumer.name if scale not in (None, 1.0) else None
            return consumer.name if consumer.type in RESCALERS else None
    return None
