"""One chunk of a log, scanned into events and debug_info columns (no state, so it can run anywhere).

``scan_chunk(buf, bare)`` takes bytes that start at a line start and end at a line end
and returns a ``ChunkScan``: the number of lines, the glog line count, the events that
need order (already parsed into numbers and text, with 1-based line numbers
*relative to the chunk* in a parallel array) and the debug_info values as columns.
``parser._Parser`` adds the chunk's first line number and feeds the events through
its state machine. Everything here is line-local and depends on nothing but the bytes
(``bare`` is decided once per file), so a log cut anywhere between lines scans the
same and chunks can be scanned in worker processes (``pack``/``unpack`` carry a scan
back as one ``marshal`` blob). All number parsing is done here, which keeps the
serial state machine short.

A line is one message: a debug_info value line (``[Forward] Layer L, top blob B data:
v``) is read as that and nothing else, whatever its layer name holds.

Speed: the text is only touched by C code and numpy, with Python work per *found*
line only. debug_info lines (most of a debug log): numpy alone, see ``debug_lines``.
Every other pass runs over the other lines joined together (``_other_lines``; its
offsets are shifted back): Iteration and output lines, one literal-anchored regex pass
each (the everyday lr and display lines taken apart by the regex itself); rare
messages, where numpy picks the ``] `` followed by a rare key's first two bytes and
the regex is tried there only (the frequent keys are recognised by numpy alone);
crash lines, where numpy picks line starts with a possible first byte. Offsets
become line numbers with one ``searchsorted`` against the newline offsets. Train
outputs stay columns until the fold attaches them to their display. Every shortcut
finds exactly what the plain ``finditer`` pass would (see tests/log/test_parser_scan.py).

``cut_point`` decides where a streamed chunk may end: never inside a protobuf dump
(``Initializing ... from parameters:`` followed by unprefixed lines), so that every
dump reaches the state machine whole.
"""

from __future__ import annotations

from array import array
from hashlib import blake2b
from itertools import chain, compress, repeat
from re import Match
from typing import NamedTuple

import numpy as np

from nandoctor.log import patterns as P
from nandoctor.log.debug_lines import DebugColumns, debug_columns
from nandoctor.log.values import parse_value

# event kinds (first item of every event tuple); the frequent net-setup lines get their own
TRAIN, LR, TESTING, STEP, OUT, RARE, RAW, DUMP, TOP, SETUP, LAYER, SUMMARY, LAYER_SETUP = range(13)
DUMP_LOOKBACK = 4 << 20  # a dump open at a chunk's end is looked for this far back
MAX_LINE = 4 << 20  # longer lines are emptied (and counted), here and by the readers in ``chunks``
SAMPLE = 1 << 18  # the head of a file that decides whether it has glog prefixes
MAX_SENT_DUMPS = 4096  # digests a worker remembers (16 bytes each)

_ISDIGIT = np.zeros(256, dtype=bool)
_ISDIGIT[ord("0") : ord("9") + 1] = True
# first bytes of the lines RAW_RE can match (after an optional "> " quote marker)
_RAW_FIRST = np.zeros(256, dtype=bool)
_RAW_FIRST[[k[0] for k in P.RAW_KEYS] + list(b"F>")] = True
# first two bytes of the rare messages: where RARE_RE can match after "] +"
_RARE_PAIR = np.zeros(1 << 16, dtype=bool)
_RARE_PAIR[[k[0] << 8 | k[1] for k in P.RARE_KEYS]] = True
# the rare keys that come by the thousand (net setup, debug_info summaries), recognised by numpy
# byte by byte (no other key shares their first bytes)
_FREQUENT_EVENTS = {"top_shape": TOP, "setting_up": SETUP, "creating_layer": LAYER, "debug_summary": SUMMARY}
_FREQUENT_KEYS = tuple((_FREQUENT_EVENTS[m.event], m.key) for m in P.MESSAGES if m.event in _FREQUENT_EVENTS)
_FREQUENT_LENGTH = np.zeros(13, dtype=np.int64)
_FREQUENT_LENGTH[[k for k, _ in _FREQUENT_KEYS]] = [len(key) for _, key in _FREQUENT_KEYS]
# for some first two bytes, the byte at a further offset that the keys starting with them can have
# ("Creating Layer "/"Creating t...": L or t after "Creating ")
_MORE_BYTES = [
    (pair, at, np.array(sorted({k[at] for k in P.RARE_KEYS if k[:2] == pair}), dtype=np.uint8))
    for pair, at in ((b"Cr", 9), (b"So", 4), (b"Op", 2))
]
nan = float("nan")


