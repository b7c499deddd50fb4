"""One chunk of a log, scanned into events and debug_info columns (no state, so it can run anywhere).

``scan_chunk(buf)`` takes bytes that start at a line start and end at a line end and
returns a ``ChunkScan``: the number of lines, the glog line count, the events that
need order (with 1-based line numbers *relative to the chunk*) and the debug_info
values as columns with chunk-local name ids. ``parser._Parser`` adds the chunk's
first line number and feeds the events through its state machine. Because a scan
depends on nothing but its bytes, chunks can be scanned in worker processes.

``cut_point`` decides where a chunk may end: never inside a protobuf dump
(``Initializing ... from parameters:`` followed by unprefixed lines), so that every
dump reaches the state machine whole.
"""

from __future__ import annotations

from array import array
from itertools import accumulate, repeat
from operator import itemgetter
from typing import NamedTuple

from nandoctor.log import patterns as P
from nandoctor.log.values import parse_value

# event kinds; events come in file order (by byte offset)
ITER, OUT, RARE, RAW, DUMP = 0, 1, 2, 3, 4
FIRST = itemgetter(0)
DUMP_LOOKBACK = 4 << 20  # a dump open at a chunk's end is looked for this far back

# (role letter, data|diff) -> DebugTable code
DEBUG_CODE = {(r, w): c for r, c in ((b"t", 0), (b"p", 1), (b"b", 2)) for w in (b"data", b"diff")}
DEBUG_CODE[(b"p", b"diff")] = 3


class DebugColumns(NamedTuple):
    lines: array  # 'q', relative to the chunk
    codes: bytearray
    layers: array  # 'l', ids into names
    blobs: array
    values: array  # 'd'
    names: list[bytes]


class ChunkScan(NamedTuple):
    lines: int
    glog_lines: int
    events: list[tuple]
    debug: DebugColumns | None


def floats(vals) -> array:
    """Values as a float array; C-speed ``float`` first, the MSVC spellings only when that fails."""
    try:
        return array("d", map(float, vals))
    except ValueError:
        nan = float("nan")
        return array("d", [v if (v := parse_value(b)) is not None else nan for b in vals])


def dump_end(buf: bytes, newline: int, end: int) -> int | None:
    """Offset just past a dump whose header line ends at ``newline``; None if it runs past ``end``."""
    m = P.BLOCK_END_RE.search(buf, newline, end)
    return None if m is None else m.start() + 1


def cut_point(buf: bytes, end: int, force: bool) -> int:
    """Where this chunk must end: ``end``, or the start of a dump that is still open at ``end``."""
    if force:
        return end
    h = buf.rfind(b"from parameters:", max(0, end - DUMP_LOOKBACK), end)
    if h < 0:
        return end
    newline = buf.find(b"\n", h, end)
    if newline >= 0 and dump_end(buf, newline, end) is not None:
        return end
    return buf.rfind(b"\n", 0, h) + 1  # 0 = the chunk holds nothing but an unfinished dump: read more


def scan_chunk(buf: bytes) -> ChunkScan:
    end = len(buf)
    count = buf.count
    # every pass adds (offset, kind, payload...); one sweep then turns offsets into line numbers
    found: list[tuple] = []
    add = found.append
    # prefix-less ("bare") text, judged on a sample: pasted logs have no glog "] " on most lines
    sample = min(end, 1 << 18)
    s_lines, s_glog = count(b"\n", 0, sample), count(b"] ", 0, sample)
    bare = s_glog * 3 < s_lines or (s_lines == 0 and s_glog == 0)

    rare = [(m.start(), m.group(1), m.group(2), m.end()) for m in P.RARE_RE.finditer(buf)]
    if bare:
        # line starts: search "\n" + buf, so a match at i starts line i of buf
        rare += [(m.start(), m.group(1), m.group(2), m.end() - 1) for m in P.BARE_RE.finditer(b"\n" + buf)]
    for pos, key, rest, stop in rare:
        if key.startswith(b"Initializing "):
            newline = buf.find(b"\n", stop, end)
            if newline < 0:
                text = b""
            else:
                finish = dump_end(buf, newline, end)
                text = buf[newline + 1 : end if finish is None else finish]
            add((pos, DUMP, key, text))
        else:
            add((pos, RARE, key, rest))
    if not bare:
        m0 = P.RAW_RE.match(b"\n" + buf[:512])
        if m0 is not None:  # the chunk's first line has no newline before it
            add((0, RAW, m0.group(1), m0.group(2)))
        for m in P.RAW_RE.finditer(buf):
            add((m.start() + 1, RAW, m.group(1), m.group(2)))
    for m in P.ITERATION_RE.finditer(buf):
        pos = m.start()
        rank = None
        if buf[pos - 2 : pos] == b"] " and buf.find(b"[", max(0, pos - 16), pos) >= 0:
            r = P.RANK_RE.search(buf, max(0, pos - 16), pos)
            if r is not None:
                rank = r.group(1)
        add((pos, ITER, int(m.group(1)), m.group(2), rank))
    for m in P.OUTPUT_RE.finditer(buf):
        pos = m.start()
        add((pos, OUT, buf[pos - 2 : pos - 1] == b"n", *m.groups()))
    found.sort(key=FIRST)
    offsets = [ev[0] for ev in found]
    lines = accumulate(map(count, repeat(b"\n"), [0, *offsets[:-1]], offsets), initial=1)
    next(lines)
    events = [(line, *ev[1:]) for line, ev in zip(lines, found, strict=False)]
    debug = _debug_columns(buf)
    n_lines = count(b"\n") + (1 if end and buf[-1:] != b"\n" else 0)
    # every "] " is a glog prefix, except the second one on debug_info lines ("[Forward] Layer")
    glog = count(b"] ") - (len(debug.lines) if debug else 0)
    return ChunkScan(n_lines, glog, events, debug)


def _debug_columns(buf: bytes) -> DebugColumns | None:
    """debug_info lines, column-wise: per-line work is done by C-level map/zip over the columns."""
    starts: list[int] = []
    groups: list[tuple] = []
    add_start, add_group = starts.append, groups.append
    for m in P.DEBUG_RE.finditer(buf):
        add_start(m.start())
        add_group(m.groups())
    if not starts:
        return None
    layers, roles, blobs, whats, vals = zip(*groups, strict=True)
    # line numbers: newlines between consecutive matches, accumulated from the chunk's first line
    gaps = map(buf.count, repeat(b"\n"), [0, *starts[:-1]], starts)
    lines = array("q", accumulate(gaps, initial=1))
    del lines[0]
    names = list(set(layers).union(blobs))
    ids = {name: i for i, name in enumerate(names)}
    return DebugColumns(
        lines,
        bytearray(map(DEBUG_CODE.__getitem__, zip(roles, whats, strict=True))),
        array("l", map(ids.__getitem__, layers)),
        array("l", map(ids.__getitem__, blobs)),
        floats(vals),
        names,
    )
