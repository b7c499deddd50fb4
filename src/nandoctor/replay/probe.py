"""The input-probe net: the user's data layers alone, each top reduced to one number per batch.

The classic advice "use a simple net that only reads the input: if an input is bad, its
loss goes NaN too", made exact. The data layers are copied verbatim (same sources,
transform_param, batch sizes, include/exclude phases), and every top gets a
``Reduction`` (ASUM: sum of |x|) whose scalar output Caffe prints as ``Train net output``
on every iteration (display 1) and as ``Test net output`` after each test pass. One nan
or inf anywhere in a batch makes that number nan/inf, so the log names the iteration,
the layer and the top -- read by Caffe's own readers, which also covers custom and fork
data layers (Python, AnnotatedData, ...) nandoctor cannot open itself. ``debug_info``
is switched on as well so every ``iter_size`` sub-batch is printed, not only the last.

V1 nets (``layers { type: DATA }``) have no Reduction layer: there the tops go to a
SILENCE layer and debug_info's per-top mean |x| lines are the probe. Layers fed by the
caller (Input, MemoryData) cannot run under ``caffe train`` and are left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from nandoctor.config.net import Layer, Net, load_net
from nandoctor.config.solver import Solver
from nandoctor.config.textformat import parse_file
from nandoctor.core.types import InputError
from nandoctor.log.trace import Trace
from nandoctor.replay.solver_copy import SolverCopy, SolverEditor, quote, snapshot_prefix

EXTERNAL = frozenset({"Input", "MemoryData"})  # filled by the caller, not by a reader


@dataclass(frozen=True, slots=True)
class ProbeOutput:
    output: str  # the blob Caffe prints (Reduction top), or the data top itself for V1
    layer: str
    top: str
    layer_type: str


@dataclass
class ProbeNet:
    source: Path
    path: Path
    text: str
    outputs: list[ProbeOutput] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def data_layers(net: Net) -> tuple[list[Layer], list[str]]:
    """Layers that read data by themselves (no bottoms, some tops), and notes on those left out."""
    keep, notes = [], []
    for layer in net.layers:
        if layer.bottoms or not layer.tops:
            continue
        if layer.type in EXTERNAL:
            notes.append(f"{layer.name} ({layer.type}) is fed by the caller: caffe train cannot run it, left out")
            continue
        if layer.type == "Python":
            notes.append(f"{layer.name} is a Python layer: Caffe imports your module to run it in the probe")
        keep.append(layer)
    return keep, notes


def _slice(net: Net, f) -> str:
    return net.doc.text[f.name_pos.offset : f.value.end]


def _rules_text(net: Net, layer: Layer, indent: str) -> str:
    parts = [_slice(net, f) for f in layer.msg.fields if f.name in ("include", "exclude")]
    return "".join(f"{indent}{p}\n" for p in parts)


def probe_net_text(net: Net) -> tuple[str, list[ProbeOutput], list[str]]:
    if net.version == "v0":
        raise InputError("--probe-input needs a V1 or V2 net (upgrade this V0 net with upgrade_net_proto_text)",
                         net.doc.path)  # fmt: skip
    layers, notes = data_layers(net)
    if not layers:
        raise InputError("the net has no data layer of its own to probe (inputs are fed by the caller)", net.doc.path)
    name = f"{net.name}_input_probe" if net.name else "input_probe"
    out = [f"# nandoctor input probe of {net.doc.path}: its data layers only, each top reduced to sum |x|",
           f"name: {quote(name)}"]  # fmt: skip
    outputs: list[ProbeOutput] = []
    for layer in layers:
        out.append(_slice(net, layer.field))
    for layer in layers:
        if net.version == "v2":
            for top in layer.tops:
                probe = f"probe_{top}"
                out.append(
                    "layer {\n"
                    f"  name: {quote(f'probe_{layer.name}_{top}')}\n"
                    '  type: "Reduction"\n'
                    f"  bottom: {quote(top)}\n"
                    f"  top: {quote(probe)}\n"
                    "  reduction_param { operation: ASUM }\n"
                    f"{_rules_text(net, layer, '  ')}"
                    "}"
                )
                outputs.append(ProbeOutput(probe, layer.name, top, layer.type))
        else:
            bottoms = "".join(f"  bottom: {quote(t)}\n" for t in layer.tops)
            out.append(f"layers {{\n  name: {quote(f'probe_{layer.name}_silence')}\n  type: SILENCE\n{bottoms}"
                       f"{_rules_text(net, layer, '  ')}}}")  # fmt: skip
            outputs += [ProbeOutput(t, layer.name, t, layer.type) for t in layer.tops]
    return "\n".join(out) + "\n", outputs, notes


def probe_solver(solver: Solver, out_dir: Path, cwd: Path, max_iter: int | None) -> tuple[SolverCopy, list[ProbeNet]]:
    """The probe's solver and nets: every net the solver names replaced by its probe."""
    for name in ("net_param", "train_net_param", "test_net_param"):
        if solver.is_set(name):
            raise InputError(f"--probe-input cannot rewrite a net embedded in the solver ({name})", solver.path)
    ed = SolverEditor(solver)
    probes: dict[Path, ProbeNet] = {}
    for name in ("net", "train_net", "test_net"):
        for f in solver.fields(name):
            src = Path(str(f.value.value))
            src = (src if src.is_absolute() else cwd / src).resolve()
            if src not in probes:
                net = load_net(parse_file(src))
                text, outputs, notes = probe_net_text(net)
                path = out_dir / f"{src.stem}_probe.prototxt"
                if any(p.path == path for p in probes.values()):
                    path = out_dir / f"{src.stem}_{len(probes)}_probe.prototxt"
                probes[src] = ProbeNet(src, path, text, outputs, notes)
            ed.replace_value(f, quote(str(probes[src].path.resolve())))
    if not probes:
        raise InputError("the solver names no net file", solver.path)
    ed.set("display", "1")
    ed.set("debug_info", "true")
    if max_iter is not None:
        ed.set("max_iter", str(max_iter))  # the probe has no weights: the lr schedule does not matter
    ed.set("snapshot", "0")
    ed.set("snapshot_after_train", "false")
    ed.set("snapshot_prefix", quote(snapshot_prefix(solver, out_dir)))
    copy = SolverCopy(Path(solver.path), out_dir / f"{Path(solver.path).stem}_probe.prototxt", ed.text(), ed.changes)
    if copy.path in {p.path for p in probes.values()}:
        copy.path = out_dir / f"{Path(solver.path).stem}_probe_solver.prototxt"
    return copy, list(probes.values())