class Displays(NamedTuple):
    """A chunk's displays with the outputs and lr line folded into them, column by column.

    Display ``k`` is event ``(TRAIN, k)``; its outputs are rows ``out_start[k]`` to
    ``out_start[k + 1]`` of ``out`` (index, name, value, text, line, weight,
    contribution) and its lr line is row ``lr[k]`` of ``lrs`` (iteration, value, text,
    line, extras), -1 for none. Lines are relative to the chunk. Columns, not a tuple
    per display: marshal and the receiving process then handle a few lists of plain
    values instead of millions of small tuples.
    """

    iteration: list[int]
    loss: list
    text: list[str]
    seconds: list
    speed: list[bool]
    out_start: list[int]
    lr: list[int]
    out: tuple[list, ...]
    lrs: tuple[list, ...]


class TrainOutputs(NamedTuple):
    """The chunk's ``Train net output`` lines, column by column, in file order (``_fold`` attaches them)."""

    offsets: list[int]
    index: list[int]
    name: list[str]
    value: list
    text: list[str]
    weight: list
    contribution: list


NO_TRAIN_OUTPUTS = TrainOutputs([], [], [], [], [], [], [])


class ChunkScan(NamedTuple):
    lines: int
    glog_lines: int
    found: int  # lines matched by a pass (stats), including those that turn out to carry nothing
    events: list[tuple]
    event_lines: array  # 'q', parallel to events
    debug: DebugColumns | None
    long_lines: int = 0  # lines longer than MAX_LINE, emptied
    displays: Displays | None = None


def pack(scan: ChunkScan) -> tuple:
    """A scan as plain tuples/bytes for ``marshal`` (a third cheaper than pickling the objects).

    Line numbers within a chunk and name ids fit in 32 bits (a chunk is a few MB): the
    debug columns travel at 4 bytes instead of 8 (they are most of what is sent).
    """
    d = scan.debug
    debug = None if d is None else (_narrow(d.lines), bytes(d.codes), _narrow(d.layers),
                                    _narrow(d.blobs), d.values.tobytes(), d.names)  # fmt: skip
    displays = None if scan.displays is None else tuple(scan.displays)
    return (scan.lines, scan.glog_lines, scan.found, scan.events, _narrow(scan.event_lines), debug, scan.long_lines,
            displays)  # fmt: skip


def unpack(t: tuple) -> ChunkScan:
    lines, glog, found, events, event_lines, debug, long_lines, displays = t
    if debug is not None:
        dl, codes, layers, blobs, values, names = debug
        debug = DebugColumns(_widen(dl, "q"), bytearray(codes), _widen(layers, "i"), _widen(blobs, "i"),
                             array("d", values), names)  # fmt: skip
    if displays is not None:
        displays = Displays(*displays)
    return ChunkScan(lines, glog, found, events, _widen(event_lines, "q"), debug, long_lines, displays)


def _narrow(a: array) -> bytes:
    return np.frombuffer(a, dtype=f"i{a.itemsize}").astype(np.int32).tobytes()


def _widen(b: bytes, typecode: str) -> array:
    out = array(typecode)
    out.frombytes(np.frombuffer(b, dtype=np.int32).astype(f"i{out.itemsize}").tobytes())
    return out


def number(b: bytes | None) -> float | None:
    if b is None:
        return None
    try:
        return float(b)
    except ValueError:
        return parse_value(b)


def text(b: bytes) -> str:
    return b.decode("utf-8", "replace").strip()


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


def is_bare(head: bytes) -> bool:
    """Prefix-less ("bare") text: pasted logs have no glog ``] `` on most lines. Decided once per file."""
    lines, glog = head.count(b"\n"), head.count(b"] ")
    return glog * 3 < lines or (lines == 0 and glog == 0)


