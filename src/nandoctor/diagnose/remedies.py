"""The concrete change for each cause: which field, layer or record, and the exact edit.

Rules already attach edits to their findings (the pooling geometry, the lr schedule's
field, a guard for unsafe math); this module adds the edits that need the whole
diagnosis: base_lr or the exploding head's loss_weight for an explosion (the rules
cannot know the loss grew), and the data layer's ``source`` pointed at the clean copy
``scan-data --clean`` writes for bad input. Edits always name the parsed file; when the configs
were read from a log's dumps the engine keeps only the advice (there is no file to patch).
"""

from __future__ import annotations

import math
import os
from collections import defaultdict

from nandoctor.config.edits import insert_field_edit, replace_edit
from nandoctor.config.textformat import Scalar
from nandoctor.core.types import Finding, Fix

MAX_NAMED = 10  # records or row ranges named in a culprit; the findings list every one
DATA_PARAMS = {"Data": "data_param", "HDF5Data": "hdf5_data_param", "ImageData": "image_data_param"}


# ------------------------------------------------------------------ explosion
def lower_base_lr(solver, suggested: list[float] | None = None, factor: float = 10.0) -> Fix | None:
    """base_lr divided by ``factor`` (at least 10x: a smaller step rarely stops a divergence), or lower when a rule worked out a
    value the solver type tolerates (``suggested``), as an exact edit of the solver file."""
    if solver is None:
        return None
    base_lr = solver.value("base_lr")
    if not isinstance(base_lr, (int, float)) or not math.isfinite(base_lr) or base_lr <= 0:
        return None
    target = min([base_lr / factor, *(v for v in suggested or () if 0 < v < base_lr)])
    new = f"{target:g}"
    text = f"Lower base_lr {base_lr / target:.3g}x: `base_lr: {base_lr:g}` -> `base_lr: {new}`"
    if not solver.is_set("base_lr"):
        return Fix(text + ".", (), safe=False)
    return Fix(text + ".", (replace_edit(solver.path, solver.field("base_lr").value, new),), safe=False)


def lower_loss_weight(net, layer_name: str, dominant: Finding | None) -> Fix | None:
    """The exploding head's loss_weight brought down to where its weighted loss is comparable
    with the other heads' (at least 10x lower), as an exact edit of the net file."""
    if net is None:
        return None
    layer = next((ly for ly in net.layers if ly.name == layer_name), None)
    if layer is None:
        return None
    weight = max((w for w in layer.loss_weights), default=1.0) or 1.0
    target = weight / 10
    if dominant is not None:
        contribution = dominant.data.get("contribution")
        ratio = dominant.data.get("ratio")
        if (
            isinstance(contribution, (int, float))
            and isinstance(ratio, (int, float))
            and contribution > 0
            and ratio > 0
        ):
            others = contribution / ratio
            target = min(target, weight * max(others, 1e-12) / contribution)
    new_weight = 10 ** math.floor(math.log10(target)) if target > 0 else weight / 10
    new = f"{new_weight:g}"
    text = f"Lower loss_weight of '{layer_name}' from {weight:g} to {new} (its weighted loss dominates the total and its gradients explode); rescale its targets if it then learns too slowly."
    f = layer.msg.first("loss_weight")  # one per top; the loss top is the first in every Caffe loss layer
    if f is not None and isinstance(f.value, Scalar):
        edit = replace_edit(net.doc.path, f.value, new)
    else:
        edit = insert_field_edit(net.doc, layer.msg, f"loss_weight: {new}")
    return Fix(text, (edit,) if edit is not None else (), safe=False)


def lower_lr_mult(net, layer_name: str) -> Fix | None:
    """The layer whose weights exploded first learns lr_mult times faster than the rest: scale its
    ``param { lr_mult }`` down so its largest becomes 1 (their ratios, e.g. bias 2x, are kept)."""
    from nandoctor.config.net import lr_mults

    layer = next((ly for ly in net.layers if ly.name == layer_name), None) if net is not None else None
    if layer is None or layer.version != "v2":
        return None
    top = max(lr_mults(layer), default=1.0)
    if top <= 1:
        return None
    edits = []
    for p in layer.msg.messages("param"):
        f = p.last("lr_mult")
        if f is not None and isinstance(f.value, Scalar) and isinstance(f.value.value, (int, float)):
            edits.append(replace_edit(net.doc.path, f.value, f"{f.value.value / top:g}"))
    text = f"Scale the lr_mult of '{layer_name}' down by {top:g}x (its weights explode first; it learns {top:g}x faster than base_lr)."
    return Fix(text, tuple(edits), safe=False)