def read_probe(trace: Trace, outputs: list[ProbeOutput]) -> list[dict]:
    """The first iteration each probed top was non-finite (train outputs, test outputs, debug lines)."""
    by_output = {o.output: o for o in outputs}
    hits: dict[tuple[str, str, str], dict] = {}

    def hit(o: ProbeOutput, phase: str, iteration: int | None, value: float, line: int) -> None:
        key = (o.layer, o.top, phase)
        if key not in hits:
            hits[key] = {"layer": o.layer, "top": o.top, "layer_type": o.layer_type, "phase": phase,
                         "iteration": iteration, "value": str(value), "line": line}  # fmt: skip

    for p in trace.train:
        for v in p.outputs:
            o = by_output.get(v.name)
            if o is not None and v.value is not None and not math.isfinite(v.value):
                hit(o, "train", p.iteration, v.value, v.line)
    for t in trace.tests:
        for v in t.outputs:
            o = by_output.get(v.name)
            if o is not None and v.value is not None and not math.isfinite(v.value):
                hit(o, "test", t.iteration, v.value, v.line)
    tops = {(o.layer, o.top): o for o in outputs}
    for seg in trace.segments:
        for r in seg.debug:
            o = tops.get((r.layer, r.blob))
            if o is not None and r.direction == "forward" and not math.isfinite(r.value):
                hit(o, r.phase, r.iteration, r.value, r.line)
    return sorted(hits.values(), key=lambda h: (h["iteration"] is None, h["iteration"] or 0, h["line"]))
