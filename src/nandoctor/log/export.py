"""Trace exports: CSV tables in the shape of Caffe's tools/extra/parse_log.py, and JSON.

``write_csv(trace, folder) -> list[Path]`` writes ``<log>.train`` and ``<log>.test``
(columns ``NumIters, Seconds, LearningRate`` then one column per output, as
parse_log.py does, plus ``SmoothedLoss``, ``Run`` and ``Line``), ``<log>.lr.csv`` (every lr
line with NVCaffe's extras) and, for debug_info logs, ``<log>.debug.csv``. Values are
written as Caffe printed them (``-nan`` stays ``-nan``). ``Seconds`` is the time since
the start of the run, summed from the ``(x iter/s, Ys/N iters)`` part of the display
lines (empty for logs without it).

``trace_to_dict(trace, debug_limit=...)`` is the JSON form; nan/inf become strings
because JSON has no such numbers.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterator
from itertools import islice, repeat
from json.encoder import encode_basestring_ascii as _quote  # the C quoting json.dumps uses
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from nandoctor.core.safeio import OutputDir, safe_name
from nandoctor.log.columns import LrColumns, LrSeries, TrainColumns, TrainSeries
from nandoctor.log.trace import DEBUG_CODES, LogDocument, OutputValue, Segment, Trace


def _num(v: float | None) -> Any:
    if v is None:
        return None
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def _cell(v: float | None) -> str:
    if v is None:
        return ""
    return f"{v:g}" if math.isfinite(v) else str(_num(v))


def _stem(trace: Trace) -> str:
    name = Path(trace.path).name or "log"
    for suffix in (".gz", ".log", ".txt"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name or "log"


ROWS = 4096  # rows formatted per batch: the export holds a batch's texts, never a column's


def _in_range(kept: dict, lo: int, hi: int) -> Iterator[tuple[int, Any]]:
    """The items of ``kept`` (row -> value) with ``lo <= row < hi``, in time O(min(len(kept), hi - lo))."""
    if len(kept) <= hi - lo:
        return ((row, v) for row, v in kept.items() if lo <= row < hi)
    return ((row, kept[row]) for row in range(lo, hi) if row in kept)


def _series(seg: Segment) -> tuple[TrainSeries, LrSeries]:
    """The run's displays and lr lines as column views (a hand-built segment's lists copied into columns)."""
    train, lr = seg.train, seg.lr
    if not isinstance(train, TrainSeries):
        tc = TrainColumns()
        ids: dict[str, int] = {}
        for p in train:
            tc.append(p.iteration, p.line, p.loss, p.loss_text, p.seconds, p.final)
            for o in p.outputs:
                name_id = ids.setdefault(o.name, len(ids))
                if name_id == len(tc.outputs.names):
                    tc.outputs.names.append(o.name)
                tc.add_output(o.index, name_id, o.value, o.text, o.line, o.weight, o.contribution)
            if p.lr is not None:
                tc.lr.values[-1], tc.lr.none[-1] = p.lr, 0
            tc.lr_line[-1] = -1 if p.lr_line is None else p.lr_line
        train = TrainSeries(tc)
    if not isinstance(lr, LrSeries):
        lc = LrColumns()
        for q in lr:
            lc.append(q.iteration, q.value, q.text, q.line, q.extras)
        lr = LrSeries(lc)
    return train, lr


def _texts(values: np.ndarray, none: np.ndarray, odd: dict[int, str], lo: int, blank: str = "") -> list[str]:
    """Rows ``lo``.. of a column as Caffe printed them: ``format(v, "g")`` unless the text was kept (``odd``)."""
    out = list(map(format, values.tolist(), repeat("g")))
    if none.any():
        for k in np.flatnonzero(none).tolist():
            out[k] = blank
    for row, text in _in_range(odd, lo, lo + len(out)):
        out[row - lo] = text
    return out


def _cells(values: np.ndarray, none: np.ndarray) -> list[str]:
    """``_cell`` of every value: ``format(v, "g")`` (nan, inf, -inf included), empty for None."""
    out = list(map(format, values.tolist(), repeat("g")))
    if none.any():
        for k in np.flatnonzero(none).tolist():
            out[k] = ""
    return out


def _elapsed(train: TrainSeries) -> tuple[np.ndarray, np.ndarray]:
    """(seconds since the run's start at each display, whether the display had a finite time)."""
    seconds = train._floats(train.store.seconds)
    timed = np.isfinite(seconds)  # a None is a NaN
    return np.cumsum(np.where(timed, seconds, 0.0)), timed


def _train_rows(seg: Segment, train: TrainSeries, names: list[str]) -> Iterator[list]:
    store, outs = train.store, train.store.outputs
    column = {outs.names.index(n): k for k, n in enumerate(names) if n in outs.names}
    elapsed, timed = _elapsed(train)
    its, lines = train.iterations(), train.lines()
    lr = train._floats(store.lr)
    lr_none = train._none(store.lr)
    starts = np.frombuffer(store.out_start, dtype=np.int64)
    for lo in range(0, len(train), ROWS):
        hi = min(lo + ROWS, len(train))
        n = hi - lo
        secs = list(map(format, elapsed[lo:hi].tolist(), repeat("g")))
        for k in np.flatnonzero(~timed[lo:hi]).tolist():
            secs[k] = ""
        lrs = _cells(lr[lo:hi], lr_none[lo:hi])
        a, b = int(train.lo + lo), int(train.lo + hi)
        loss = _texts(store.loss.numpy()[a:b], np.zeros(n, bool), store.loss_odd, a)
        cols = [np.full(n, "", dtype=object) for _ in names]
        o_lo, o_hi = int(starts[a]), int(starts[b])
        if o_hi > o_lo:
            owner = np.repeat(np.arange(n), np.diff(starts[a : b + 1]))
            ids = np.frombuffer(outs.name, dtype=np.int32)[o_lo:o_hi]
            texts = np.array(_texts(outs.value.numpy()[o_lo:o_hi], np.zeros(o_hi - o_lo, bool), outs.odd, o_lo),
                             dtype=object)  # fmt: skip
            for name_id, k in column.items():
                pick = ids == name_id
                if pick.any():
                    cols[k][owner[pick]] = texts[pick]
        yield from zip(its[lo:hi].tolist(), secs, lrs, *(c.tolist() for c in cols), loss, repeat(seg.index),
                       lines[lo:hi].tolist())  # fmt: skip


def write_csv(trace: Trace, folder: str | Path) -> list[Path]:
    # through the folder: a symlink planted there is replaced, never written through, and the log is never replaced
    out = OutputDir(folder, [trace.path] if trace.path else [], what="CSV folder")
    stem = safe_name(_stem(trace), "log")
    written = []
    runs = [(seg, *_series(seg)) for seg in trace.segments]
    train_names = list(dict.fromkeys(n for _s, t, _l in runs for n in t.output_names()))
    test_names = list(dict.fromkeys(o.name for s in trace.segments for t in s.tests for o in t.outputs))
    path = out / f"{stem}.train"
    with out.open(path.name, newline="") as f:
        w = csv.writer(f)
        w.writerow(["NumIters", "Seconds", "LearningRate", *train_names, "SmoothedLoss", "Run", "Line"])
        for seg, train, _lr in runs:
            w.writerows(_train_rows(seg, train, train_names))
    written.append(path)
    path = out / f"{stem}.test"
    with out.open(path.name, newline="") as f:
        w = csv.writer(f)
        w.writerow(["NumIters", "Seconds", "LearningRate", *test_names, "TestNet", "Run", "Line"])
        for seg, train, lr in runs:
            if not seg.tests:
                continue
            elapsed, timed = _elapsed(train)
            time_lines, times = train.lines()[timed], elapsed[timed]
            # the lr printed at each tested iteration (the last such line), read from the columns
            wanted = {t.iteration for t in seg.tests}
            lr_its, lr_values, lr_none = lr.iterations(), lr.values(), lr.value_none()
            lr_by_iter = {}
            for k in np.flatnonzero(np.isin(lr_its, np.fromiter(wanted, dtype=np.int64))).tolist():
                lr_by_iter[int(lr_its[k])] = None if lr_none[k] else float(lr_values[k])
            # the elapsed time of the last display before each pass (by bisection: a long run has
            # a test pass every few displays, a scan per pass made the export quadratic)
            before = np.searchsorted(time_lines, np.array([t.line for t in seg.tests], dtype=np.int64)) - 1
            for t, b in zip(seg.tests, before.tolist(), strict=True):
                vals = {o.name: o.text for o in t.outputs}
                secs = float(times[b]) if b >= 0 else None
                w.writerow(
                    [
                        t.iteration,
                        "" if secs is None else f"{secs:g}",
                        _cell(lr_by_iter.get(t.iteration)),
                        *[vals.get(n, "") for n in test_names],
                        t.net_index,
                        seg.index,
                        t.line,
                    ]
                )
    written.append(path)
    path = out / f"{stem}.lr.csv"
    extras = list(dict.fromkeys(k for _s, _t, lr in runs for k in _lr_extras(lr)))
    with out.open(path.name, newline="") as f:
        w = csv.writer(f)
        w.writerow(["NumIters", "LearningRate", *extras, "Run", "Line"])
        for seg, _train, lr in runs:
            w.writerows(_lr_rows(seg, lr, extras))
    written.append(path)
    if trace.has_debug:
        path = out / f"{stem}.debug.csv"
        with out.open(path.name, newline="") as f:
            w = csv.writer(f)
            w.writerow(["NumIters", "Phase", "Direction", "Layer", "Role", "Blob", "What", "Value", "Run", "Line"])
            for seg in trace.segments:
                w.writerows(_debug_rows(seg))
        written.append(path)
    return written


def _lr_extras(lr: LrSeries) -> Iterator[str]:
    for row, extras in lr.store.extras.items():
        if lr.lo <= row < lr.hi:
            yield from extras


def _lr_rows(seg: Segment, lr: LrSeries, extras: list[str]) -> Iterator[list]:
    store = lr.store
    its, lines = lr.iterations(), lr.lines()
    for lo in range(0, len(lr), ROWS):
        hi = min(lo + ROWS, len(lr))
        a, b = lr.lo + lo, lr.lo + hi
        texts = _texts(store.value.numpy()[a:b], np.zeros(hi - lo, bool), store.odd, a)
        more = [[""] * (hi - lo) for _ in extras]
        for row, ex in _in_range(store.extras, a, b):
            for k, key in enumerate(extras):
                more[k][row - a] = _cell(ex.get(key))
        yield from zip(its[lo:hi].tolist(), texts, *more, repeat(seg.index), lines[lo:hi].tolist())


def _debug_rows(seg: Segment) -> Iterator[tuple]:
    """The run's debug_info records as CSV rows, column by column (a debug log holds millions)."""
    t = seg.debug
    direction, role, what = (tuple(c[k] for c in DEBUG_CODES) for k in range(3))
    return zip(
        ["" if it < 0 else it for it in t.iteration],
        map(("train", "test").__getitem__, t.phase),
        map(direction.__getitem__, t.code),
        map(t.names.__getitem__, t.layer),
        map(role.__getitem__, t.code),
        map(t.names.__getitem__, t.blob),
        map(what.__getitem__, t.code),
        map(_cell, t.value),
        repeat(seg.index),
        t.line,
    )


def _output(o: OutputValue) -> dict[str, Any]:
    d: dict[str, Any] = {"index": o.index, "name": o.name, "value": _num(o.value), "text": o.text, "line": o.line}
    if o.weight is not None:
        d["weight"] = _num(o.weight)
        d["contribution"] = _num(o.contribution)
    return d


def _doc(doc: LogDocument | None) -> dict[str, Any] | None:
    if doc is None:
        return None
    return {
        "kind": doc.kind,
        "role": doc.role,
        "source": doc.source,
        "header_line": doc.header_line,
        "start_line": doc.start_line,
        "error": doc.error,
        "text": doc.text,
    }


def _tests(seg: Segment) -> Iterator[dict[str, Any]]:
    for t in seg.tests:
        yield {
            "iteration": t.iteration,
            "net_index": t.net_index,
            "line": t.line,
            "loss": _num(t.loss),
            "interrupted": t.interrupted,
            "outputs": [_output(o) for o in t.outputs],
        }


def _records(seg: Segment, debug_limit: int) -> Iterator[dict[str, Any]]:
    for r, _ in zip(seg.debug, range(debug_limit), strict=False):
        yield {**r._asdict(), "value": _num(r.value)}


def segment_to_dict(seg: Segment, debug_limit: int, series: bool = True) -> dict[str, Any]:
    """The run as JSON-ready values (``series=False``: without its displays and lr lines, which
    ``write_trace_json`` streams from the columns)."""
    debug_n = len(seg.debug)
    return {
        "index": seg.index,
        "start_line": seg.start_line,
        "end_line": seg.end_line,
        "info": seg.info,
        "solver": _doc(seg.solver),
        "nets": [_doc(n) for n in seg.nets],
        "train": [
            {
                "iteration": p.iteration,
                "line": p.line,
                "loss": _num(p.loss),
                "loss_text": p.loss_text,
                "seconds": _num(p.seconds),
                "final": p.final,
                "lr": _num(p.lr),
                "lr_line": p.lr_line,
                "outputs": [_output(o) for o in p.outputs],
            }
            for p in (seg.train if series else ())
        ],
        "lr": [
            {
                "iteration": p.iteration,
                "value": _num(p.value),
                "text": p.text,
                "line": p.line,
                "extras": {k: _num(v) for k, v in p.extras.items()},
            }
            for p in (seg.lr if series else ())
        ],
        "tests": list(_tests(seg)) if series else _TESTS_SLOT,
        "clips": [
            {
                "iteration": c.iteration,
                "norm": _num(c.norm),
                "threshold": _num(c.threshold),
                "factor": _num(c.factor),
                "line": c.line,
            }
            for c in seg.clips
        ],
        "multistep": [{"iteration": m.iteration, "step": m.step, "line": m.line} for m in seg.multistep],
        "snapshots": [
            {"path": s.path, "kind": s.kind, "iteration": s.iteration, "line": s.line} for s in seg.snapshots
        ],
        "layers": [
            {
                "name": ly.name,
                "line": ly.line,
                "net_index": ly.net_index,
                "top_shapes": [list(d) for d, _ in ly.top_shapes],
                "loss_weights": ly.loss_weights,
            }
            for ly in seg.layers
        ],
        "crashes": [{"kind": c.kind, "message": c.message, "line": c.line} for c in seg.crashes],
        "debug": {
            "count": debug_n,
            "truncated": debug_n > debug_limit,
            "records": list(_records(seg, debug_limit)) if series else _RECORDS_SLOT,
            "summaries": [
                {
                    "line": s[0],
                    "iteration": s[1],
                    "l1_data": _num(s[2]),
                    "l1_diff": _num(s[3]),
                    "l2_data": _num(s[4]),
                    "l2_diff": _num(s[5]),
                }
                for s in seg.debug.summaries
            ],
        },
    }


def trace_to_dict(trace: Trace, debug_limit: int = 100_000) -> dict[str, Any]:
    return {
        "path": trace.path,
        "stats": dict(trace.stats),
        "segments": [segment_to_dict(s, debug_limit) for s in trace.segments],
    }


_TRAIN_SLOT = "\x00train\x00"
_LR_SLOT = "\x00lr\x00"
_TESTS_SLOT = "\x00tests\x00"
_RECORDS_SLOT = "\x00records\x00"


def _json_numbers(values: np.ndarray, none: np.ndarray) -> list[str]:
    """Each value as ``json.dumps(_num(v))`` prints it: repr, "nan"/"inf"/"-inf" as strings, null for None."""
    out = list(map(float.__repr__, values.tolist()))
    for k in np.flatnonzero(~np.isfinite(values)).tolist():
        v = values[k]
        out[k] = "null" if none[k] else ('"nan"' if v != v else ('"inf"' if v > 0 else '"-inf"'))
    return out


def _json_texts(values: np.ndarray, odd: dict[int, str], lo: int) -> list[str]:
    return list(map(_quote, _texts(values, np.zeros(len(values), bool), odd, lo)))


def _json_outputs(outs, lo: int, hi: int) -> list[str]:
    """Output rows ``lo``..``hi`` as the indented JSON objects of a display's ``outputs`` list."""
    index = np.frombuffer(outs.index, dtype=np.int32)[lo:hi].tolist()
    names = [_quote(n) for n in outs.names]
    name = [names[i] for i in np.frombuffer(outs.name, dtype=np.int32)[lo:hi].tolist()]
    values = outs.value.numpy()[lo:hi]
    value = _json_numbers(values, outs.value.none_mask()[lo:hi])
    text = _json_texts(values, outs.odd, lo)
    line = np.frombuffer(outs.line, dtype=np.int64)[lo:hi].tolist()
    weight_none = outs.weight.none_mask()[lo:hi]
    weight = _json_numbers(outs.weight.numpy()[lo:hi], weight_none)
    contribution = _json_numbers(outs.contribution.numpy()[lo:hi], outs.contribution.none_mask()[lo:hi])
    out = [
        f'{{\n       "index": {i},\n       "name": {n},\n       "value": {v},\n       "text": {t},\n       "line": {ln}'
        for i, n, v, t, ln in zip(index, name, value, text, line, strict=True)
    ]
    for k in np.flatnonzero(~weight_none).tolist():
        out[k] += f',\n       "weight": {weight[k]},\n       "contribution": {contribution[k]}'
    return [o + "\n      }" for o in out]


def _json_train(train: TrainSeries, out: TextIO) -> None:
    """The run's ``train`` list as ``nested(segment_to_dict(...)["train"], 3)`` prints it, a batch at a time."""
    store = train.store
    starts = np.frombuffer(store.out_start, dtype=np.int64)
    for lo in range(train.lo, train.hi, ROWS):
        hi = min(lo + ROWS, train.hi)
        its = np.frombuffer(store.iteration, dtype=np.int64)[lo:hi].tolist()
        lines = np.frombuffer(store.line, dtype=np.int64)[lo:hi].tolist()
        losses = store.loss.numpy()[lo:hi]
        loss = _json_numbers(losses, store.loss.none_mask()[lo:hi])
        loss_text = _json_texts(losses, store.loss_odd, lo)
        seconds = _json_numbers(store.seconds.numpy()[lo:hi], store.seconds.none_mask()[lo:hi])
        final = ["true" if f else "false" for f in store.final[lo:hi]]
        lr = _json_numbers(store.lr.numpy()[lo:hi], store.lr.none_mask()[lo:hi])
        lr_line = [str(x) if x >= 0 else "null" for x in np.frombuffer(store.lr_line, dtype=np.int64)[lo:hi].tolist()]
        o_lo, o_hi = int(starts[lo]), int(starts[hi])
        objects = _json_outputs(store.outputs, o_lo, o_hi)
        bounds = (starts[lo : hi + 1] - o_lo).tolist()
        parts = []
        for k, (i, ln, ls, lt, sc, fi, r, rl) in enumerate(
            zip(its, lines, loss, loss_text, seconds, final, lr, lr_line, strict=True)
        ):
            a, b = bounds[k], bounds[k + 1]
            outputs = "[\n      " + ",\n      ".join(objects[a:b]) + "\n     ]" if b > a else "[]"
            parts.append(
                f'{{\n     "iteration": {i},\n     "line": {ln},\n     "loss": {ls},\n     "loss_text": {lt},\n'
                f'     "seconds": {sc},\n     "final": {fi},\n     "lr": {r},\n     "lr_line": {rl},\n'
                f'     "outputs": {outputs}\n    }}'
            )
        out.write(("" if lo == train.lo else ",\n    ") + ",\n    ".join(parts))


def _json_lr(lr: LrSeries, out: TextIO) -> None:
    store = lr.store
    for lo in range(lr.lo, lr.hi, ROWS):
        hi = min(lo + ROWS, lr.hi)
        its = np.frombuffer(store.iteration, dtype=np.int64)[lo:hi].tolist()
        values = store.value.numpy()[lo:hi]
        value = _json_numbers(values, store.value.none_mask()[lo:hi])
        text = _json_texts(values, store.odd, lo)
        lines = np.frombuffer(store.line, dtype=np.int64)[lo:hi].tolist()
        extras = ["{}"] * (hi - lo)
        for row, ex in _in_range(store.extras, lo, hi):
            if ex:
                extras[row - lo] = _nested({k: _num(v) for k, v in ex.items()}, 5)
        parts = [
            f'{{\n     "iteration": {i},\n     "value": {v},\n     "text": {t},\n     "line": {ln},\n'
            f'     "extras": {e}\n    }}'
            for i, v, t, ln, e in zip(its, value, text, lines, extras, strict=True)
        ]
        out.write(("" if lo == lr.lo else ",\n    ") + ",\n    ".join(parts))


def _nested(value: Any, depth: int) -> str:
    return json.dumps(value, indent=1).replace("\n", "\n" + " " * depth)


def _json_items(items: Iterator[dict[str, Any]], depth: int) -> Callable[[Any, TextIO], None]:
    """A writer of the list items as ``nested(item, depth)`` each, a batch at a time."""

    def write(_series: Any, out: TextIO) -> None:
        sep = ",\n" + " " * depth
        first = True
        while batch := list(islice(items, 1024)):
            out.write(("" if first else sep) + sep.join(_nested(d, depth) for d in batch))
            first = False

    return write


def _write_segment(seg: Segment, out: TextIO, debug_limit: int) -> None:
    """``nested(segment_to_dict(seg, debug_limit), 2)``, its long lists streamed (displays and lr lines
    from the columns, test passes and debug records a batch at a time)."""
    train, lr = _series(seg)
    skeleton = segment_to_dict(seg, debug_limit, series=False)
    skeleton["train"], skeleton["lr"] = _TRAIN_SLOT, _LR_SLOT
    text = _nested(skeleton, 2)
    debug_n = min(len(seg.debug), debug_limit)
    # (slot, series or count, writer, indentation of the list's items), in the order of the keys
    slots = [
        (_TRAIN_SLOT, len(train), lambda _s, o: _json_train(train, o), 4),
        (_LR_SLOT, len(lr), lambda _s, o: _json_lr(lr, o), 4),
        (_TESTS_SLOT, len(seg.tests), _json_items(_tests(seg), 4), 4),
        (_RECORDS_SLOT, debug_n, _json_items(_records(seg, debug_limit), 5), 5),
    ]
    for slot, n, write, depth in slots:
        head, text = text.split(json.dumps(slot), 1)
        out.write(head)
        if n:
            out.write("[\n" + " " * depth)
            write(None, out)
            out.write("\n" + " " * (depth - 1) + "]")
        else:
            out.write("[]")
    out.write(text)


def write_trace_json(trace: Trace, out: TextIO, debug_limit: int = 100_000, **more: Any) -> None:
    """``trace_to_dict`` (plus the ``more`` keys) as ``json.dumps(..., indent=1)`` would print it, streamed.

    The whole dict of a 1 GB log, and the one string json.dumps makes of it, took 21 GB.
    A run's displays and lr lines (nearly all of a long run) are formatted from the
    columns a batch at a time (numbers as ``repr`` in bulk, in the text json.dumps
    prints); the rest of a run is small and goes through ``json.dumps``, every line
    indented to its depth (JSON strings hold no newline).
    """
    out.write(f'{{\n "path": {json.dumps(trace.path)},\n "stats": {_nested(dict(trace.stats), 1)},\n "segments": [')
    for k, seg in enumerate(trace.segments):
        out.write(("," if k else "") + "\n  ")
        _write_segment(seg, out, debug_limit)
    out.write("\n ]" if trace.segments else "]")
    for key, value in more.items():
        out.write(f",\n {json.dumps(key)}: {_nested(value, 1)}")
    out.write("\n}\n")
