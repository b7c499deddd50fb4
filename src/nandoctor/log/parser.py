"""Streaming parser for Caffe logs: ``parse_log(path_or_file, workers=None) -> Trace``.

The file is read as bytes in blocks (gzip is recognised by its magic bytes and
decompressed incrementally) and never held whole; ``chunks`` says where a block may
be cut (line ends, never inside a protobuf dump). ``scan.scan_chunk`` finds the
interesting lines of a chunk with a few literal-anchored regex passes and numpy (see
``patterns``) and returns parsed events plus debug_info columns; ``merge`` feeds the
events, in file order, through a small state machine that builds the ``Trace`` (runs,
displays, outputs, tests, lr, dumps, crashes).

Scanning is line-local and stateless, so a large plain file is cut into byte ranges
that forked worker processes read and scan themselves (``workers``, ``chunks.scan_range``)
while this process only merges; the trace is the same for any number of workers and
any cut.

Robustness: invalid UTF-8 is replaced, binary junk is skipped, a line longer than
``scan.MAX_LINE`` bytes is dropped (and counted) instead of being buffered, and nothing
in the input can raise anything but ``InputError`` for a missing or unreadable file.
"""

from __future__ import annotations

import bisect
import gc
import marshal
import os
from array import array
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

import numpy as np

from nandoctor.log import patterns as P
from nandoctor.log.chunks import SAMPLE, Prepend, Reader, cuts, is_bare, open_source, scan_range_packed
from nandoctor.log.columns import LrColumns, LrSeries, TrainColumns, TrainSeries
from nandoctor.log.debug_lines import C_INT, floats
from nandoctor.log.displays import ChunkDisplays
from nandoctor.log.scan import (
    DUMP,
    LAYER,
    LAYER_SETUP,
    LR,
    OUT,
    RARE,
    SETUP,
    STEP,
    SUMMARY,
    TESTING,
    TOP,
    TRAIN,
    ChunkScan,
    Displays,
    number,
    scan_chunk,
    unpack,
)
from nandoctor.log.trace import (
    ClipEvent,
    Crash,
    DebugTable,
    LayerSetup,
    LogDocument,
    MultiStepEvent,
    OutputValue,
    Segment,
    Snapshot,
    TestPass,
    Trace,
)
from nandoctor.log.workers import available as workers_available
from nandoctor.log.workers import scan_in_order


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace").strip()


def parse_log(source, workers: int | None = None) -> Trace:
    """Parse a Caffe log (path, binary or text file object; gzip allowed) into a Trace.

    ``workers``: processes that scan chunks in parallel (the state machine stays in
    this process, so the result is identical). Default: 1 below ``PARALLEL_FROM`` bytes,
    else up to ``MAX_WORKERS`` (one per CPU).
    """
    stream, path, gz = open_source(source)
    if workers is None:
        workers = _default_workers(source)
    parser = _Parser(path)
    parser.stats["gzip"] = int(gz)
    with _no_young_collections():
        return _parse(parser, source, stream, path, gz, workers)


def _parse(parser: _Parser, source, stream, path: str, gz: bool, workers: int) -> Trace:
    try:
        head = _read_head(stream)
        bare = is_bare(head[:SAMPLE])
        # byte ranges need a regular file (a pipe or device is read as a stream)
        if workers > 1 and not gz and isinstance(source, (str, os.PathLike)) and os.path.isfile(path):
            parser.feed_ranges(path, workers, bare)
        else:
            parser.feed(Prepend(head, stream), workers, bare)
        error = getattr(stream, "error", None)
        if error:
            parser.stats["read_error"] = 1
            parser.read_error = error
    except (OSError, EOFError) as exc:
        # a truncated or corrupt gzip still yields what was read before the damage
        parser.stats["read_error"] = 1
        parser.read_error = str(exc)
    finally:
        if isinstance(source, (str, os.PathLike)):
            stream.close()
    return parser.finish()


