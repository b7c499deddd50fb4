"""The debug_info analysis (numpy over whole runs) reads every run as the plain record-by-record walk does.

The walk below is the definition, kept as simple as it can be: per series (code, layer,
blob) the max |x| of each earlier iteration, the reference of a record being the median
of the positive ones among the last HISTORY of them. hypothesis builds runs of records
with repeats, zeros, jumps, nan/inf, test records, unknown (-1) iterations at the end and
a layer name spelled by two ids.
"""

from __future__ import annotations

import math
import statistics

from hypothesis import given, settings
from hypothesis import strategies as st

from nandoctor.core.types import Cause
from nandoctor.log import debug_analysis as D
from nandoctor.log.trace import DebugTable, Segment

NAMES = ["data", "conv", "loss", "fc", "a", "b", "c", "conv"]  # ids 1 and 7 spell one name
VALUES = [0.0, 0.5, 1.0, 2.0, 3.0, 1e3, 2.5e3, 1e6, -4.0, 1e-9, math.nan, math.inf, -math.inf]


class _History:
    def __init__(self):
        self.past, self.current = {}, {}

    def see(self, key, it, v):
        cur = self.current.get(key)
        if cur is not None and cur[0] != it:
            self.past.setdefault(key, []).append(cur)
            cur = None
        self.current[key] = (it, v if cur is None else max(cur[1], v))

    def reference(self, key):
        past = self.past.get(key)
        if not past:
            return None, None
        recent = [x for _, x in past[-D.HISTORY :] if x > 0 and math.isfinite(x)]
        return (statistics.median(recent) if recent else None), past[-1][0]


def _key(t, i):
    return (t.code[i], t.layer[i], t.blob[i])


def walk_scan(seg):
    t = seg.debug
    rows = [i for i in range(len(t)) if t.phase[i] == 0]
    hist, first_bad, jump, factors = _History(), None, None, {}
    for i in rows:
        it = t.iteration[i]
        if jump is not None and it != t.iteration[jump[0]]:
            break
        if not math.isfinite(t.value[i]):
            first_bad = i if first_bad is None else first_bad
            if jump is None:
                break
            factors[i] = (math.inf, math.nan)
            continue
        v = abs(t.value[i])
        hist.see(_key(t, i), it, v)
        ref, prev_it = hist.reference(_key(t, i))
        if ref is None or ref <= 0 or (jump is None and v < D.FLOOR):
            continue
        if jump is None and v / ref >= D.JUMP:
            jump = (i, v / ref, ref, prev_it)
        if jump is not None:
            factors[i] = (v / ref, ref)
    if first_bad is None:
        first_bad = next((i for i in rows if not math.isfinite(t.value[i])), None)
    return first_bad, jump, factors


def walk_own_jump(seg, layer, it):
    t = seg.debug
    hist = _History()
    for i in (i for i in range(len(t)) if t.phase[i] == 0):
        if t.iteration[i] > it:
            break
        v = abs(t.value[i])
        if not math.isfinite(v):
            continue
        hist.see(_key(t, i), t.iteration[i], v)
        if t.iteration[i] == it and t.names[t.layer[i]] == layer:
            ref, prev_it = hist.reference(_key(t, i))
            if ref and v / ref >= D.PATH_JUMP:
                return i, ref, v / ref, prev_it
    return None


def walk_matrix(seg, codes):
    t = seg.debug
    rows = [i for i in range(len(t)) if t.phase[i] == 0]
    layers, iterations, cells = {}, {}, {}
    for i in rows:
        if t.code[i] in (D.FORWARD_TOP, D.FORWARD_INPUT, D.FORWARD_PARAM):
            layers.setdefault(t.names[t.layer[i]], None)
    for i in rows:
        iterations.setdefault(t.iteration[i], None)
        if t.code[i] not in codes:
            continue
        name, it, v = t.names[t.layer[i]], t.iteration[i], abs(t.value[i])
        layers.setdefault(name, None)
        old = cells.get((name, it))
        if old is None or not math.isfinite(v) or (math.isfinite(old) and v > old):
            cells[(name, it)] = v
    names = [n for n in layers if any((n, it) in cells for it in iterations)]
    its = sorted(iterations)
    return names, its, [[cells.get((n, it)) for it in its] for n in names]


series = st.tuples(st.sampled_from([0, 1, 2, 3, 4]), st.sampled_from([0, 1, 2, 7]), st.sampled_from([4, 5, 6]))
value = st.sampled_from(VALUES) | st.floats(allow_nan=True, allow_infinity=True)


@st.composite
def segments(draw):
    """Runs in which a few series print once or twice per iteration (so they have a history), plus strays."""
    keys = draw(st.lists(series, min_size=1, max_size=3))
    recs = []
    it = 0
    for _ in range(draw(st.integers(0, 14))):
        it += draw(st.sampled_from([1, 1, 10]))
        for key in keys:
            for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2]))):
                recs.append((draw(st.sampled_from([0, 0, 0, 0, 1])), *key, draw(value), it))
        if draw(st.booleans()):
            recs.append((0, *draw(series), draw(value), it))
    recs += [(0, *draw(series), draw(value), -1) for _ in range(draw(st.integers(0, 2)))]
    t = DebugTable()
    t.names = list(NAMES)
    for k, (phase, code, layer, blob, v, iteration) in enumerate(recs):
        t.line.append(k + 1)
        t.code.append(code)
        t.layer.append(layer)
        t.blob.append(blob)
        t.value.append(v)
        t.iteration.append(iteration)
        t.phase.append(phase)
    seg = Segment(index=0, start_line=1)
    seg.debug = t
    return seg


def same(a, b) -> bool:
    return repr(a) == repr(b)  # nan == nan, and types (int vs numpy int) show


@settings(max_examples=400, deadline=None)
@given(segments())
def test_scan_finds_what_the_walk_finds(seg):
    first_bad, jump, factors = D._scan(D._Columns(seg))
    w_bad, w_jump, w_factors = walk_scan(seg)
    assert first_bad == w_bad
    assert same(jump, w_jump)
    assert same(sorted(factors.items()), sorted(w_factors.items()))


@settings(max_examples=300, deadline=None)
@given(segments(), st.sampled_from(["conv", "loss", "data"]), st.sampled_from([1, 2, 3, 11, 12, 21, 22]))
def test_own_jump_is_the_walks(seg, layer, it):
    t = seg.debug
    if not len(t):
        return
    other = D.Jump(t.record(0)._replace(layer="elsewhere", iteration=it), 1.0, 1e4, None)
    loc = D.Localization(0, layer, "forward", Cause.GRADIENT_EXPLOSION, it, jump=other)
    got = D._own_jump(seg, loc)
    want = walk_own_jump(seg, layer, it)
    if want is None:
        assert got is None
    else:
        i, ref, factor, prev = want
        assert got is not None and got.record == t.record(i)
        assert same((got.reference, got.factor, got.from_iteration), (ref, factor, prev))


@settings(max_examples=300, deadline=None)
@given(segments(), st.sampled_from(["forward", "backward", "param"]))
def test_layer_matrix_is_the_walks(seg, direction):
    codes = {"forward": (D.FORWARD_TOP, D.FORWARD_INPUT), "backward": (D.BACKWARD_BOTTOM, D.BACKWARD_PARAM),
             "param": (D.FORWARD_PARAM,)}[direction]  # fmt: skip
    assert same(D.layer_matrix(seg, direction), walk_matrix(seg, codes))
