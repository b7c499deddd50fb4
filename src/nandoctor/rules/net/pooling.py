"""Pooling geometry rules: empty windows (NaN / -FLT_MAX), skipped inputs, rejected geometry."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from nandoctor.config.edits import insert_field_edit, replace_edit
from nandoctor.config.net import Layer, Net
from nandoctor.config.pooling import PoolGeometry, PoolParams, pool_geometry
from nandoctor.config.textformat import Message, Scalar
from nandoctor.core.registry import Rule, register
from nandoctor.core.types import Bearing, Cause, Edit, Evidence, Finding, Fix, Severity
from nandoctor.rules.net.common import (
    edited_layer,
    field_evidence,
    field_of,
    location_of,
    nets_of,
    phases_text,
    variants,
)


@dataclass
class PoolingCase:
    """One pooling layer on one input size, with the phases where it runs on that size."""

    layer: Layer
    params: PoolParams
    height: int | None
    width: int | None
    blob: str
    phases: list[str] = field(default_factory=list)
    geometry: PoolGeometry | None = None


def pooling_cases(facts, net: Net) -> Iterator[PoolingCase]:
    """Every (pooling layer, input size) pair over the net's phase variants."""
    cases: dict[tuple, PoolingCase] = {}
    for variant in variants(facts, net):
        for layer in variant.of_type("Pooling"):
            if not layer.bottoms:
                continue
            shape = variant.shapes.bottom_shapes(layer)[0]
            h = w = None
            if shape is not None and len(shape) == 4:
                h, w = shape[2], shape[3]
            key = (layer.index, h, w)
            case = cases.get(key)
            if case is None:
                params = PoolParams.from_message(layer.param("pooling_param"))
                case = cases[key] = PoolingCase(layer, params, h, w, layer.bottoms[0])
                if h is not None and w is not None:
                    case.geometry = pool_geometry(params, h, w)
            case.phases.append(variant.label)
    yield from cases.values()


def _geometry_text(p: PoolParams) -> str:
    kh, kw, sh, sw, ph, pw = p.resolved()
    parts = [f"kernel {kh}" if kh == kw else f"kernel {kh}x{kw}", f"stride {sh}" if sh == sw else f"stride {sh}x{sw}"]
    if ph or pw:
        parts.append(f"pad {ph}" if ph == pw else f"pad {ph}x{pw}")
    if p.round_mode != "CEIL":
        parts.append(f"round_mode {p.round_mode}")
    return ", ".join(parts)


def _param_evidence(layer: Layer) -> list[Evidence]:
    msg = layer.param("pooling_param")
    out = []
    for name in (
        "pool",
        "kernel_size",
        "kernel_h",
        "kernel_w",
        "stride",
        "stride_h",
        "stride_w",
        "pad",
        "pad_h",
        "pad_w",
        "round_mode",
    ):
        f = field_of(msg, name)
        if f is not None:
            out.append(field_evidence(layer, f))
    return out


# --- fixes ------------------------------------------------------------------------------------


@dataclass
class Candidate:
    description: str
    edits: list[Edit]
    keeps_output: bool = False


def _scalar(msg: Message | None, name: str) -> Scalar | None:
    f = field_of(msg, name)
    return f.value if f is not None and isinstance(f.value, Scalar) else None


def _candidates(net: Net, case: PoolingCase) -> list[Candidate]:
    layer, p = case.layer, case.params
    msg = layer.param("pooling_param")
    if msg is None:
        return []
    path = layer.path
    kh, kw, sh, sw, _, _ = p.resolved()
    out: list[Candidate] = []
    # kernel_size := stride: consecutive windows then tile the input, the last one starts inside it.
    if p.kernel_size is not None and sh == sw and (ks := _scalar(msg, "kernel_size")) is not None:
        out.append(Candidate(f"set kernel_size to the stride ({sh})", [replace_edit(path, ks, str(sh))]))
    elif p.kernel_size is None:
        edits = [
            replace_edit(path, s, str(v)) for n, v in (("kernel_h", sh), ("kernel_w", sw)) if (s := _scalar(msg, n))
        ]
        if edits:
            out.append(Candidate(f"set kernel_h/kernel_w to the stride ({sh}/{sw})", edits))
    # a different stride: the nearest one that leaves no empty window
    if (st := _scalar(msg, "stride")) is not None and p.stride_h is None:
        for delta in range(1, min(sh, 64) + 1):  # a nearby stride; huge strides are not worth searching
            for new in (sh - delta, sh + delta):
                if new >= 1 and _clean(case, PoolParams(**{**_fields(p), "stride": new})):
                    out.append(Candidate(f"use stride {new}", [replace_edit(path, st, str(new))]))
                    break
            else:
                continue
            break
    # pad 1: Caffe's padding correction guarantees every window starts inside image + pad
    if min(kh or 0, kw or 0) >= 2:  # Caffe needs pad < kernel
        if p.pad_h is not None:
            edits = [replace_edit(path, s, "1") for n in ("pad_h", "pad_w") if (s := _scalar(msg, n)) and s.value == 0]
        elif (pad := _scalar(msg, "pad")) is not None:
            edits = [replace_edit(path, pad, "1")]
        else:
            target = layer.edit_target("pooling_param")
            edit = insert_field_edit(net.doc, target, "pad: 1") if target is not None else None
            edits = [edit] if edit else []
        if edits:
            out.append(Candidate("add pad: 1", edits))
    # round_mode FLOOR drops the last, partial window (BVLC master after March 2018; not in Caffe 1.0)
    if layer.version != "v0":
        if (rm := _scalar(msg, "round_mode")) is not None:
            edits = [replace_edit(path, rm, "FLOOR")]
        else:
            edit = insert_field_edit(net.doc, layer.edit_target("pooling_param") or msg, "round_mode: FLOOR")
            edits = [edit] if edit else []
        if edits:
            out.append(Candidate("set round_mode: FLOOR (needs a Caffe newer than 1.0)", edits))
    return out


