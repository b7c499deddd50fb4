"""debug_info value lines of one chunk, read into columns (``[Forward] Layer L, top blob B data: v``).

They are most of a debug log's bytes, so they get their own reader with two ways to
the same columns:

* the **numpy path**, tried first: every ``] Layer `` hit is split at the last
  ``": "`` of its line into key and value; the keys are told apart by a fingerprint
  of their bytes (read eight at a time through an unaligned ``uint64`` view, then
  checked word for word against each key's first line, so equal fingerprints can
  never merge two keys); the values are gathered into one text and read by
  ``numpy.fromstring``. No Python object is made per line;
* the **regex path**: ``DEBUG_RE.findall`` and ``floats``, one tuple per line.

The numpy path only answers when it can vouch that its split is the regex's: one
hit per line, each key of the form ``DEBUG_KEY_RE`` describes, each value a single
token that ``fromstring`` reads whole. A line it cannot split is dropped when
``DEBUG_RE`` does not match there either (``[Update] Layer`` lines of old builds);
anything else hands the chunk to the regex path. Both give identical columns (see
tests/log/test_parser_scan.py).
"""

from __future__ import annotations

import warnings
from array import array
from itertools import count
from operator import itemgetter
from typing import NamedTuple

import numpy as np

from nandoctor.log import patterns as P
from nandoctor.log.values import parse_value

# (role letter, data|diff) -> DebugTable code
DEBUG_CODE = {(r, w): c for r, c in ((b"t", 0), (b"p", 1), (b"b", 2)) for w in (b"data", b"diff")}
DEBUG_CODE[(b"p", b"diff")] = 3

C_INT = np.dtype(f"i{array('i').itemsize}")  # DebugTable's layer/blob columns are array('i')
_LAYER = np.frombuffer(b"] Layer ", dtype=np.uint8)
_SPACE = np.zeros(256, dtype=bool)
_SPACE[list(b" \t\n\r\x0b\x0c")] = True  # what \s means to a bytes regex
_MIX = np.uint64(0x9E3779B97F4A7C15)
MAX_VALUE = 64  # longest value text the numpy path looks for (a float prints in at most 24)
_KEY = itemgetter(0)
_VALUE = itemgetter(1)
nan = float("nan")


class DebugColumns(NamedTuple):
    lines: array  # 'q', relative to the chunk
    codes: bytearray
    layers: array  # 'i', ids into names
    blobs: array
    values: array  # 'd'
    names: list[bytes]


def debug_columns(buf: bytes, arr, newlines, brackets) -> DebugColumns | None:
    """The chunk's debug value lines as columns; None when it has none."""
    hits = brackets[brackets <= len(buf) - len(_LAYER)]
    for k in range(1, len(_LAYER)):
        hits = hits[arr[hits + k] == _LAYER[k]]
    if not len(hits):  # DEBUG_RE starts with the literal: no hit, no match
        return None
    fast = _numpy_path(buf, arr, newlines, hits)
    if fast is not None:
        return fast or None
    return _regex_path(buf, newlines, hits)


def floats(vals: list[bytes] | tuple[bytes, ...]) -> array:
    """Values as a float array; C-speed ``float`` first, the MSVC spellings only when that fails.

    When the values repeat (a diverged run prints nan/inf for whole layers, dead layers
    print 0, generated runs share statistics), one conversion per distinct text: ``float``
    costs far more than a dict lookup. Whether they do is judged on the first 1024.
    """
    sample = vals[:1024]
    if 2 * len(set(sample)) > len(sample):  # mostly distinct: convert them all
        try:
            return array("d", map(float, vals))
        except ValueError:
            return array("d", [v if (v := parse_value(b)) is not None else nan for b in vals])
    distinct = set(vals)
    try:
        known = dict(zip(distinct, map(float, distinct), strict=True))
    except ValueError:
        known = {b: v if (v := parse_value(b)) is not None else nan for b in distinct}
    return array("d", map(known.__getitem__, vals))