@contextmanager
def _no_young_collections():
    """The cyclic GC off while the trace is built, and what was built put in the oldest generation.

    A big log makes millions of objects with no reference cycles. With the GC on, every
    young collection would walk them again; re-enabled afterwards, the first one would
    still walk all of them at once (0.65 s for a 1 GB log). They live as long as the
    trace, so they go straight to the oldest generation (``freeze`` + ``unfreeze``
    moves every tracked object there without visiting it). Skipped when the caller
    froze objects of its own, which ``unfreeze`` would release.
    """
    was_enabled = gc.isenabled()
    frozen_before = gc.get_freeze_count()
    gc.disable()
    try:
        yield
    finally:
        if frozen_before == 0:
            gc.freeze()
            gc.unfreeze()
        if was_enabled:
            gc.enable()


def _read_head(stream) -> bytes:
    """The first ``SAMPLE`` bytes (fewer at the end of the stream), which decide bare vs glog text."""
    parts, size = [], 0
    while size < SAMPLE:
        data = stream.read(SAMPLE - size)
        if not data:
            break
        parts.append(data)
        size += len(data)
    return b"".join(parts)


PARALLEL_FROM = 64 << 20
# A log can hold any number of runs (a million short ones, or a restart on every line of a
# grepped log): the trace keeps the first and the last runs in full and only counts the
# ones between, so its memory and the diagnosis stay bounded whatever the log's shape.
KEEP_FIRST_RUNS = 1000
KEEP_LAST_RUNS = 1000
MAX_WORKERS = 4


def _default_workers(source) -> int:
    if not isinstance(source, (str, os.PathLike)):
        return 1
    try:
        size = os.path.getsize(source)
    except OSError:
        return 1
    if size < PARALLEL_FROM:
        return 1
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


def _mp_context():
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else methods[0])