def scan_chunk(buf: bytes, bare: bool | None = None, sent_dumps: set[bytes] | None = None) -> ChunkScan:
    """Scan one chunk; ``bare`` (decided on the file's head) says the text has no glog prefixes.

    ``sent_dumps``: digests of the dumps whose text the receiving parser already has (a
    worker's earlier chunks of the same parse); such a dump is sent as its digest alone
    (text None), and the digests of new ones are added.
    """
    if bare is None:
        bare = is_bare(buf[:SAMPLE])
    arr = np.frombuffer(buf, dtype=np.uint8)
    newlines = np.flatnonzero(arr == 10)
    long_lines = 0
    if len(buf) > MAX_LINE:
        buf, long_lines = _drop_long_lines(buf, newlines)
        if long_lines:
            arr = np.frombuffer(buf, dtype=np.uint8)
            newlines = np.flatnonzero(arr == 10)
    end = len(buf)
    brackets = np.flatnonzero(arr == 93)
    # every pass adds (offset, event); one numpy sweep then turns offsets into line numbers
    offsets: list[int] = []
    events: list[tuple] = []
    at, add = offsets.append, events.append
    found = 0

    # a debug value line is read as that and nothing else: every other pass scans the other
    # lines joined together (a debug log's debug lines are most of its bytes)
    debug = debug_columns(buf, arr, newlines, brackets)
    others, kept_at, shift = _other_lines(buf, newlines, debug)
    if shift is None:
        o_arr, o_newlines, o_brackets = arr, newlines, brackets
    else:
        o_arr = np.frombuffer(others, dtype=np.uint8)
        o_newlines, o_brackets = np.flatnonzero(o_arr == 10), np.flatnonzero(o_arr == 93)

    rare, setup = _rare_matches(others, o_arr, o_brackets, o_newlines)
    if bare:
        # line starts: search "\n" + others, so a match at i starts line i of others
        rare += [(m.start(), m.group(1), m.group(2), m.end() - 1) for m in P.BARE_RE.finditer(b"\n" + others)]
    found += len(rare) + len(setup.offsets)
    # a net's setup lines repeat for every net built (train, test, each restart): parse each text
    # once per chunk (pickle then sends one copy, and the trace shares it)
    shapes: dict[bytes, tuple | None] = {}
    names: dict[bytes, str] = {}
    if setup.offsets:
        parsed = {}
        for kind, rest in set(zip(setup.kinds, setup.rests, strict=True)):
            if kind == TOP:
                parsed[kind, rest] = shapes.setdefault(rest, _top_shape(rest))
            elif kind == SUMMARY:
                m = P.SUMMARY_RE.search(rest)
                parsed[kind, rest] = _four_numbers(m.groups()) if m else None
            else:
                parsed[kind, rest] = names.setdefault(rest, text(rest))
        offsets += setup.offsets
        events += zip(setup.kinds, map(parsed.__getitem__, zip(setup.kinds, setup.rests, strict=True)), strict=True)
    for pos, key, rest, stop in rare:
        at(pos)
        event = P.EVENT.get(key)
        if event == "top_shape":
            shape = shapes.get(rest, False)
            if shape is False:
                shape = shapes[rest] = _top_shape(rest)
            add((TOP, shape))
        elif event == "setting_up":
            name = names.get(rest)
            add((SETUP, name if name is not None else names.setdefault(rest, text(rest))))
        elif event == "creating_layer":
            name = names.get(rest)
            add((LAYER, name if name is not None else names.setdefault(rest, text(rest))))
        elif event == "debug_summary":
            m = P.SUMMARY_RE.search(rest)
            add((SUMMARY, _four_numbers(m.groups()) if m else None))
        elif event == "dump":
            if shift is not None:  # the dump is read from the chunk itself
                stop += int(shift[np.searchsorted(kept_at, stop, side="right") - 1])
            add(_dump_event(buf, stop, key, sent_dumps))
        else:
            add((RARE, key, rest))
    if not bare:
        found += _raw_lines(others, o_arr, o_newlines, at, add)
    found += _iteration_lines(others, at, add)
    n_outputs, train = _output_lines(others, o_arr, offsets, events)
    found += n_outputs
    train_at = np.array(_shifted(train.offsets, kept_at, shift), dtype=np.int64)
    at_buf = np.array(_shifted(offsets, kept_at, shift), dtype=np.int64)

    # stable order by offset (passes that find the same offset keep the order above)
    order = np.argsort(at_buf, kind="stable")
    at_buf = at_buf[order]
    lines = np.searchsorted(newlines, at_buf) + 1
    # for each event, how many train outputs come before it: they are folded in between
    outs_before = np.searchsorted(train_at, at_buf).tolist()
    train_lines = (np.searchsorted(newlines, train_at) + 1).tolist()
    events, lines, displays = _fold(
        list(map(events.__getitem__, order.tolist())), lines.tolist(), outs_before, train, train_lines
    )
    n_lines = len(newlines) + (1 if end and buf[-1:] != b"\n" else 0)
    # every "] " is a glog prefix, except the second one on debug_info lines ("[Forward] Layer")
    inner = brackets[brackets < end - 1]
    glog = int(np.count_nonzero(arr[inner + 1] == 32)) - (len(debug.lines) if debug else 0)
    return ChunkScan(n_lines, glog, found, events, array("q", lines), debug, long_lines, displays)