# ------------------------------------------------------------------ bad input
def _clean_paths(declared: str, kind: str) -> tuple[str, str]:
    """(what to pass to ``scan-data --clean``, the ``source`` the net then reads)."""
    declared = declared.rstrip("/")
    if kind == "imagelist":
        stem, ext = os.path.splitext(declared)
        out = f"{stem}_clean{ext or '.txt'}"
        return out, out
    out = f"{declared}_clean"
    if kind == "hdf5":
        base = os.path.basename(declared)
        return out, f"{out}/{base if not base.endswith(('.h5', '.hdf5')) else 'list.txt'}"
    return out, out


def point_at_clean_copy(net, run_dir: str | None, findings: list[Finding]) -> list[Fix]:
    """For each data layer with bad records: the scan-data command and the edit of its ``source``."""
    by_layer: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        by_layer[f.data.get("layer") or ""].append(f)
    fixes = []
    for layer_name, fs in by_layer.items():
        layer = next((ly for ly in net.layers if ly.name == layer_name), None) if net is not None else None
        param = layer.param(DATA_PARAMS.get(layer.type, "")) if layer is not None else None
        field = param.last("source") if param is not None else None
        kind = fs[0].data.get("source_kind") or "lmdb"
        if field is None or not isinstance(field.value, Scalar):
            source = fs[0].data.get("source") or "?"
            out, _new = _clean_paths(source, kind)
            fixes.append(
                Fix(f"Rebuild the data set without the bad records: `nandoctor scan-data {source} --clean {out}`.")
            )
            continue
        declared = str(field.value.value)
        out, new_source = _clean_paths(declared, kind)
        where = f"cd {run_dir} && " if run_dir else ""
        text = (
            f"Rebuild the data set without the bad records (`{where}nandoctor scan-data {declared} --clean {out}`), "
            f'then train on the copy: layer \'{layer_name}\' source "{declared}" -> "{new_source}".'
        )
        fixes.append(Fix(text, (replace_edit(net.doc.path, field.value, f'"{new_source}"'),)))
    return fixes


def describe_records(findings: list[Finding]) -> str:
    """``train_lmdb records 00000555, 00000556`` / ``data/train.h5:data[420:423]``: the bad records
    by source, consecutive HDF5 rows folded into ranges."""
    parts: list[str] = []
    db: dict[str, list[str]] = defaultdict(list)
    rows: dict[tuple[str, str], list[int]] = defaultdict(list)
    for f in findings:
        d = f.data
        file, row, record = d.get("file"), d.get("row"), d.get("record")
        if file is not None and isinstance(row, int) and record and ":" in record:
            dataset = record.rsplit(":", 1)[1].split("[", 1)[0]
            rows[(file, dataset)].append(row)
        elif record is not None:
            db[os.path.basename(str(d.get("source", "")).rstrip("/")) or "data"].append(str(record))
        elif f.culprit:
            parts.append(f.culprit)
    for name, keys in db.items():
        keys = sorted(set(keys))
        shown = ", ".join(keys[:MAX_NAMED]) + (f" and {len(keys) - MAX_NAMED} more" if len(keys) > MAX_NAMED else "")
        parts.append(f"{name} record{'s' if len(keys) > 1 else ''} {shown}")
    for (file, dataset), rs in rows.items():
        spans = _ranges(sorted(set(rs)))
        shown = ", ".join(f"{dataset}{span}" for span in spans[:MAX_NAMED])
        more = f" and {len(spans) - MAX_NAMED} more ranges" if len(spans) > MAX_NAMED else ""
        parts.append(f"{file}:{shown}{more}")
    return "; ".join(parts)


def _ranges(rows: list[int]) -> list[str]:
    spans = []
    start = prev = rows[0]
    for r in rows[1:]:
        if r == prev + 1:
            prev = r
            continue
        spans.append((start, prev))
        start = prev = r
    spans.append((start, prev))
    return [f"[{a}]" if a == b else f"[{a}:{b + 1}]" for a, b in spans]