def _fields(p: PoolParams) -> dict:
    return {k: getattr(p, k) for k in PoolParams.__dataclass_fields__}


def _clean(case: PoolingCase, params: PoolParams) -> bool:
    if case.height is None or case.width is None:
        return False
    geo = pool_geometry(params, case.height, case.width)
    return geo.ok and not geo.has_empty_window


def verified_fix(net: Net, case: PoolingCase, sizes: list[tuple[int, int]]) -> tuple[Fix | None, list[str]]:
    """The best candidate whose edited file, re-parsed and recomputed, has no empty window on ``sizes``."""
    good: list[Candidate] = []
    for cand in _candidates(net, case):
        layer = edited_layer(net.doc, case.layer, cand.edits)
        if layer is None:
            continue
        params = PoolParams.from_message(layer.param("pooling_param"))
        geos = [pool_geometry(params, h, w) for h, w in sizes]
        if not all(g.ok and not g.has_empty_window for g in geos):
            continue
        old, new = case.geometry, geos[sizes.index((case.height, case.width))]
        cand.keeps_output = old is not None and (new.out_h, new.out_w) == (old.out_h, old.out_w)
        good.append(cand)
    if not good:
        return None, []
    good.sort(key=lambda c: not c.keeps_output)  # stable: preference order within each group
    best = good[0]
    size_note = (
        "keeps the output size" if best.keeps_output else "changes the output size (layers after it change shape)"
    )
    alternatives = [c.description for c in good[1:]]
    text = f"In layer '{case.layer.name}', {best.description}; this {size_note} and leaves no empty window"
    if alternatives:
        text += "; alternatives: " + "; ".join(alternatives)
    return Fix(text + ".", tuple(best.edits), safe=best.keeps_output), [c.description for c in good]


def _cell_text(geo: PoolGeometry, ph: int, pw: int) -> str:
    assert geo.h is not None and geo.w is not None
    rows = geo.h.window(ph)
    cols = geo.w.window(pw)
    return f"cell ({ph}, {pw}) reads rows [{rows[0]}, {rows[1]}) x columns [{cols[0]}, {cols[1]}) of the {geo.height}x{geo.width} input"