# ---------------------------------------------------------------------------- numpy path
def _numpy_path(buf: bytes, arr, newlines, hits) -> DebugColumns | tuple | None:
    """Columns, ``()`` when every hit turned out not to be a value line, None to use the regex path."""
    n = len(buf)
    row = np.searchsorted(newlines, hits)  # the newline that ends each hit's line
    if len(row) > 1 and not (row[1:] > row[:-1]).all():
        return None  # two hits on a line: which one the regex takes depends on the first
    ends = np.full(len(hits), n, dtype=np.int64)
    closed = row < len(newlines)
    ends[closed] = newlines[row[closed]]
    start = hits + len(_LAYER)
    colon = _last_colon_space(arr, start, ends)
    value = colon + 2
    ok = colon >= 0
    ok[ok] = ~_SPACE[arr[value[ok]]]
    if not ok.all():
        if not _regex_misses(buf, hits[~ok]):
            return None
        hits, row, ends, colon, start, value = (a[ok] for a in (hits, row, ends, colon, start, value))
        if not len(hits):
            return ()
    values = _read_values(arr, value, np.minimum(ends + 1, n))
    if values is None:
        return None
    ids, firsts = _key_ids(buf, start, colon)
    names: dict[bytes, int] = {}
    table = np.full((len(firsts), 3), -1, dtype=np.int64)
    for k, first in enumerate(firsts.tolist()):
        layout = _key_layout(buf[start[first] : colon[first]], names)
        if layout is not None:
            table[k] = layout
    cols = table[ids]
    keep = cols[:, 0] >= 0
    if not keep.all():  # a key the regex would not read as data/diff, or would split elsewhere
        if not _regex_misses(buf, hits[~keep]):
            return None
        cols, row, values = cols[keep], row[keep], values[keep]
        if not len(cols):
            return ()
    return _columns(row + 1, cols, array("d", values.tobytes()), names)


def _last_colon_space(arr, starts, ends) -> np.ndarray:
    """Where the last ``": "`` of each ``[start, end)`` is, with a value byte after it; -1 if none.

    Looked for backwards from the line's end, a byte a step for all lines at once: a
    value is a short number, so a few steps settle nearly every line (a line with a
    longer value is handed to the regex, like one without any).
    """
    colon = np.full(len(starts), -1, dtype=np.int64)
    todo = np.arange(len(starts))
    for back in range(3, 3 + MAX_VALUE):
        at = ends[todo] - back
        inside = at >= starts[todo]
        todo, at = todo[inside], at[inside]
        found = (arr[at] == 58) & (arr[at + 1] == 32)
        colon[todo[found]] = at[found]
        todo = todo[~found]
        if not len(todo):
            break
    return colon


def _regex_misses(buf: bytes, hits) -> bool:
    """True when ``DEBUG_RE`` matches at none of these hits (so the lines are rightly skipped)."""
    match = P.DEBUG_RE.match
    return all(match(buf, h) is None for h in hits.tolist())


def _read_values(arr, starts, stops) -> np.ndarray | None:
    """Each ``[start, stop)`` (a value and the rest of its line) read as exactly one number; None if not.

    The segments are gathered into one text, newline-separated, for ``fromstring``.
    Each starts with a non-space byte, so a count equal to the number of segments
    means each held one token and nothing else. ``fromstring`` reads a token exactly
    as ``float`` does (CPython's own conversion), nan/inf spellings included; what it
    cannot read (``1.#QNAN``, junk after the value) sends the chunk to the regex path.
    """
    lens = stops - starts
    offsets = np.cumsum(lens) - lens
    index = np.arange(int(lens.sum()), dtype=np.int64) + np.repeat(starts - offsets, lens)
    text = arr[index].tobytes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy warns, and stops, at the first unreadable token
        try:
            values = np.fromstring(text, dtype=np.float64, sep=" ")
        except (ValueError, DeprecationWarning):
            return None
    return values if len(values) == len(starts) else None