def _dump_event(buf: bytes, stop: int, key: bytes, sent_dumps: set[bytes] | None) -> tuple:
    """The protobuf text after an ``Initializing ... from parameters:`` line ending at ``stop``."""
    end = len(buf)
    newline = buf.find(b"\n", stop, end)
    if newline < 0:
        dump = b""
    else:
        finish = dump_end(buf, newline, end)
        dump = buf[newline + 1 : end if finish is None else finish]
    if b"\n>" in dump or dump.startswith(b">"):
        dump = P.QUOTE_RE.sub(b"", dump)
    # the digest lets the main process share one text among identical dumps without hashing them
    digest = blake2b(dump, digest_size=16).digest()
    n = dump.count(b"\n")
    if sent_dumps is not None:
        if digest in sent_dumps:
            dump = None
        elif len(sent_dumps) < MAX_SENT_DUMPS:
            sent_dumps.add(digest)
    return (DUMP, key, dump, digest, n)


def _shifted(at: list[int], kept_at, shift) -> list[int]:
    """Offsets in the joined other lines back to offsets in the chunk (see ``_other_lines``)."""
    if shift is None or not at:
        return at
    rest = np.array(at, dtype=np.int64)
    return (rest + shift[np.searchsorted(kept_at, rest, side="right") - 1]).tolist()


def _other_lines(
    buf: bytes, newlines, debug: DebugColumns | None
) -> tuple[bytes, np.ndarray | None, np.ndarray | None]:
    """The chunk without its debug value lines; where each kept piece starts in it, and its shift back.

    Whole lines are dropped, so every kept line is still a line (a newline before it)
    and line-local patterns match in the result exactly where they match in ``buf``.
    Offset ``o`` of the result is ``o + shift[i]`` in ``buf``, ``i`` the last piece
    starting at or before ``o``. (None, None): nothing was dropped.
    """
    if debug is None:
        return buf, None, None
    rows = np.frombuffer(debug.lines, dtype=np.int64) - 1
    gaps = np.flatnonzero(rows[1:] - rows[:-1] > 1)
    first = np.concatenate((rows[:1], rows[gaps + 1]))
    last = np.concatenate((rows[gaps], rows[-1:]))
    line_start = np.concatenate(([0], newlines + 1, [len(buf)]))
    keep_lo = np.concatenate(([0], line_start[last + 1]))  # each kept piece runs to the next dropped run
    keep_hi = np.concatenate((line_start[first], [len(buf)]))
    lengths = keep_hi - keep_lo
    kept_at = np.cumsum(lengths) - lengths
    rest = b"".join(map(buf.__getitem__, map(slice, keep_lo.tolist(), keep_hi.tolist())))
    return rest, kept_at, keep_lo - kept_at


