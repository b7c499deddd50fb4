"""The scan's shortcuts (numpy candidates, fast regex alternatives) find exactly what the plain regex passes find.

Each shortcut is compared with the straightforward way on text that hypothesis
assembles from glog prefixes, indentation, message keys, values and junk.
"""

from __future__ import annotations

import re

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nandoctor.log import debug_lines as D
from nandoctor.log import patterns as P
from nandoctor.log import scan as S

PREFIXES = [b"I1123 10:00:00.000001  3333 solver.cpp:239] ", b"I20261123 18:43:18.487260 12700 net.cpp:593] ",
            b"] ", b"]", b"", b"[0] ", b"> ", b"x] ", b"]\t", b"[1] ", b"] (1.0) ", b"] [0] "]  # fmt: skip
INDENTS = [b"", b" ", b"    ", b"     "]
MESSAGES = [
    *P.RARE_KEYS,
    *P.RAW_KEYS,
    b"Test net output #0: loss = 1", b"Train net output #1: acc = 0.5 (* 1 = 0.5 loss)",
    b"[Forward] Layer conv1, top blob conv1 data: 0.5", b"[Backward] Layer a, bottom blob b diff: -nan",
    b"[Forward] Layer a, param blob 0 data: 1.#QNAN", b"[Update] Layer a, param 0 data: 1; diff: 2",
    b"[Forward] Input data data: 3", b"[Backward] All net params (data, diff): L1 norm = (1, 2); L2 norm = (3, 4)",
    b"Iteration 5, lr = 0.01", b"Iteration 5 (1 iter/s, 2s/3 iters), loss = 4", b"Iteration 6, loss = nan",
    b"Iteration 7, Testing net (#1)", b"Iteration 8, step = 2", b"Iteration 9, lr = 0.1, m = 0.9",
    b"Iteration 9 (1 iter/s, e.s/3 iters), loss = 4", b"Iteration  9, lr = x", b"Iteration 10, lr =  0.5 ",
    b"Iteration 11 (1 iter/s, 2s/3 iters), loss = 4 [ 0 / 1 ]", b"Iteration 13 (1 iter/s, 2s/3 iters), loss = 1.#QNAN",
    b"Iteration 14 (1 iter/s, 2s/3 iters), loss = -nan", b"Iteration 15, lr = 1.#INF", b"Iteration 12 (1 iter/s, 2s/3 iter), loss = 5;",
    b"Top shape: 2 3 (6)", b"Top shape: (1)", b"Setting up conv1", b"Layer x", b"] Layer y",
    b"Test netto", b"Test loss: 1", b"Check failed: x", b"Creating Layer ",
    b"Creating layer conv1", b"Creating Lay", b"Creating tx", b"Solver scaffolding done.", b"Solvin", b"Opened lmdb x",
    b"Optim", b"Creating", b"Op", b"So", b"Cr",
]  # fmt: skip
SUFFIXES = [b"", b"\r", b" ", b" junk", b"] Layer z, top blob z data: 1", b": 1"]

line = st.builds(
    lambda p, i, m, s: p + i + m + s,
    st.sampled_from(PREFIXES),
    st.sampled_from(INDENTS),
    st.sampled_from(MESSAGES) | st.binary(max_size=12),
    st.sampled_from(SUFFIXES),
)
texts = st.lists(line, min_size=1, max_size=40).map(lambda ls: b"\n".join(ls)) | st.binary(max_size=300)


def _arrays(buf: bytes):
    arr = np.frombuffer(buf, dtype=np.uint8)
    return arr, np.flatnonzero(arr == 10), np.flatnonzero(arr == 93)


@settings(max_examples=300, deadline=None)
@given(texts, st.sampled_from([b"", b"\n"]))
def test_rare_candidates_find_what_finditer_finds(text, end):
    buf = text + end
    arr, newlines, brackets = _arrays(buf)
    plain = [(m.start(), m.group(1), m.group(2), m.end()) for m in P.RARE_RE.finditer(buf)]
    slow, setup = S._rare_matches(buf, arr, brackets, newlines)
    keys = dict(S._FREQUENT_KEYS)
    line_end = [buf.find(b"\n", at) for at in setup.offsets]
    fast = [(at, keys[kind], rest, len(buf) if stop < 0 else stop)
            for kind, at, rest, stop in zip(*setup, line_end, strict=True)]  # fmt: skip
    assert sorted(slow + fast) == plain
    assert not any(key in keys.values() for _, key, _, _ in slow)  # the frequent keys never reach the regex