@register
class EmptyPoolingWindow(Rule):
    """
    ## What it detects
    A Pooling layer whose last window, computed exactly as Caffe's PoolingLayer does for the
    input size the layer receives, lies entirely outside the input. This happens only with
    stride > kernel, no padding and CEIL rounding (Caffe's default), when the last window
    starts at or beyond the input edge.

    ## Why it leads to NaN
    AVE pooling divides the (empty) window sum by its size: a window starting exactly at the
    edge has size 0 and gives 0/0 = NaN from the first forward pass; one starting beyond the
    edge has a negative size and silently outputs 0. MAX pooling leaves such a cell at
    -FLT_MAX (-3.4e38), which overflows the next layer, and the CPU backward writes its
    gradient through index -1 (memory corruption).

    ## How to fix
    Make consecutive windows touch (kernel_size >= stride), pick a stride whose windows end
    inside the input, add `pad: 1` (Caffe then drops a last window that would start in the
    padding), or use `round_mode: FLOOR` (Caffe newer than 1.0). The fix offered is recomputed
    on the edited file and prefers a change that keeps the output size.

    ## Example
    A 25x25 input with `pooling_param { pool: AVE kernel_size: 3 stride: 5 }` gives a 6x6
    output whose last row and column start at 25: 11 NaN cells per channel. On 26x26 the last
    window is [25, 28), which still covers row 25, so there is no NaN.
    """

    code = "NAN101"
    title = "Pooling window lies outside the input (NaN / -FLT_MAX output)"
    cause = Cause.POOLING
    bears = Bearing.PREDICTION
    severity = Severity.ERROR
    needs = ("net",)

    def check(self, facts) -> Iterator[Finding]:
        for net in nets_of(facts):
            cases = [c for c in pooling_cases(facts, net) if c.geometry is not None and c.geometry.has_empty_window]
            sizes_by_layer: dict[int, list[tuple[int, int]]] = {}
            for c in cases:
                sizes_by_layer.setdefault(c.layer.index, []).append((c.height, c.width))
            for case in cases:
                yield self._finding(net, case, sizes_by_layer[case.layer.index])

    def _finding(self, net: Net, case: PoolingCase, sizes: list[tuple[int, int]]) -> Finding:
        geo = case.geometry
        assert geo is not None and geo.h is not None and geo.w is not None
        layer, p = case.layer, case.params
        counts = geo.counts()
        total = geo.h.out * geo.w.out
        kind = "nan" if counts["nan"] else ("neg_flt_max" if counts["neg_flt_max"] else "zero")
        first = geo.first_cell(kind)
        assert first is not None
        if counts["nan"]:
            severity, effect = Severity.ERROR, f"{counts['nan']} of {total} output cells per channel are 0/0 = NaN"
        elif counts["neg_flt_max"]:
            severity = Severity.ERROR
            effect = (f"{counts['neg_flt_max']} of {total} output cells per channel stay at -FLT_MAX (-3.40282e+38) "
                      "and the CPU backward writes through index -1")  # fmt: skip
        else:
            severity = Severity.WARNING
            effect = f"{counts['zero']} of {total} output cells per channel divide an empty sum by a negative size and are silently 0"
        where = _cell_text(geo, first.ph, first.pw)
        divisor = f" (divisor {first.divisor})" if first.divisor is not None else ""
        message = (
            f"Pooling '{layer.name}' ({p.pool}, {_geometry_text(p)}) on its {geo.height}x{geo.width} input "
            f"'{case.blob}' gives a {geo.h.out}x{geo.w.out} output with empty windows: {effect}; e.g. output {where}{divisor} "
            f"[{phases_text(case.phases)}]"
        )
        fix, options = verified_fix(net, case, sizes)
        stride_field = field_of(layer.param("pooling_param"), "stride")
        evidence = _param_evidence(layer)
        evidence.append(
            Evidence(f"input '{case.blob}' is {geo.height}x{geo.width} (H x W) in {phases_text(case.phases)}")
        )
        evidence.append(Evidence(f"output {geo.h.out}x{geo.w.out}; {where}{divisor}"))
        return self.finding(
            message,
            location_of(layer, stride_field),
            severity=severity,
            evidence=evidence,
            fix=fix,
            culprit=layer.name,
            data={
                "layer": layer.name, "pool": p.pool, "input_hw": [geo.height, geo.width],
                "output_hw": [geo.h.out, geo.w.out], "first_cell": [first.ph, first.pw], "counts": counts,
                "phases": list(dict.fromkeys(case.phases)), "fix_options": options,
                "axes": {name: {"size": a.size, "kernel": a.kernel, "stride": a.stride, "pad": a.pad, "out": a.out}
                         for name, a in (("h", geo.h), ("w", geo.w))},
            },
        )  # fmt: skip


def _empty_sizes(p: PoolParams, kernel: int, stride: int, near: int | None) -> list[int]:
    """Square input sizes that give an empty window: two periods around ``near`` (or from the kernel up)."""
    sizes = []
    low = max(kernel, near - stride) if near is not None else kernel
    for n in range(low, low + 2 * stride + 1):
        geo = pool_geometry(p, n, n)
        if geo.ok and geo.has_empty_window:
            sizes.append(n)
    return sizes


def _kernel_fix(layer: Layer, p: PoolParams) -> Fix:
    """kernel_size := stride, so consecutive windows touch (changes the pooled values, not the size rule)."""
    msg = layer.param("pooling_param")
    _, _, sh, sw, _, _ = p.resolved()
    edits: tuple[Edit, ...] = ()
    if p.kernel_size is not None and sh == sw and (ks := _scalar(msg, "kernel_size")) is not None:
        edits = (replace_edit(layer.path, ks, str(sh)),)
    return Fix(
        f"Use kernel_size >= stride ({sh}) in '{layer.name}' unless skipping inputs is intended.", edits, safe=False
    )