def _fold(
    events: list[tuple], lines: list[int], outs_before: list[int], train: TrainOutputs, train_lines: list[int]
) -> tuple[list[tuple], list[int], Displays | None]:
    """Fold the events that always go together into one, so the serial state machine sees fewer.

    A display (``TRAIN``) takes the train outputs and the lr line of its iteration that
    follow it directly; it becomes ``(TRAIN, k)`` with its fields in row ``k`` of the
    returned ``Displays``. ``Creating Layer X`` directly followed by ``Setting up X``
    and its ``Top shape`` lines becomes ``(LAYER_SETUP, X, shapes)``. The state machine
    does with a folded event exactly what it did with its parts in a row (nothing else
    can come between them).

    The train outputs are not among ``events``: ``train`` holds them as columns (on
    ``train_lines``) and ``outs_before[i]`` says how many of them come before event
    ``i``. A run of them that follows a display directly is folded into it as a whole;
    any other is handed on as an ``OUT`` event in its place.
    """
    out_ev: list[tuple] = []
    out_ln: list[int] = []
    add, at = out_ev.append, out_ln.append
    its: list[int] = []
    losses: list = []
    texts: list[str] = []
    seconds: list = []
    speeds: list[bool] = []
    out_start: list[int] = []
    lr_rows: list[int] = []
    folded: list[tuple[int, int]] = []  # runs of train output rows folded into displays, in order
    lrs = ([], [], [], [], [])
    l_it, l_value, l_text, l_line, l_extras = (c.append for c in lrs)
    n_out = n_lr = 0
    done = 0  # train outputs placed so far
    open_it = None  # iteration of the display just added, while only its outputs/lr follow
    lr_open = False
    shapes: list | None = None  # top shapes of the layer just added, while only its shapes follow
    for ev, line, before in zip(events, lines, outs_before, strict=True):
        if before != done:  # train outputs between the previous event and this one
            if open_it is not None:
                _add_run(folded, done, before)
                n_out += before - done
            else:
                _hand_on(train, train_lines, done, before, out_ev, out_ln)
                shapes = None
            done = before
        kind = ev[0]
        if open_it is not None:
            if kind == LR and lr_open and ev[1] == open_it:
                lr_rows[-1] = n_lr
                l_it(ev[1])
                l_value(ev[2])
                l_text(ev[3])
                l_line(line)
                l_extras(ev[4])
                n_lr += 1
                lr_open = False
                continue
            open_it = None
        elif shapes is not None:
            if kind == TOP:
                if ev[1] is not None:
                    shapes.append(ev[1])
                continue
            shapes = None
        if kind == TRAIN:
            add((TRAIN, len(its)))
            at(line)
            its.append(ev[1])
            losses.append(ev[2])
            texts.append(ev[3])
            seconds.append(ev[4])
            speeds.append(ev[5])
            out_start.append(n_out)
            lr_rows.append(-1)
            open_it, lr_open = ev[1], True
            continue
        if kind == SETUP and out_ev and out_ev[-1][0] == LAYER and out_ev[-1][1] == ev[1]:
            shapes = []
            out_ev[-1] = (LAYER_SETUP, ev[1], shapes)
            continue
        add(ev)
        at(line)
    rows = len(train_lines)
    if done != rows:  # train outputs after the last event
        if open_it is not None:
            _add_run(folded, done, rows)
            n_out += rows - done
        else:
            _hand_on(train, train_lines, done, rows, out_ev, out_ln)
    if not its:
        return out_ev, out_ln, None
    out_start.append(n_out)
    columns = (train.index, train.name, train.value, train.text, train_lines, train.weight, train.contribution)
    if folded != [(0, rows)]:
        columns = tuple(list(chain.from_iterable(c[lo:hi] for lo, hi in folded)) for c in columns)
    return out_ev, out_ln, Displays(its, losses, texts, seconds, speeds, out_start, lr_rows, columns, lrs)


def _add_run(folded: list[tuple[int, int]], lo: int, hi: int) -> None:
    """Rows lo..hi-1 folded; joined to the previous run when they continue it (usually one run in all)."""
    if folded and folded[-1][1] == lo:
        folded[-1] = (folded[-1][0], hi)
    else:
        folded.append((lo, hi))


def _hand_on(
    train: TrainOutputs, train_lines: list[int], lo: int, hi: int, events: list[tuple], lines: list[int]
) -> None:
    """Train output rows lo..hi-1 as OUT events (no display to fold them into)."""
    for k in range(lo, hi):
        events.append((OUT, True, train.index[k], train.name[k], train.value[k], train.text[k], train.weight[k],
                       train.contribution[k]))  # fmt: skip
        lines.append(train_lines[k])


def _top_shape(rest: bytes) -> tuple[tuple[int, ...], int] | None:
    """``2 3 4 (24)`` -> ((2, 3, 4), 24); None when it does not read as that."""
    head, _, count = rest.partition(b"(")
    try:
        return tuple(map(int, head.split())), int(count.split(b")")[0])
    except ValueError:
        return None


def _four_numbers(groups: tuple) -> list[float]:
    """The L1/L2 norms of a ``[Backward] All net params`` line; unreadable ones are nan."""
    try:
        return list(map(float, groups))
    except ValueError:
        return [nan if (v := number(g)) is None else v for g in groups]