def _key_ids(buf: bytes, starts, stops) -> tuple[np.ndarray, np.ndarray]:
    """Ids of the keys ``buf[start:stop]`` (0, 1, ... in order of first appearance) and each id's first line.

    Fingerprint: the length and the key's bytes eight at a time, mixed into one
    ``uint64``. Word ``j`` is read at ``start + 8j``, or at ``stop - 8`` once that
    would run past the key, so no word needs masking: two keys of one length are read
    at the same places, and before a key shorter than 8 bytes lies the constant
    ``"] Layer "``. Every line's words are then compared with those of the first line
    with its fingerprint, so the ids are exact.
    """
    view = np.ndarray((len(buf) - 7,), dtype="<u8", buffer=buf, strides=(1,))  # a uint64 at every offset
    lengths = stops - starts
    last_word = stops - 8
    mix = lengths.astype(np.uint64)
    words = []
    for j in range(0, max(int(lengths.max()), 1), 8):
        word = view[np.minimum(starts + j, last_word)]
        words.append(word)
        mix = mix * _MIX + word
    _, firsts, inverse = np.unique(mix, return_index=True, return_inverse=True)
    order = np.argsort(firsts, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    ids = rank[inverse.reshape(-1)]
    firsts = firsts[order]
    rep = firsts[ids]
    if not (lengths[rep] == lengths).all() or not all((w[rep] == w).all() for w in words):
        # two keys with one fingerprint: ids the slow way
        index: dict[bytes, int] = {}
        keys = map(buf.__getitem__, map(slice, starts.tolist(), stops.tolist()))
        first_line = np.fromiter(map(index.setdefault, keys, count()), dtype=np.int64, count=len(starts))
        firsts = np.fromiter(index.values(), dtype=np.int64, count=len(index))  # increasing
        ids = np.searchsorted(firsts, first_line)
    return ids, firsts


# ---------------------------------------------------------------------------- regex path
def _regex_path(buf: bytes, newlines, hits) -> DebugColumns | None:
    pairs = P.DEBUG_RE.findall(buf)
    if not pairs:
        return None
    if len(hits) != len(pairs):  # some "] Layer " is not a debug value line: take the offsets one by one
        hits = np.array([m.start() for m in P.DEBUG_RE.finditer(buf)], dtype=np.int64)
    lines = np.searchsorted(newlines, hits) + 1
    # each distinct key ("conv1, top blob conv1 data") is split once; the columns come from numpy
    # lookups. A key's id is the index of its first line (setdefault with a counter: one C pass).
    index: dict[bytes, int] = {}
    idx = np.fromiter(map(index.setdefault, map(_KEY, pairs), count()), dtype=np.int64, count=len(pairs))
    names: dict[bytes, int] = {}
    table = np.full((len(pairs), 3), -1, dtype=np.int64)
    for key, first in index.items():  # first-appearance order: the same names order in every run
        layout = _key_layout(key, names)
        if layout is not None:
            table[first] = layout
    values = list(map(_VALUE, pairs))
    cols = table[idx]
    if (cols[:, 0] < 0).any():  # "d..." words other than data/diff: not a debug value
        keep = cols[:, 0] >= 0
        cols, lines = cols[keep], lines[keep]
        values = [v for v, k in zip(values, keep.tolist(), strict=True) if k]
        if not len(cols):
            return None
    return _columns(lines, cols, floats(values), names)


def _columns(lines, cols, values: array, names: dict[bytes, int]) -> DebugColumns:
    return DebugColumns(
        array("q", lines.astype(np.int64).tobytes()),
        bytearray(cols[:, 0].astype(np.uint8).tobytes()),
        array("i", cols[:, 1].astype(C_INT).tobytes()),
        array("i", cols[:, 2].astype(C_INT).tobytes()),
        values,
        list(names),
    )


def _key_layout(key: bytes, names: dict[bytes, int]) -> tuple[int, int, int] | None:
    """``layer, role blob name what`` -> (DebugTable code, layer id, blob id); None if not data/diff."""
    m = P.DEBUG_KEY_RE.fullmatch(key)
    code = DEBUG_CODE.get((m.group(2), m.group(4))) if m else None
    if code is None:
        return None
    layer = names.setdefault(m.group(1), len(names))
    blob = names.setdefault(m.group(3), len(names))
    return code, layer, blob
