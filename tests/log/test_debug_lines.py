"""debug_info lines: the numpy path reads exactly what the regex path reads, and really answers on clean text."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nandoctor.log import debug_lines as D

PREFIXES = [b"I20261123 18:43:18.487260 12700 net.cpp:593]     ", b"I1123 10:00:00.000001  3333 net.cpp:620] ", b"] "]
DIRECTIONS = [b"[Forward] Layer ", b"[Backward] Layer "]
LAYERS = [b"conv1", b"res2a_branch2a", b"a: b", b"x y", b"", b"ip1", b"loss", b"a, top blob q data"]
ROLES = [b"top", b"bottom", b"param", b"t", b"other"]
BLOBS = [b"conv1", b"0", b"1", b"a:b", b"data", b""]
WHATS = [b"data", b"diff", b"dx", b"d"]
CLEAN_VALUES = st.floats(allow_nan=True, allow_infinity=True).map(lambda v: f"{v:g}".encode())
ODD_VALUES = st.sampled_from([b"-nan", b"1.#QNAN", b"nan(ind)", b"1_0", b"0x10", b"", b" 1", b"1 2", b"1-2", b"1:2"])
SUFFIXES = [b"", b"\r", b" ", b" junk", b" 1", b"] Layer z, top blob z data: 1"]


def debug_line(
    layers=LAYERS, roles=ROLES, blobs=BLOBS, whats=WHATS, values=CLEAN_VALUES | ODD_VALUES, suffixes=SUFFIXES
):
    return st.builds(
        lambda p, d, layer, role, blob, what, v, s: p + d + layer + b", " + role + b" blob " + blob + b" " + what
        + b": " + v + s,
        st.sampled_from(PREFIXES), st.sampled_from(DIRECTIONS), st.sampled_from(layers), st.sampled_from(roles),
        st.sampled_from(blobs), st.sampled_from(whats), values, st.sampled_from(suffixes),
    )  # fmt: skip


OTHER = st.sampled_from([
    b"I1123 10:00:00.000001  3333 sgd_solver.cpp:105] [Update] Layer conv1, param 0 data: 1; diff: 2",
    b"I1123 10:00:00.000001  3333 solver.cpp:239] Iteration 5 (1 iter/s, 2s/3 iters), loss = 4",
    b"I1123 10:00:00.000001  3333 net.cpp:620]     [Forward] Input data data: 3",
    b"] Layer x",
    b"",
]) | st.binary(max_size=20)  # fmt: skip


def _arrays(buf: bytes):
    arr = np.frombuffer(buf, dtype=np.uint8)
    return arr, np.flatnonzero(arr == 10), np.flatnonzero(arr == 93)


def _hits(buf: bytes):
    return np.array([i for i in range(len(buf)) if buf.startswith(b"] Layer ", i)], dtype=np.int64)


def _rows(cols):
    if cols is None:
        return None
    return [
        (cols.lines[i], cols.codes[i], cols.names[cols.layers[i]], cols.names[cols.blobs[i]], repr(cols.values[i]))
        for i in range(len(cols.lines))
    ]


def _regex_rows(buf: bytes):
    hits = _hits(buf)
    return _rows(D._regex_path(buf, _arrays(buf)[1], hits)) if len(hits) else None


@settings(max_examples=400, deadline=None)
@given(st.lists(debug_line() | OTHER, min_size=1, max_size=30), st.sampled_from([b"", b"\n", b"\r\n"]))
def test_numpy_path_reads_what_the_regex_reads(lines, end):
    buf = b"\n".join(lines) + end
    arr, newlines, brackets = _arrays(buf)
    assert _rows(D.debug_columns(buf, arr, newlines, brackets)) == _regex_rows(buf)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        debug_line(layers=LAYERS[:6], roles=ROLES[:4], blobs=BLOBS[:5], whats=WHATS[:2], values=CLEAN_VALUES,
                   suffixes=[b"", b"\r", b" "]),
        min_size=1, max_size=40,
    ),
    st.sampled_from([b"", b"\n"]),
)  # fmt: skip
def test_numpy_path_answers_on_clean_debug_lines(lines, end):
    """Ordinary debug_info lines never need the regex (else the fast path would be dead code)."""
    buf = b"\n".join(lines) + end
    arr, newlines, _ = _arrays(buf)
    fast = D._numpy_path(buf, arr, newlines, _hits(buf))
    assert fast is not None
    assert _rows(fast) == _regex_rows(buf)


def test_update_lines_of_old_builds_are_skipped_without_leaving_the_numpy_path():
    buf = (
        b"I1 net.cpp:1]     [Forward] Layer conv1, top blob conv1 data: 0.5\n"
        b"I1 sgd_solver.cpp:1] [Update] Layer conv1, param 0 data: 1; diff: 2\n"
        b"I1 net.cpp:1]     [Backward] Layer conv1, param blob 0 diff: -nan\n"
    )
    arr, newlines, _ = _arrays(buf)
    fast = D._numpy_path(buf, arr, newlines, _hits(buf))
    assert fast is not None
    assert _rows(fast)[0] == (1, 0, b"conv1", b"conv1", "0.5")
    assert [r[:4] for r in _rows(fast)] == [(1, 0, b"conv1", b"conv1"), (3, 3, b"conv1", b"0")]


def test_a_key_that_ends_near_the_chunk_end_is_read_whole():
    # the last line's key ends 3 bytes before the chunk does: its words must not run past it
    buf = b"I1 net.cpp:1] [Forward] Layer a_long_layer_name, top blob a_long_blob_name_x data: 1"
    arr, newlines, brackets = _arrays(buf)
    assert _rows(D.debug_columns(buf, arr, newlines, brackets)) == [
        (1, 0, b"a_long_layer_name", b"a_long_blob_name_x", "1.0")
    ]


def test_keys_with_one_fingerprint_still_get_their_own_ids(monkeypatch: pytest.MonkeyPatch):
    """With the mixing constant 0 only a key's last word counts: the word check must notice."""
    monkeypatch.setattr(D, "_MIX", np.uint64(0))
    buf = b"".join(
        b"] [Forward] Layer " + name + b", top blob same_tail_blob data: " + str(i).encode() + b"\n"
        for i, name in enumerate([b"first_layer", b"other_layer", b"first_layer", b"third_layer"])
    )
    arr, newlines, brackets = _arrays(buf)
    got = _rows(D.debug_columns(buf, arr, newlines, brackets))
    assert [r[2] for r in got] == [b"first_layer", b"other_layer", b"first_layer", b"third_layer"]
    assert got == _regex_rows(buf)