@register
class PoolingSkipsInputs(Rule):
    """
    ## What it detects
    A Pooling layer with stride larger than its kernel where no window is empty for the input
    size it gets (or the input size is unknown). Rows/columns between windows are never read.

    ## Why it leads to NaN
    It does not by itself: the output is finite. But the same geometry gives empty windows
    (NaN for AVE, -FLT_MAX for MAX) as soon as the input size changes to one of the sizes
    listed, e.g. after a crop or resize change. Skipped inputs also receive no gradient.

    ## How to fix
    Use kernel_size >= stride unless skipping inputs is intended; if the input size can
    change, check the sizes listed in the message.

    ## Example
    `pooling_param { pool: AVE kernel_size: 3 stride: 5 }` on 26x26: the last window [25, 28)
    still covers row 25 (no NaN), but 2 of every 5 rows are skipped; on 25x25 it would be NaN.
    """

    code = "NAN102"
    title = "Pooling stride larger than kernel (inputs skipped)"
    cause = Cause.POOLING
    bears = Bearing.PREDICTION
    severity = Severity.INFO
    needs = ("net",)

    def check(self, facts) -> Iterator[Finding]:
        for net in nets_of(facts):
            cases = list(pooling_cases(facts, net))
            sized = {c.layer.index for c in cases if c.geometry is not None}
            for case in cases:
                p = case.params
                if p.global_pooling or (case.geometry is None and case.layer.index in sized):
                    continue
                kh, kw, sh, sw, _, _ = p.resolved()
                if kh is None or kw is None or not (sh > kh or sw > kw):
                    continue
                geo = case.geometry
                if geo is not None and (not geo.ok or geo.has_empty_window):
                    continue  # NAN101 / NAN103 report it
                layer = case.layer
                skipped = f"{sh - kh} of every {sh} rows" if sh > kh else f"{sw - kw} of every {sw} columns"
                if geo is not None:
                    context = f"on its {geo.height}x{geo.width} input no window is empty, but {skipped} are never read"
                else:
                    context = f"the input size of '{case.blob}' is unknown here (give --input-shape or a log); {skipped} are never read"
                risky = _empty_sizes(p, kh, sh, case.height) if kh == kw and sh == sw and sh <= 64 else []
                if risky:
                    residues = sorted({n % sh for n in risky})
                    context += (
                        f"; inputs of size n with n mod {sh} in {{{', '.join(map(str, residues))}}} "
                        f"(e.g. {', '.join(map(str, risky[:4]))}) would get empty windows"
                    )
                yield self.finding(
                    f"Pooling '{layer.name}' ({p.pool}, {_geometry_text(p)}) has stride > kernel: {context} "
                    f"[{phases_text(case.phases)}]",
                    location_of(layer, field_of(layer.param("pooling_param"), "stride")),
                    evidence=_param_evidence(layer),
                    fix=_kernel_fix(layer, p),
                    culprit=layer.name,
                    data={"layer": layer.name, "risky_sizes": risky},
                )


@register
class PoolingRejectedByCaffe(Rule):
    """
    ## What it detects
    A pooling geometry Caffe refuses for the input it receives: pad >= kernel, both
    `kernel_size` and `kernel_h`/`kernel_w`, global pooling with a kernel, stride or pad,
    padding with STOCHASTIC pooling, or an output size of zero or less.

    ## Why it leads to NaN
    It does not reach NaN: Caffe aborts with a CHECK failure while setting the net up (or on
    the first forward pass for a 0-sized output). The message is Caffe's own.

    ## How to fix
    Follow the CHECK message: keep pad < kernel, give the kernel size one way, make the
    kernel fit the (padded) input.

    ## Example
    `pooling_param { kernel_size: 2 pad: 2 }` fails with
    `pooling_layer.cpp:74] Check failed: pad_h_ < kernel_h_ (2 vs. 2)`.
    """

    code = "NAN103"
    title = "Caffe rejects this pooling geometry"
    cause = Cause.POOLING
    bears = Bearing.PREDICTION
    severity = Severity.ERROR
    needs = ("net",)

    def check(self, facts) -> Iterator[Finding]:
        for net in nets_of(facts):
            for case in pooling_cases(facts, net):
                geo = case.geometry
                if geo is None:
                    # setup checks that do not depend on the input size still apply
                    geo = pool_geometry(case.params, 1 << 10, 1 << 10)
                    if geo.status != "rejected_setup" or geo.error is None or geo.error.startswith("blob.cpp"):
                        continue
                if geo is None or geo.ok:
                    continue
                layer = case.layer
                when = "at setup" if geo.status == "rejected_setup" else "in the first forward pass (0-sized output)"
                size = f" on its {case.height}x{case.width} input" if case.height is not None else ""
                yield self.finding(
                    f"Caffe aborts {when} for Pooling '{layer.name}' ({_geometry_text(case.params)}){size}: {geo.error} "
                    f"[{phases_text(case.phases)}]",
                    location_of(layer, None),
                    evidence=_param_evidence(layer),
                    fix=Fix(
                        f"Change the geometry of '{layer.name}' so Caffe's check holds: {geo.error.split('] ', 1)[-1]}"
                    ),
                    culprit=layer.name,
                )