def _drop_long_lines(buf: bytes, newlines) -> tuple[bytes, int]:
    """Empty every line longer than ``MAX_LINE`` (keeping its newline, so line numbers stay right)."""
    starts = np.concatenate(([0], newlines + 1))
    ends = np.concatenate((newlines, [len(buf)]))
    long = np.flatnonzero(ends - starts > MAX_LINE)
    if not len(long):
        return buf, 0
    pieces, prev = [], 0
    for i in long.tolist():
        pieces.append(buf[prev : starts[i]])
        prev = int(ends[i])
    pieces.append(buf[prev:])
    return b"".join(pieces), len(long)


class FrequentLines(NamedTuple):
    """The rare matches with a frequent key (most of them: every run builds its nets), as columns."""

    kinds: list[int]  # TOP, SETUP, LAYER or SUMMARY
    offsets: list[int]
    rests: list[bytes]  # the rest of the line after the key


def _rare_matches(buf: bytes, arr, brackets, newlines) -> tuple[list[tuple], FrequentLines]:
    """``RARE_RE`` matches, tried only after the ``]`` whose message starts like a rare key.

    Same matches as ``finditer`` (which would try all ~1.5 ``]`` per line): candidates
    are ``] `` + spaces + one of the keys' first two bytes, and one ``[Forward]``/
    ``[Backward]`` debug line in a thousand is an Input or All-params line. The frequent
    keys (``Top shape: ``, ``Setting up ``, ``Creating Layer ``, ``[Backward] All net
    params``) are recognised by numpy, byte by byte, and come back as columns; the regex
    is tried on the other candidates only, as ``(offset, key, rest, end)``. Every match runs to the end of
    its line, so ``finditer``'s "not inside the previous match" is "first on its line".
    """
    end = len(buf)
    b = brackets[brackets < end - 3]
    b = b[arr[b + 1] == 32]
    p = b + 2
    spaces = np.flatnonzero(arr[p] == 32)
    while len(spaces):  # skip the rest of the spaces (4 more before "[Forward]")
        p[spaces] += 1
        spaces = spaces[p[spaces] < end - 1]
        spaces = spaces[arr[p[spaces]] == 32]
    ok = p < end - 1
    b, p = b[ok], p[ok]
    keep = _RARE_PAIR[arr[p].astype(np.int64) << 8 | arr[p + 1]]
    b, p = b[keep], p[keep]
    first, second = arr[p], arr[p + 1]
    far = np.minimum(p + 11, end - 1)
    debug = first == 91  # "[": only "[Forward] Input", "[Backward] All" and "[Update]" are rare
    bad = debug & ~(
        ((second == 70) & (arr[np.minimum(p + 10, end - 1)] == 73))
        | ((second == 66) & (arr[far] == 65))
        | (second == 85)
    )
    bad |= (first == 84) & (second == 101) & (arr[np.minimum(p + 5, end - 1)] == 110)  # "Test net output"
    # Caffe's "Creating layer X" (lowercase), "Solver scaffolding", "Opened lmdb": a few thousand per
    # chunk share a key's first two bytes; one more byte tells them apart (a byte read past the end
    # can only keep a candidate that then fails: every key is longer)
    for (one, two), at, allowed in _MORE_BYTES:
        bad |= (first == one) & (second == two) & ~np.isin(arr[np.minimum(p + at, end - 1)], allowed)
    b, p = b[~bad], p[~bad]
    setup_kind = np.full(len(b), -1, dtype=np.int64)
    for kind, key in _FREQUENT_KEYS:
        idx = np.flatnonzero((arr[p] == key[0]) & (arr[p + 1] == key[1]))
        for i in range(2, len(key)):
            idx = idx[p[idx] + i < end]
            idx = idx[arr[p[idx] + i] == key[i]]
        setup_kind[idx] = kind
    slow = []
    match = P.RARE_RE.match
    for c in b[setup_kind < 0].tolist():
        m = match(buf, c)
        if m is not None:
            slow.append((c, m.group(1), m.group(2), m.end()))
    is_setup = setup_kind >= 0
    starts = np.concatenate((b[is_setup], np.array([t[0] for t in slow], dtype=np.int64)))
    kinds = np.concatenate((setup_kind[is_setup], np.full(len(slow), -1, dtype=np.int64)))
    rest_at = np.concatenate((p[is_setup] + _FREQUENT_LENGTH[setup_kind[is_setup]], np.zeros(len(slow), np.int64)))
    slow_row = np.concatenate((np.full(is_setup.sum(), -1, dtype=np.int64), np.arange(len(slow))))
    order = np.argsort(starts, kind="stable")
    row = np.searchsorted(newlines, starts[order])
    first_on_line = np.ones(len(order), dtype=bool)
    first_on_line[1:] = row[1:] != row[:-1]
    order, row = order[first_on_line], row[first_on_line]
    kept_slow = slow_row[order]
    slow = [slow[i] for i in kept_slow[kept_slow >= 0].tolist()]
    fast = kept_slow < 0
    line_end = np.full(len(order), end, dtype=np.int64)
    closed = row < len(newlines)
    line_end[closed] = newlines[row[closed]]
    pick = order[fast]
    setup = FrequentLines(
        kinds[pick].tolist(),
        starts[pick].tolist(),
        list(map(buf.__getitem__, map(slice, rest_at[pick].tolist(), line_end[fast].tolist()))),
    )
    return slow, setup