@settings(max_examples=300, deadline=None)
@given(texts, st.sampled_from([b"", b"\n"]))
def test_raw_line_starts_find_what_finditer_finds(text, end):
    buf = text + end
    arr, newlines, _ = _arrays(buf)
    offsets, events = [], []
    S._raw_lines(buf, arr, newlines, offsets.append, events.append)
    first = buf.find(b"\n")
    plain = []
    m0 = P.RAW_RE.match(b"\n" + (buf if first < 0 else buf[:first]))
    if m0:
        plain.append((0, (S.RAW, m0.group(1), m0.group(2))))
    plain += [(m.start() + 1, (S.RAW, m.group(1), m.group(2))) for m in P.RAW_RE.finditer(buf)]
    assert list(zip(offsets, events, strict=True)) == plain


@settings(max_examples=300, deadline=None)
@given(texts)
def test_fast_iteration_shapes_read_like_the_general_path(text):
    fast_offsets, fast_events = [], []
    S._iteration_lines(text, fast_offsets.append, fast_events.append)
    general = re.compile(rb"Iteration (\d+)(\x00(?!))?(\x00(?!))?(\x00(?!))?([^\n]*)")  # fast groups never match
    old = P.ITERATION_FAST_RE
    P.ITERATION_FAST_RE = general
    try:
        offsets, events = [], []
        S._iteration_lines(text, offsets.append, events.append)
    finally:
        P.ITERATION_FAST_RE = old
    assert fast_offsets == offsets
    assert repr(fast_events) == repr(events)  # repr: nan == nan


@settings(max_examples=300, deadline=None)
@given(texts)
def test_debug_columns_match_the_plain_regex(text):
    buf = text + b"\n"
    arr, newlines, brackets = _arrays(buf)
    cols = D.debug_columns(buf, arr, newlines, brackets)
    expected = []
    for m in P.DEBUG_RE.finditer(buf):
        key = P.DEBUG_KEY_RE.fullmatch(m.group(1))
        code = D.DEBUG_CODE.get((key.group(2), key.group(4)))
        if code is not None:
            value = S.number(m.group(2))
            expected.append((buf.count(b"\n", 0, m.start()) + 1, code, key.group(1), key.group(3), repr(value)))
    got = []
    if cols is not None:
        for i in range(len(cols.lines)):
            v = cols.values[i]
            got.append((cols.lines[i], cols.codes[i], cols.names[cols.layers[i]], cols.names[cols.blobs[i]], repr(v)))
    # an unreadable value is nan in the columns (None above)
    expected = [(*e[:4], "nan" if e[4] == "None" else e[4]) for e in expected]
    assert got == expected


VALUE_TEXTS = [b"0", b"1", b"-0.5", b"1e-05", b"nan", b"-nan", b"inf", b"-inf", b"1.#QNAN", b"-1.#IND", b"x", b"3.25"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(VALUE_TEXTS) | st.binary(max_size=6), max_size=3000))
def test_floats_read_each_value_like_number_whether_values_repeat_or_not(vals):
    """Repeated texts take the one-conversion-per-distinct-text path; the result is the same."""
    got = [repr(v) for v in D.floats(vals)]
    assert got == [repr(float("nan") if (v := S.number(b)) is None else v) for b in vals]


def _read_as_events(scan: S.ChunkScan) -> tuple:
    # a dump's text runs over the lines after its header: compare only which dump it was
    events = [(e[0], e[1]) if e[0] == S.DUMP else e for e in scan.events]
    return repr(events), list(scan.event_lines), repr(scan.displays)


@settings(max_examples=300, deadline=None)
@given(texts, st.sampled_from([b"", b"\n"]))
def test_a_debug_value_line_is_read_as_nothing_else(text, end):
    """The events of a chunk are those of the same chunk with its debug value lines emptied."""
    buf = text + end
    scan = S.scan_chunk(buf, False)
    if scan.debug is None:
        return
    lines = buf.split(b"\n")
    for line in set(scan.debug.lines):
        lines[line - 1] = b""
    assert _read_as_events(scan) == _read_as_events(S.scan_chunk(b"\n".join(lines), False))


