"""Compare the solver and nets a log dumped with the prototxt files they came from.

Caffe prints ``Initializing solver from parameters:`` and ``Initializing net from
parameters:`` followed by the protobuf text of what it actually uses. That dump is
not a copy of the file:

* fields come in field-number order, not file order (we compare per field name;
  repeated fields keep their order);
* the solver gains ``train_state { level: 0 stage: "" }`` (when no train_state was
  given) and, since 2018, ``snapshot_prefix`` (when unset, derived from the solver file
  name): both are expected extras;
* each net dump is the net after phase filtering (``NetStateRule`` include/exclude
  on phase, level and stage) with ``state { phase: ... }`` added at the top; layers
  keep their ``include`` rules;
* floats are printed from float32 with 6-9 significant digits, so numbers compare
  with a relative tolerance of 1e-6.

``compare_solver``/``compare_net`` return a list of differences (empty = equal).
"""

from __future__ import annotations

import math
from pathlib import Path

from nandoctor.config.textformat import Message, Scalar, parse_file
from nandoctor.log.trace import LogDocument

SOLVER_EXTRAS = ("train_state", "snapshot_prefix", "test_state")
NET_EXTRAS = ("state",)


def _scalar_equal(a: Scalar, b: Scalar) -> bool:
    va, vb = a.value, b.value
    if isinstance(va, bool) or isinstance(vb, bool):
        return va == vb
    if isinstance(va, (int, float)) and isinstance(vb, (int, float)):
        if math.isnan(va) and math.isnan(vb):
            return True
        return math.isclose(va, vb, rel_tol=1e-6, abs_tol=1e-30)
    return str(va) == str(vb)


def _show(value: Scalar | Message) -> str:
    return "{...}" if isinstance(value, Message) else value.text


def compare_messages(file_msg: Message, log_msg: Message, where: str = "", extras: tuple[str, ...] = ()) -> list[str]:
    """Field-by-field differences between a message from a file and its dump in the log."""
    diffs: list[str] = []
    names = list(dict.fromkeys([f.name for f in file_msg.fields] + [f.name for f in log_msg.fields]))
    for name in names:
        fa = [f.value for f in file_msg.all(name)]
        fb = [f.value for f in log_msg.all(name)]
        path = f"{where}.{name}" if where else name
        if not fa and name in extras:
            continue
        if len(fa) != len(fb):
            diffs.append(f"{path}: {len(fa)} value(s) in the file, {len(fb)} in the log")
            continue
        for i, (a, b) in enumerate(zip(fa, fb, strict=True)):
            p = f"{path}[{i}]" if len(fa) > 1 else path
            if isinstance(a, Message) and isinstance(b, Message):
                diffs.extend(compare_messages(a, b, p))
            elif isinstance(a, Scalar) and isinstance(b, Scalar):
                if not _scalar_equal(a, b):
                    diffs.append(f"{p}: file {a.text} vs log {b.text}")
            else:
                diffs.append(f"{p}: file {_show(a)} vs log {_show(b)}")
    return diffs


def compare_solver(log_doc: LogDocument, solver_path: str | Path) -> list[str]:
    if log_doc.root is None:
        return [f"the log's solver dump does not parse: {log_doc.error}"]
    file_root = parse_file(solver_path).root
    diffs = compare_messages(file_root, log_doc.root, extras=SOLVER_EXTRAS)
    prefix = log_doc.root.get("snapshot_prefix")
    if file_root.get("snapshot_prefix") is None and prefix is not None and prefix != Path(solver_path).stem:
        diffs.append(
            f"snapshot_prefix: Caffe derives {Path(solver_path).stem!r} from the file name, log has {prefix!r}"
        )
    return diffs


def _rule_matches(rule: Message, phase: str, level: int, stages: set[str]) -> bool:
    if rule.get("phase") is not None and rule.get("phase") != phase:
        return False
    if rule.get("min_level") is not None and level < rule.get("min_level"):
        return False
    if rule.get("max_level") is not None and level > rule.get("max_level"):
        return False
    if any(s not in stages for s in rule.get_all("stage")):
        return False
    return not any(s in stages for s in rule.get_all("not_stage"))


def layer_in_phase(layer: Message, phase: str, level: int = 0, stages: set[str] | None = None) -> bool:
    """Caffe's Net::StateMeetsRule logic: include rules (any must match) or exclude rules (none may)."""
    stages = stages or set()
    include = layer.messages("include")
    if include:
        return any(_rule_matches(r, phase, level, stages) for r in include)
    return not any(_rule_matches(r, phase, level, stages) for r in layer.messages("exclude"))


def filter_net(root: Message, phase: str, level: int = 0, stages: set[str] | None = None) -> Message:
    """A copy of a net message without the layers the given state filters out."""
    kept = [
        f for f in root.fields if f.name not in ("layer", "layers") or layer_in_phase(f.value, phase, level, stages)
    ]
    return Message(kept, root.start, root.end)


def compare_net(log_doc: LogDocument, net_path: str | Path) -> list[str]:
    log_root = log_doc.root
    if log_root is None:
        return [f"the log's net dump does not parse: {log_doc.error}"]
    state = log_root.get("state")
    phase = "TRAIN"
    level = 0
    stages: set[str] = set()
    if isinstance(state, Message):
        phase = state.get("phase", "TRAIN")
        level = state.get("level", 0) or 0
        stages = {s for s in state.get_all("stage") if s}
    file_root = filter_net(parse_file(net_path).root, phase, level, stages)
    return compare_messages(file_root, log_root, extras=NET_EXTRAS)