def _raw_lines(buf: bytes, arr, newlines, at, add) -> int:
    """Crash output printed without a glog prefix (``RAW_RE``), tried only where a line starts right."""
    n = 0
    first = buf.find(b"\n")
    m0 = P.RAW_RE.match(b"\n" + (buf if first < 0 else buf[:first]))
    if m0 is not None:  # the chunk's first line has no newline before it
        at(0)
        add((RAW, m0.group(1), m0.group(2)))
        n += 1
    starts = newlines[newlines < len(buf) - 1]
    match = P.RAW_RE.match
    for nl in starts[_RAW_FIRST[arr[starts + 1]]].tolist():
        m = match(buf, nl)
        if m is not None:
            at(nl + 1)
            add((RAW, m.group(1), m.group(2)))
            n += 1
    return n


def _iteration_lines(buf: bytes, at, add) -> int:
    """``Iteration N ...`` lines: the loss display, lr, Testing net and MultiStep lines."""
    matches = list(P.ITERATION_FAST_RE.finditer(buf))
    found = len(matches)
    starts = list(map(Match.start, matches))
    other_ranks = _other_ranks(buf, starts)
    if other_ranks:  # other GPUs repeat rank 0's numbers; rank 0 is the run
        matches = [m for i, m in enumerate(matches) if i not in other_ranks]
        starts = list(map(Match.start, matches))
    lrs: dict[bytes, tuple] = {}
    for pos, (digits, lr, secs, loss_raw, tail) in zip(starts, map(Match.groups, matches), strict=True):
        if lr is not None:  # plain BVLC lr line
            # the lr repeats for thousands of iterations: one float and one str per distinct value
            # (sent once to the main process, and shared by the trace)
            known = lrs.get(lr)
            if known is None:
                known = lrs[lr] = (number(lr), lr.decode("latin-1"))
            at(pos)
            add((LR, int(digits), known[0], known[1], None))
            continue
        if loss_raw is not None:  # plain BVLC display line
            try:
                seconds = float(secs)
            except ValueError:
                seconds = _seconds(buf[pos + 10 + len(digits) : buf.find(b")", pos) + 1])
            try:
                loss = float(loss_raw)
            except ValueError:
                loss = parse_value(loss_raw)
            at(pos)
            add((TRAIN, int(digits), loss, loss_raw.decode("latin-1"), seconds, True))
            continue
        if tail[:7] == b", lr = ":
            head, comma, more = tail[7:].partition(b",")
            words = head.split()
            raw = words[0] if words else b""
            known = lrs.get(raw)
            if known is None:
                known = lrs[raw] = (number(raw), raw.decode("latin-1"))
            at(pos)
            add((LR, int(digits), known[0], known[1], _extras(more) if comma else None))
            continue
        i = tail.rfind(b"loss = ")
        if i >= 0 and tail[:13] != b", Testing net" and tail[:9] != b", step = ":
            words = tail[i + 7 :].split(None, 1)
            raw = words[0].rstrip(b",;") if words else b""
            try:
                loss = float(raw)
            except ValueError:
                loss = parse_value(raw)
            if tail[:2] == b" (":
                at(pos)
                add((TRAIN, int(digits), loss, raw.decode("latin-1"), _seconds(tail), True))
            else:
                at(pos)
                add((TRAIN, int(digits), loss, raw.decode("latin-1"), None, False))
        elif tail.startswith(b", Testing net"):
            t = P.TESTING_RE.match(tail)
            at(pos)
            add((TESTING, int(digits), int(t.group(1)) if t and t.group(1) else 0))
        elif tail.startswith(b", step = "):
            s = P.STEP_RE.match(tail)
            if s:
                at(pos)
                add((STEP, int(digits), int(s.group(1))))
    return found