class _Parser:
    def __init__(self, path: str):
        self.path = path
        self.stats: dict[str, int] = {
            "lines": 0,
            "bytes": 0,
            "glog_lines": 0,
            "events": 0,
            "debug_values": 0,
            "unparsed_lines": 0,
            "long_lines": 0,
            "dump_lines": 0,
            "gzip": 0,
            "read_error": 0,
            "runs": 0,
            "runs_dropped": 0,
        }
        self.read_error: str | None = None
        self.segments: list[Segment] = []
        # every run's displays and lr lines in file-wide columns; a run holds a view of its rows
        self.output_names: list[str] = []
        self.output_ids: dict[str, int] = {}
        self.train_columns = TrainColumns(self.output_names)
        self.lr_columns = LrColumns()
        # displays of the current chunk (rows of its Displays) not yet copied into the columns
        self.pending: list[int] = []
        self.pending_lines: list[int] = []
        self.pending_final: list[bool] = []
        self.chunk_displays: ChunkDisplays | None = None
        self.seg = self._new_segment(1)
        self.cur_train = False  # the current run's last display may still get outputs
        self.cur_test: TestPass | None = None
        self.cur_layer: LayerSetup | None = None
        self.net_count = 0
        self.pending_net_source: tuple[str | None, str, int | None] | None = None
        self.last_iter: int | None = None
        self.seen_speed = False
        # debug_info names are interned once for the whole file (shared by every segment's table)
        self.name_ids: dict[bytes, int] = {}
        self.dump_texts: dict[bytes, str] = {}  # by digest of the dump's bytes
        self.names: list[str] = self.seg.debug.names
        self.chunk_debug = DebugTable()
        self._unsorted_debug = False
        self.reader = Reader()
        self.finished_segments = 0  # segments before this one got their lr and debug iterations

    # ------------------------------------------------------------------ reading
    def feed(self, stream, workers: int = 1, bare: bool = False) -> None:
        """Scan a stream block by block, in this process or (bytes sent over) in ``workers``."""
        chunks = self.reader.chunks(stream)
        if workers <= 1:
            for chunk in chunks:
                self.merge(scan_chunk(chunk, bare))
            return
        try:
            pool = ProcessPoolExecutor(workers, mp_context=_mp_context())
        except (OSError, ValueError, ImportError):
            self.feed(stream, 1, bare)
            return
        with pool:
            queue: deque = deque()
            for chunk in chunks:
                queue.append(pool.submit(scan_chunk, chunk, bare))
                while len(queue) > 2 * workers:
                    self.merge(queue.popleft().result())
            while queue:
                self.merge(queue.popleft().result())

    def feed_ranges(self, path: str, workers: int, bare: bool) -> None:
        """A plain file: each worker reads and scans its own byte range; this process only merges."""
        size = os.path.getsize(path)
        if workers_available():
            for packed in scan_in_order(path, list(cuts(path, size)), bare, workers):
                self._merge_loaded(packed)
            return
        try:  # no fork on this platform: a pool of spawned processes
            pool = ProcessPoolExecutor(workers, mp_context=_mp_context())
        except (OSError, ValueError, ImportError):
            with open(path, "rb") as f:
                self.feed(f, 1, bare)
            return
        with pool:
            queue: deque = deque()
            token = os.urandom(16)  # this parse, for the workers' memory of dumps sent (a forked worker
            # inherits the module state of whoever forked it: a fresh token can never match that)
            for lo, hi in cuts(path, size):
                queue.append(pool.submit(scan_range_packed, path, lo, hi, bare, token))
                while len(queue) > 2 * workers:
                    self._merge_packed(queue.popleft().result())
            while queue:
                self._merge_packed(queue.popleft().result())

    def _merge_packed(self, blob: bytes) -> None:
        # marshal: the blob comes from our own worker process, never from the input
        self._merge_loaded(marshal.loads(blob))

    def _merge_loaded(self, result: tuple) -> None:
        packed, nbytes, long_lines = result
        self._merge_range([unpack(t) for t in packed], nbytes, long_lines)

    def _merge_range(self, scans: list[ChunkScan], nbytes: int, long_lines: int) -> None:
        self.reader.bytes += nbytes
        self.reader.long_lines += long_lines
        for scan in scans:
            self.merge(scan)

    # ------------------------------------------------------------------ one chunk
    def merge(self, scan: ChunkScan) -> None:
        """Feed one scanned chunk, in file order, through the state machine."""
        base = self.stats["lines"]
        self.stats["lines"] = base + scan.lines
        self.stats["glog_lines"] += scan.glog_lines
        self.stats["events"] += scan.found
        self.stats["long_lines"] += scan.long_lines
        cd = self.chunk_debug = DebugTable()
        cd.names = self.names
        self._unsorted_debug = False
        if scan.debug is not None:
            d = scan.debug
            ids = self.name_ids
            remap = []
            for name in d.names:
                i = ids.get(name)
                if i is None:
                    i = ids[name] = len(self.names)
                    self.names.append(_text(name))
                remap.append(i)
            cd.line = array("q", (np.frombuffer(d.lines, dtype=np.int64) + base).tobytes())
            cd.code = d.codes
            if remap == list(range(len(remap))):
                cd.layer, cd.blob = d.layers, d.blobs
            else:
                ids = np.array(remap, dtype=C_INT)
                cd.layer = array("i", ids[np.frombuffer(d.layers, dtype=C_INT)].tobytes())
                cd.blob = array("i", ids[np.frombuffer(d.blobs, dtype=C_INT)].tobytes())
            cd.value = d.values
            self.stats["debug_values"] += len(d.values)
        current = self.seg
        self._handle(scan.events, scan.event_lines, base, scan.displays)
        self._distribute_debug(self._position(current))
        # runs closed in this chunk are complete: finish them now, while the workers still scan
        # (at the end only this process works)
        last = len(self.segments) - 1
        while self.finished_segments < last:
            _finish_segment(self.segments[self.finished_segments])
            self.finished_segments += 1

    def _distribute_debug(self, first_seg: int) -> None:
        """Hand this chunk's debug values to the segment(s) they were read in."""
        cd = self.chunk_debug
        if not len(cd.line):
            return
        if self._unsorted_debug:
            order = sorted(range(len(cd.line)), key=cd.line.__getitem__)
            cd.line = array("q", (cd.line[i] for i in order))
            cd.code = bytearray(cd.code[i] for i in order)
            cd.layer = array("i", (cd.layer[i] for i in order))
            cd.blob = array("i", (cd.blob[i] for i in order))
            cd.value = array("d", (cd.value[i] for i in order))
            self._unsorted_debug = False
        segs = self.segments[first_seg:]
        lo = 0
        for seg in segs:
            # by each run's own line range: the runs between two kept ones may have been dropped
            lo = bisect.bisect_left(cd.line, seg.start_line, lo)
            hi = bisect.bisect_right(cd.line, seg.end_line, lo) if seg is not self.seg else len(cd.line)
            if hi > lo:
                t = seg.debug
                t.line.extend(cd.line[lo:hi])
                t.code.extend(cd.code[lo:hi])
                t.layer.extend(cd.layer[lo:hi])
                t.blob.extend(cd.blob[lo:hi])
                t.value.extend(cd.value[lo:hi])
            lo = hi

    def _position(self, seg: Segment) -> int:
        """Where ``seg`` is in ``segments``; if it was dropped, where the runs after it begin."""
        for i in range(len(self.segments) - 1, -1, -1):
            if self.segments[i] is seg:
                return i
        return KEEP_FIRST_RUNS

    def _drop_middle_runs(self) -> None:
        """Forget the runs between the first and the last kept ones (in batches: amortised O(1) a run)."""
        lo, hi = KEEP_FIRST_RUNS, len(self.segments) - KEEP_LAST_RUNS
        if hi - lo < KEEP_LAST_RUNS:
            return
        done = self.finished_segments
        self.finished_segments = done - (min(hi, done) - min(lo, done))
        first, kept = self.segments[lo], self.segments[hi]
        # their displays and lr lines go too: the rows between the two runs, then the later rows move down
        for store, a, b in ((self.train_columns, first.train.lo, kept.train.lo),
                            (self.lr_columns, first.lr.lo, kept.lr.lo)):  # fmt: skip
            if b > a:
                store.drop(a, b)
                for seg in self.segments[hi:]:
                    view = seg.train if store is self.train_columns else seg.lr
                    view.lo -= b - a
                    view.hi -= b - a
        del self.segments[lo:hi]
        self.stats["runs_dropped"] += hi - lo

    def _new_segment(self, line: int) -> Segment:
        self.stats["runs"] += 1
        seg = Segment(
            index=self.stats["runs"] - 1,
            start_line=line,
            train=TrainSeries(self.train_columns, len(self.train_columns)),
            lr=LrSeries(self.lr_columns, len(self.lr_columns)),
        )
        if self.segments:
            seg.debug.names = self.segments[0].debug.names
        self.segments.append(seg)
        self._drop_middle_runs()
        self.cur_train = False
        self.cur_test = None
        self.cur_layer = None
        self.net_count = 0
        self.last_iter = None
        self.seen_speed = False
        return seg

    def _split(self, line: int) -> None:
        """Start a new segment (run) at ``line``."""
        self._flush()
        self.seg.end_line = line - 1
        self.seg = self._new_segment(line)

    def _intern(self, name: str) -> int:
        key = name.encode("utf-8")
        i = self.name_ids.get(key)
        if i is None:
            i = self.name_ids[key] = len(self.names)
            self.names.append(name)
        return i

    def _has_training(self) -> bool:
        return bool(self.pending) or self.seg.has_training

    def _handle(self, events: list[tuple], lines: array, base: int, displays: Displays | None) -> None:
        # the hot loop of the whole parser: one tuple per event, most of them TRAIN (a display
        # with its outputs and lr line folded in by the scan, see ``scan._fold``); a display is
        # only noted here and copied into the columns with the others of its run (``_flush``)
        if displays is not None:
            its, speeds = displays.iteration, displays.speed
            self.chunk_displays = ChunkDisplays(displays, base, self.output_ids, self.output_names)
        rows, row_lines, finals = self.pending, self.pending_lines, self.pending_final
        for line, ev in zip(map(base.__add__, lines), events, strict=True):
            kind = ev[0]
            if kind == TRAIN:
                k = ev[1]
                it = its[k]
                speed = speeds[k]
                if speed:
                    self.seen_speed = True
                # a display never repeats or goes back within one run: the counter restarted
                last = self.last_iter
                if last is not None and it <= last and (rows or self.seg.has_training):
                    self._split(line)
                self.last_iter = it
                rows.append(k)
                row_lines.append(line)
                finals.append(not speed and self.seen_speed)
                self.cur_train = True
                self.cur_test = None
            elif kind == OUT:
                if ev[1] and self.cur_train:
                    self._flush()
                    self.seg.train.store.add_output(ev[2], self._output_id(ev[3]), ev[4], ev[5], line, ev[6], ev[7])
                    self.seg.train.hi = len(self.train_columns)
                else:
                    self._output(line, ev[1], ev[2], ev[3], ev[4], ev[5], ev[6], ev[7])
            elif kind == LR:
                self._flush()
                self.lr_columns.append(ev[1], ev[2], ev[3], line, ev[4])
                self.seg.lr.hi = len(self.lr_columns)
            elif kind == LAYER_SETUP:
                layer = self.cur_layer = LayerSetup(ev[1], line, max(0, self.net_count - 1))
                layer.top_shapes = ev[2]
                self.seg.layers.append(layer)
            elif kind == TOP:
                if self.cur_layer is not None and ev[1] is not None:
                    self.cur_layer.top_shapes.append(ev[1])
            elif kind == LAYER:
                self.seg.layers.append(LayerSetup(ev[1], line, max(0, self.net_count - 1)))
                self.cur_layer = None
            elif kind == SETUP:
                self._setting_up(line, ev[1])
            elif kind == SUMMARY:
                if ev[1] is not None:
                    self.seg.debug.summaries.append((line, None, *ev[1]))
            elif kind == RARE:
                self._rare(line, ev[1], ev[2])
            elif kind == TESTING:
                self._testing(line, ev[1], ev[2])
            elif kind == STEP:
                self.seg.multistep.append(MultiStepEvent(ev[1], ev[2], line))
            elif kind == DUMP:
                self._dump(line, ev[1], ev[2], ev[3], ev[4])
            else:
                self._raw(line, ev[1], ev[2])
        self._flush()
        self.chunk_displays = None

    def _output_id(self, name: str) -> int:
        i = self.output_ids.get(name)
        if i is None:
            i = self.output_ids[name] = len(self.output_names)
            self.output_names.append(name)
        return i

    def _flush(self) -> None:
        """Copy the noted displays (all of the current run) and their outputs and lr lines into the columns."""
        if not self.pending:
            return
        self.chunk_displays.copy(self.pending, self.pending_lines, self.pending_final, self.train_columns,
                                 self.lr_columns)  # fmt: skip
        self.pending.clear()
        self.pending_lines.clear()
        self.pending_final.clear()
        self.seg.train.hi = len(self.train_columns)
        self.seg.lr.hi = len(self.lr_columns)

    def _testing(self, line: int, it: int, idx: int) -> None:
        seg = self.seg
        if self.last_iter is not None and it < self.last_iter and self._has_training():
            self._split(line)
            seg = self.seg
        self.cur_test = TestPass(it, idx, line, last_line=line)
        seg.tests.append(self.cur_test)

    def _output(self, line, is_train, idx, name, val, val_text, weight, contrib) -> None:
        if is_train and not self.cur_train:
            return  # an output line without its Iteration line (cut or grepped log)
        if is_train:
            self._flush()
            self.train_columns.add_output(idx, self._output_id(name), val, val_text, line, weight, contrib)
            return
        out = OutputValue(idx, name, val, val_text, line, weight, contrib)
        test = self.cur_test
        if test is None:
            test = self.cur_test = TestPass(self.last_iter if self.last_iter is not None else 0, 0, line)
            self.seg.tests.append(test)
        test.outputs.append(out)
        test.last_line = line

    def _raw(self, line: int, key: bytes, rest: bytes) -> None:
        seg = self.seg
        if key[:1] == b"F" and key[1:2].isdigit():
            msg = _text(rest)
            if msg.startswith("Check failed"):
                return  # recorded by the rare pass
            seg.crashes.append(Crash("fatal", msg, line))
            return
        text = _text(key + rest)
        if key.startswith(b"*** "):
            if rest.startswith(b"Aborted at"):
                seg.crashes.append(Crash("aborted", text, line))
            elif rest.startswith(b"SIG"):
                seg.crashes.append(Crash("signal", text, line))
            return
        if key.startswith(b"double free") or key.startswith(b"free(): "):
            seg.crashes.append(Crash("double_free", text, line))
        elif key.startswith(b"Segmentation fault") or key.startswith(b"Floating point exception"):
            seg.crashes.append(Crash("signal", text, line))
        elif key.startswith(b"Aborted"):
            seg.crashes.append(Crash("aborted", text, line))
        elif key.startswith(b"terminate called"):
            seg.crashes.append(Crash("fatal", text, line))

    def _setting_up(self, line: int, name: str) -> None:
        # "Creating Layer X" came just before; a log cut or filtered by grep may lack it
        seg = self.seg
        last = seg.layers[-1] if seg.layers else None
        if last is not None and last.name == name and last.net_index == max(0, self.net_count - 1):
            self.cur_layer = last
        else:
            self.cur_layer = LayerSetup(name, line, max(0, self.net_count - 1))
            seg.layers.append(self.cur_layer)

    def _rare(self, line: int, key: bytes, rest: bytes) -> None:
        seg = self.seg
        event = P.EVENT.get(key)
        if event == "crash_output":
            self._raw(line, key, rest)
        elif event == "net_created":  # training/test net; "Creating Layer" has its own event kind
            m = P.NET_FILE_RE.search(rest)
            t = P.TEST_NET_RE.search(rest)
            role = "test" if b"test" in key else "train"
            self.pending_net_source = (
                _text(m.group(1)) if m and m.group(1) else None,
                role,
                int(t.group(1)) if t else None,
            )
        elif event == "loss_weight":
            if self.cur_layer is not None:
                v = number(rest.split()[0]) if rest.split() else None
                if v is not None:
                    self.cur_layer.loss_weights.append(v)
        elif event == "check_failed":
            seg.crashes.append(Crash("check_failed", "Check failed: " + _text(rest), line))
        elif event == "unknown_lr_policy":
            seg.crashes.append(Crash("fatal", _text(key + rest), line))
        elif event == "clip":
            m = P.CLIP_RE.search(rest)
            it = self.last_iter  # the current display's iteration, if there is one
            if it is not None and seg.clips and seg.clips[-1].iteration is not None and seg.clips[-1].iteration >= it:
                it = seg.clips[-1].iteration + 1  # Caffe clips (and says so) on every iteration, displayed or not
            if m:
                seg.clips.append(ClipEvent(it, number(m.group(1)), number(m.group(2)), number(m.group(3)), line))
        elif event == "snapshot":
            m = P.SNAPSHOT_RE.search(rest)
            if m:
                p = _text(m.group(1))
                kind = "solverstate" if "solverstate" in p or b"solver state" in rest else "model"
                seg.snapshots.append(Snapshot(p, kind, line, _snapshot_iter(p)))
        elif event == "data_restart":
            seg.info["data_restarts"] = seg.info.get("data_restarts", 0) + 1
        elif event == "resume":
            if self._has_training():
                self._split(line)
                seg = self.seg
            seg.info["resumed_from"] = _text(rest)
            seg.info["resumed_line"] = line
        elif event == "optimization_done":
            seg.info.setdefault("optimization_done_line", line)
        elif event == "stopped_early":
            seg.info["stopped_early_line"] = line
        elif event == "solving":
            seg.info["solving"] = _text(rest)
        elif event == "lr_policy":
            seg.info["lr_policy"] = _text(rest)
        elif event == "test_loss":
            test = self.cur_test
            if test is not None:
                test.loss = number(rest.strip().split()[0]) if rest.split() else None
                test.loss_line = line
        elif event == "test_score":
            m = rest.split(b":", 1)
            if len(m) == 2 and m[0].strip().isdigit():
                val = m[1].strip().split()[0] if m[1].split() else b""
                idx = m[0].strip()
                self._output(
                    line, False, int(idx), "score" + _text(idx), number(val), val.decode("latin-1"), None, None
                )
        elif event == "test_interrupted":
            if self.cur_test is not None:
                self.cur_test.interrupted = True
        elif event == "debug_input":
            parts = rest.split()
            if len(parts) >= 3 and parts[1] == b"data:":
                t = self.chunk_debug
                self._unsorted_debug = True
                t.line.append(line)
                t.code.append(4)
                name = _text(parts[0])
                i = self._intern(name)
                t.layer.append(i)
                t.blob.append(i)
                v = number(parts[2])
                t.value.append(float("nan") if v is None else v)
        elif event == "debug_update":
            self._update_line(line, rest)

    def _update_line(self, line: int, rest: bytes) -> None:
        """``[Update] Layer L, param P data: X; diff: Y`` or ``... param blob P (owned by ...) diff: Y``."""
        m = P.UPDATE_RE.match(rest)
        if m is None:
            return
        layer, blob, data, diff = m.groups()
        t = self.chunk_debug
        self._unsorted_debug = True
        li, bi = self._intern(_text(layer)), self._intern(_text(blob))
        for code, val in ((5, data), (6, diff)):
            if val is not None:
                t.line.append(line)
                t.code.append(code)
                t.layer.append(li)
                t.blob.append(bi)
                t.value.extend(floats((val,)))

    def _dump(self, line: int, key: bytes, raw: bytes, digest: bytes, n_lines: int) -> None:
        """A protobuf dump after 'Initializing solver/net from parameters:' (quote markers already gone)."""
        # runs restarted or resumed with the same config dump the same text: keep one copy
        text = self.dump_texts.get(digest)
        if text is None and raw is not None:
            # every text is kept by its LogDocument anyway: remembering them all costs only the dict;
            # a worker sends a repeated dump as its digest alone (raw None), counting on that
            text = self.dump_texts[digest] = raw.decode("utf-8", "replace").replace("\r", "")
        elif text is None:
            text = ""  # not reached: a digest comes alone only after its text
        self.stats["dump_lines"] += n_lines
        is_solver = b"solver" in key
        seg = self.seg
        # a new solver dump, or a net dump after training started, begins another run
        if self._has_training() or (is_solver and seg.solver is not None):
            self._split(line)
            seg = self.seg
        doc = LogDocument("solver" if is_solver else "net", text, line + 1, line, path=self.path)
        if is_solver:
            seg.solver = doc
        else:
            src = self.pending_net_source
            if src is not None:
                doc.source, doc.role, doc.test_index = src
            else:
                doc.role = "train" if not seg.nets else "test"
            # the dump's own "state { phase: TEST }" decides, without parsing the whole dump
            head = text[:400]
            if "phase: TEST" in head.split("layer", 1)[0]:
                doc.role = "test"
            elif "phase: TRAIN" in head.split("layer", 1)[0]:
                doc.role = "train"
            self.pending_net_source = None
            seg.nets.append(doc)
            self.net_count += 1

    # ------------------------------------------------------------------ finishing
    def finish(self) -> Trace:
        self.stats["bytes"] += self.reader.bytes
        self.stats["long_lines"] += self.reader.long_lines
        last = self.stats["lines"]
        self.seg.end_line = last
        for seg in self.segments[self.finished_segments :]:
            _finish_segment(seg)
        self.finished_segments = len(self.segments)
        recognised = self.stats["glog_lines"] + self.stats["dump_lines"]
        self.stats["unparsed_lines"] = max(0, last - recognised)
        trace = Trace(self.path, self.segments, dict(self.stats))
        if self.read_error:
            trace.segments[-1].info["read_error"] = self.read_error
        return trace


