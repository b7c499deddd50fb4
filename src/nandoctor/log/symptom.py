"""A symptom: one observation about a Caffe trace, and the helpers every detector shares.

``Symptom`` is a plain observation with numbers: ``kind`` (a stable name such as
``loss_nonfinite``), the cause class it hints at (``cause``; UNKNOWN with
``data["candidates"]`` when the log alone cannot decide), the run (``segment``), the
``iteration``, ``culprit`` (layer, output or solver field), ``evidence`` (log lines as
``(line, text)``) and ``data`` for the diagnosis engine. The layer-type helpers read the
train net dump a log carries.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

from nandoctor.config import layers
from nandoctor.config.textformat import ParseError, parse_text
from nandoctor.core.types import Cause
from nandoctor.log.trace import DebugRecord, Segment

# Custom layers of other Caffe builds that are as unsafe as Log and Power.
MATH_TYPES = layers.MATH_TYPES | layers.MATH_TYPES_V1 | {"Sqrt", "Divide"}


@dataclass(slots=True)
class Symptom:
    kind: str
    message: str
    cause: Cause
    segment: int
    iteration: int | None = None
    culprit: str | None = None
    evidence: list[tuple[int, str]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


def is_bad(v: float | None) -> bool:
    return v is not None and not math.isfinite(v)


def fmt_value(v: float | None) -> str:
    return "?" if v is None else f"{v:g}"


def new_symptom(seg: Segment, kind: str, message: str, cause: Cause, **kw) -> Symptom:
    return Symptom(kind, message, cause, seg.index, **kw)


def layer_types(seg: Segment) -> dict[str, str]:
    """Layer name -> type from the train net dump (empty when the log has none)."""
    net = seg.train_net
    if net is None:
        return {}
    # runs restarted or resumed with one net dump the same text (the parser shares one str): parse it once
    return dict(_dump_types(net.text))


@functools.lru_cache(maxsize=64)
def _dump_types(text: str) -> tuple[tuple[str, str], ...]:
    try:
        root = parse_text(text, "<log>").root
    except (ParseError, RecursionError):
        return ()
    types: dict[str, str] = {}
    for key in ("layer", "layers"):
        for layer in root.messages(key):
            name, typ = layer.get("name"), layer.get("type")
            if isinstance(name, str) and isinstance(typ, str):
                types.setdefault(name, typ)
    return tuple(types.items())


def cause_for_layer(typ: str | None, layer: str, role: str) -> tuple[Cause, list[str]]:
    if role == "input" or typ in layers.INPUT_TYPES or typ in layers.INPUT_TYPES_V1:
        return Cause.BAD_INPUT, []
    if typ in ("Pooling", "POOLING"):
        return Cause.POOLING, []
    if typ is not None and (typ.endswith("Loss") or typ.endswith("LOSS") or typ in MATH_TYPES):
        return Cause.LOSS_FUNCTION, []
    if typ is None and layer.startswith("data"):
        return Cause.BAD_INPUT, []
    return Cause.UNKNOWN, [Cause.GRADIENT_EXPLOSION.value, Cause.BAD_INPUT.value, Cause.LOSS_FUNCTION.value]


def debug_text(r: DebugRecord) -> str:
    if r.direction == "forward" and r.role == "top":
        return f"[Forward] Layer {r.layer}, top blob {r.blob} data: {fmt_value(r.value)}"
    if r.direction == "forward":
        return f"[Forward] Layer {r.layer}, {r.role} blob {r.blob} data: {fmt_value(r.value)}"
    if r.direction == "backward":
        return f"[Backward] Layer {r.layer}, {r.role} blob {r.blob} diff: {fmt_value(r.value)}"
    return f"[Update] Layer {r.layer}, param {r.blob} {r.what}: {fmt_value(r.value)}"