def _other_ranks(buf: bytes, starts: list[int]) -> set[int]:
    """Which of the lines starting at these offsets carry a solver rank other than 0 (``] [1] Iteration``).

    numpy picks the few with "] " right before and a "[" in the 16 bytes before that
    could hold a rank; ``RANK_RE`` decides on those.
    """
    if not starts:
        return set()
    arr = np.frombuffer(buf, dtype=np.uint8)
    at = np.array(starts, dtype=np.int64)
    window = arr[np.maximum(at[:, None] + np.arange(-16, 0), 0)]
    maybe = (at >= 2) & (window[:, -2] == 93) & (window[:, -1] == 32) & (window[:, :-2] == 91).any(axis=1)
    ranks = set()
    for i in np.flatnonzero(maybe).tolist():
        pos = starts[i]
        r = P.RANK_RE.search(buf, max(0, pos - 16), pos)
        if r is not None and r.group(1) not in (b"0", b"0.0"):
            ranks.add(i)
    return ranks


def _extras(more: bytes) -> dict[str, float]:
    """NVCaffe's ``, m = 0.9, wd = 0.0005, gs = 1`` after the lr."""
    extras = {}
    for em in P.EXTRA_RE.finditer(b", " + more.lstrip()):
        v = number(em.group(2))
        if v is not None:
            extras[text(em.group(1))] = v
    return extras


def _seconds(tail: bytes) -> float | None:
    """Seconds per display from BVLC "x iter/s, Ys/N iters" or NVCaffe "Y s" / "x iter/s, Ys/N iter"."""
    inner = tail[2 : tail.find(b")")]
    part = inner.rpartition(b", ")[2]
    try:
        return float(part[:-2] if part.endswith(b" s") else part.partition(b"s/")[0])
    except ValueError:
        s = P.SECONDS_RE.search(inner)
        return number(s.group(1)) if s is not None else None


def _output_lines(buf: bytes, arr, offsets: list, events: list) -> tuple[int, TrainOutputs]:
    """``Train net output #k: name = v (* w = c loss)`` and its Test twin, converted column-wise.

    Test outputs become events; train outputs come back as columns.
    """
    matches = list(P.OUTPUT_RE.finditer(buf))
    if not matches:
        return 0, NO_TRAIN_OUTPUTS
    starts = list(map(Match.start, matches))
    idx, names, vals, weights, contribs = zip(*map(Match.groups, matches), strict=True)
    s = np.array(starts, dtype=np.int64)
    # "Train net output" vs "Test net output", read on this line only
    before = np.maximum(s - 2, 0)
    is_train = ((s >= 2) & (arr[before] == 110) & (arr[before + 1] != 10)).tolist()
    # one str per distinct name (decoded here: the main process only attaches them)
    known = {n: text(n) for n in set(names)}
    columns = (
        starts,
        list(map(int, idx)),
        list(map(known.__getitem__, names)),
        _numbers(vals),
        list(map(bytes.decode, vals, repeat("latin-1"))),
        _shared_numbers(weights),
        _numbers(contribs),
    )
    if all(is_train):
        return len(matches), TrainOutputs(*columns)
    is_test = [not t for t in is_train]
    offsets += compress(starts, is_test)
    events += zip(repeat(OUT), repeat(False), *(compress(c, is_test) for c in columns[1:]))
    return len(matches), TrainOutputs(*(list(compress(c, is_train)) for c in columns))


def _shared_numbers(vals: tuple) -> list:
    """``number`` of each, one float object per distinct text (loss weights are nearly all "1")."""
    known = {v: number(v) for v in set(vals)}
    return list(map(known.__getitem__, vals))


def _numbers(vals: tuple) -> list:
    """``number`` of each (None stays None), at C speed when all are plain floats.

    A chunk's contributions hold None for every output printed without a loss weight
    (test accuracies): those alone must not send the whole column through ``number``.
    """
    try:
        return list(map(float, vals))
    except (ValueError, TypeError):
        pass
    try:
        return [None if v is None else float(v) for v in vals]
    except ValueError:
        return [number(v) for v in vals]