def _snapshot_iter(path: str) -> int | None:
    i = path.rfind("_iter_")
    if i < 0:
        return None
    digits = ""
    for ch in path[i + 6 :]:
        if not ch.isdigit():
            break
        digits += ch
    return int(digits) if digits else None


def _finish_segment(seg: Segment) -> None:
    _attach_lr(seg)
    _assign_debug(seg)


def _attach_lr(seg: Segment) -> None:
    """Each display (not the final one) gets the first lr line of its iteration."""
    train, lr = seg.train, seg.lr
    if not len(train) or not len(lr) or not isinstance(train, TrainSeries) or not isinstance(lr, LrSeries):
        return
    # within a run the displayed iterations strictly increase (else the run was split)
    keep = np.flatnonzero(~train.finals())
    its = train.iterations()[keep]
    lr_its = lr.iterations()
    at = np.searchsorted(its, lr_its)
    ok = at < len(its)
    ok[ok] = its[at[ok]] == lr_its[ok]
    if not ok.any():
        return
    hits, first = np.unique(at[ok], return_index=True)  # the first lr line of each iteration
    lr_rows = np.flatnonzero(ok)[first] + lr.lo
    rows = keep[hits] + train.lo
    store = train.store
    values = np.frombuffer(store.lr.values, dtype=np.float64)
    values[rows] = np.frombuffer(lr.store.value.values, dtype=np.float64)[lr_rows]
    np.frombuffer(store.lr.none, dtype=np.uint8)[rows] = np.frombuffer(lr.store.value.none, dtype=np.uint8)[lr_rows]
    np.frombuffer(store.lr_line, dtype=np.int64)[rows] = np.frombuffer(lr.store.line, dtype=np.int64)[lr_rows]