def test_a_layer_named_like_an_output_line_gives_no_output():
    buf = (
        b"I1123 10:00:00.000001  3333 solver.cpp:239] Iteration 5 (1 iter/s, 2s/3 iters), loss = 4\n"
        b"I1123 10:00:00.000001  3333 net.cpp:620]     [Forward] Layer Train net output #0: x = 5, top blob x data: 1\n"
        b"I1123 10:00:00.000001  3333 solver.cpp:258]     Train net output #0: loss = 4 (* 1 = 4 loss)\n"
    )
    scan = S.scan_chunk(buf, False)
    assert scan.displays.out[1] == ["loss"]  # the debug line's "net output #0: x = 5" is not an output
    assert list(scan.debug.lines) == [2]


def _plain_fold(events, lines):
    """The fold one event at a time, train outputs among the events (what ``_fold`` must equal)."""
    out_ev, out_ln, its, rows, out, lr_rows, lrs = (
        [],
        [],
        [],
        [],
        ([], [], [], [], [], [], []),
        [],
        ([], [], [], [], []),
    )
    open_it, lr_open, shapes = None, False, None
    for ev, line in zip(events, lines, strict=True):
        kind = ev[0]
        if open_it is not None:
            if kind == S.OUT and ev[1]:
                for col, v in zip(out, (ev[2], ev[3], ev[4], ev[5], line, ev[6], ev[7]), strict=True):
                    col.append(v)
                continue
            if kind == S.LR and lr_open and ev[1] == open_it:
                lr_rows[-1] = len(lrs[0])
                for col, v in zip(lrs, (ev[1], ev[2], ev[3], line, ev[4]), strict=True):
                    col.append(v)
                lr_open = False
                continue
            open_it = None
        elif shapes is not None:
            if kind == S.TOP:
                if ev[1] is not None:
                    shapes.append(ev[1])
                continue
            shapes = None
        if kind == S.TRAIN:
            out_ev.append((S.TRAIN, len(its)))
            out_ln.append(line)
            its.append(ev[1:])
            rows.append(len(out[0]))
            lr_rows.append(-1)
            open_it, lr_open = ev[1], True
            continue
        if kind == S.SETUP and out_ev and out_ev[-1][0] == S.LAYER and out_ev[-1][1] == ev[1]:
            shapes = []
            out_ev[-1] = (S.LAYER_SETUP, ev[1], shapes)
            continue
        out_ev.append(ev)
        out_ln.append(line)
    if not its:
        return out_ev, out_ln, None
    columns = [list(c) for c in zip(*its, strict=True)]
    return out_ev, out_ln, S.Displays(*columns, [*rows, len(out[0])], lr_rows, out, lrs)


EVENT = st.one_of(
    st.tuples(st.just(S.TRAIN), st.integers(0, 3), st.just(1.0), st.just("1"), st.none(), st.booleans()),
    st.tuples(st.just(S.OUT), st.booleans(), st.integers(0, 2), st.sampled_from(["loss", "acc"]), st.just(0.5),
              st.just("0.5"), st.none(), st.none()),
    st.tuples(st.just(S.LR), st.integers(0, 3), st.just(0.01), st.just("0.01"), st.none()),
    st.tuples(st.just(S.TOP), st.sampled_from([((1, 2), 2), None])),
    st.tuples(st.sampled_from([S.SETUP, S.LAYER]), st.sampled_from(["a", "b"])),
    st.tuples(st.just(S.RARE), st.just(b"Solving "), st.just(b"x")),
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(EVENT, max_size=40))
def test_fold_with_train_outputs_as_columns_equals_the_plain_fold(events):
    lines = list(range(1, len(events) + 1))
    is_train_out = [e[0] == S.OUT and e[1] for e in events]
    rest = [(e, line) for e, line, t in zip(events, lines, is_train_out, strict=True) if not t]
    outs = [(e, line) for e, line, t in zip(events, lines, is_train_out, strict=True) if t]
    train = S.TrainOutputs(
        [line for _, line in outs], *([e[k] for e, _ in outs] for k in (2, 3, 4, 5, 6, 7))
    )  # fmt: skip
    before = [sum(1 for o in train.offsets if o < line) for _, line in rest]
    got = S._fold([e for e, _ in rest], [line for _, line in rest], before, train, train.offsets)
    assert repr(got) == repr(_plain_fold(events, lines))