def _assign_debug(seg: Segment) -> None:
    """Give every debug_info value its iteration and phase.

    Train values are printed during the forward/backward pass of an iteration and
    before its display line, so they belong to the next ``Iteration N ..., loss``
    line; values between a ``Testing net`` line and the last output of that test
    pass belong to the test pass (vectorised: a debug log has millions of values).
    """
    table = seg.debug
    n = len(table.line)
    if not n and not table.summaries:
        return
    train_lines = seg.train.lines()
    train_iters = np.append(seg.train.iterations(), -1)
    if n:
        lines = np.frombuffer(table.line, dtype=np.int64) if n else np.zeros(0, np.int64)
        iters = train_iters[np.searchsorted(train_lines, lines, side="left")]
        phase = np.zeros(n, dtype=np.uint8)
        if seg.tests:
            starts = np.array([t.line for t in seg.tests], dtype=np.int64)
            ends = np.array([max(t.last_line, t.line) for t in seg.tests], dtype=np.int64)
            t_iters = np.array([t.iteration for t in seg.tests], dtype=np.int64)
            k = np.searchsorted(starts, lines, side="right") - 1
            ok = k >= 0
            kk = np.where(ok, k, 0)
            inside = ok & (lines <= ends[kk])
            iters = np.where(inside, t_iters[kk], iters)
            phase[inside] = 1
        table.iteration = array("q", iters.astype(np.int64).tobytes())
        table.phase = bytearray(phase.tobytes())
    if table.summaries:
        # the display at or after each summary line (one searchsorted, not a list per summary)
        at = np.searchsorted(train_lines, np.array([s[0] for s in table.summaries], dtype=np.int64), side="left")
        its = train_iters[at].tolist()
        inside = (at < len(train_lines)).tolist()
        table.summaries = [
            (s[0], it if ok else None, *s[2:]) for s, it, ok in zip(table.summaries, its, inside, strict=True)
        ]
