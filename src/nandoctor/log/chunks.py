"""Getting a log's bytes to the scanner in bounded pieces: opening, gunzip, chunk boundaries.

A chunk starts at a line start and never cuts a protobuf dump (``Initializing ...
from parameters:`` and the text-format lines after it). Scanning is line-local (see
``scan``), so any such cut gives the same trace: that is what lets worker processes
scan byte ranges of a file without the main process ever reading it.

Two ways to cut:

* ``Reader.chunks(stream)``: sequential, for streams and gzip (and one process);
  a dump still open at the end of a block is carried into the next one.
* ``cuts(path, size)`` + ``scan_range(path, lo, hi, bare)``: for a plain file and
  several workers. The main process finds each cut by reading a few KB around it
  (``boundary``: the next line start, pushed past a dump that spans it); each worker
  reads and scans its own range, so the file's bytes never pass through the main process.

Memory stays bounded by the block size: a line longer than ``MAX_LINE`` is dropped
(it becomes an empty line, so line numbers stay right) instead of being buffered.
"""

from __future__ import annotations

import io
import marshal
import os
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from nandoctor.core.safeio import open_stream_input
from nandoctor.core.types import InputError
from nandoctor.log import patterns as P
from nandoctor.log import scan as S
from nandoctor.log.scan import DUMP_LOOKBACK, SAMPLE, ChunkScan, cut_point, dump_end, is_bare, pack, scan_chunk

BLOCK = 2 << 20  # bytes per read / per worker task (a chunk's scan holds several times its size)
MAX_DUMP = 32 << 20  # a protobuf dump longer than this is cut
__all__ = ["SAMPLE", "is_bare"]  # re-exported for parse_log


def open_source(source) -> tuple[BinaryIO, str, bool]:
    """A binary stream for a path or file object; gzip is detected by magic bytes."""
    if isinstance(source, (str, os.PathLike)):
        path = str(source)
        # a file or a pipe that is written to: an idle FIFO would block, /dev/zero never ends
        raw: BinaryIO = open_stream_input(path, "a Caffe log file")  # closed by parse_log
    else:
        raw = source
        path = str(getattr(source, "name", "<stream>"))
        if isinstance(source, io.TextIOBase):
            raw = io.BytesIO(source.read().encode("utf-8", "replace"))
    try:
        head = raw.peek(2)[:2] if hasattr(raw, "peek") else None
        if head is None:
            first = raw.read(2)
            raw = Prepend(first, raw)
            head = first
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path) from None
    if head == b"\x1f\x8b":
        return GunzipStream(raw), path, True  # type: ignore[return-value]
    return raw, path, False


class GunzipStream:
    """Incremental gunzip: a truncated or corrupt file yields everything before the damage.

    (``gzip.GzipFile.read`` raises on a cut stream and drops the block it was decoding.)
    Concatenated gzip members, as ``cat a.gz b.gz`` makes them, are read one after another.
    """

    def __init__(self, raw):
        self.raw = raw
        self.z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.error: str | None = None
        self.done = False

    def read(self, n: int) -> bytes:
        out = []
        size = 0
        while size < n and not self.done:
            data = self.raw.read(1 << 20)
            if not data:
                self.done = True
                if not self.z.eof and self.z.unconsumed_tail == b"":
                    self.error = "gzip stream ends early (truncated file)"
                tail = self.z.flush()
                if tail:
                    out.append(tail)
                break
            try:
                piece = self.z.decompress(data)
                while self.z.eof and self.z.unused_data:
                    rest = self.z.unused_data
                    self.z = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    piece += self.z.decompress(rest)
            except zlib.error as exc:
                self.error = f"corrupt gzip data ({exc})"
                self.done = True
                break
            out.append(piece)
            size += len(piece)
        return b"".join(out)

    def close(self) -> None:
        self.raw.close()


class Prepend(io.RawIOBase):
    """A stream with some already-read bytes put back in front."""

    def __init__(self, first: bytes, rest):
        self._first = first
        self._rest = rest

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self._first:
            head, self._first = self._first, b""
            if n is None or n < 0:
                return head + self._rest.read()
            return head + self._rest.read(max(0, n - len(head)))
        return self._rest.read(n)

    def close(self) -> None:
        pass


class _Limited:
    """At most ``n`` bytes of a stream."""

    def __init__(self, raw, n: int):
        self.raw, self.left = raw, n

    def read(self, n: int) -> bytes:
        data = self.raw.read(min(n, self.left)) if self.left > 0 else b""
        self.left -= len(data)
        return data


class Reader:
    """Sequential chunking of a stream; counts the bytes read and the lines dropped as too long."""

    def __init__(self) -> None:
        self.bytes = 0
        self.long_lines = 0

    def chunks(self, stream) -> Iterator[bytes]:
        """The stream cut into chunks that end at line ends and never inside a protobuf dump."""
        block = BLOCK
        pending = b""
        skipping = False  # inside an over-long line
        while True:
            data = stream.read(block)
            eof = not data
            if skipping and data:
                nl = data.find(b"\n")
                if nl < 0:
                    self.bytes += len(data)
                    continue
                self.bytes += nl
                data = data[nl:]  # the dropped line's newline stays: line numbers do not move
                skipping = False
            buf = pending + data if pending else data
            pending = b""
            if not buf:
                return
            if eof:
                end = len(buf)
            else:
                nl = buf.rfind(b"\n")
                if nl < 0:
                    if len(buf) > S.MAX_LINE:
                        self.long_lines += 1
                        self.bytes += len(buf)
                        skipping = True
                    else:
                        pending = buf
                    continue
                end = nl + 1
            cut = cut_point(buf, end, force=eof or len(buf) > MAX_DUMP)
            if cut == 0:
                pending = buf  # only an unfinished dump so far: read on
                continue
            self.bytes += cut
            yield buf if cut == len(buf) else buf[:cut]
            pending = buf[cut:]
            if eof:
                if pending:
                    self.bytes += len(pending)
                    yield pending
                return


def cuts(path: str, size: int) -> Iterator[tuple[int, int]]:
    """The file as consecutive byte ranges of about ``BLOCK`` bytes, each cut by ``boundary``.

    Computed lazily, in order, by reading a few KB around each nominal cut; a long line
    or dump that pushes a cut past the next nominal ones is read once, not once per block.
    """
    with open(path, "rb") as f:
        prev = 0
        for nominal in range(BLOCK, size, BLOCK):
            if nominal <= prev:
                continue
            cut = boundary(f, nominal, size)
            if cut > prev:
                yield prev, cut
                prev = cut
        if prev < size:
            yield prev, size


def boundary(f, pos: int, size: int) -> int:
    """The first line start at or after ``pos`` that is not inside a protobuf dump."""
    if pos <= 0:
        return 0
    if pos >= size:
        return size
    f.seek(pos - 1)
    start = pos - 1
    while True:  # a line longer than a block only costs reading, not memory
        block = f.read(1 << 16)
        if not block:
            return size
        i = block.find(b"\n")
        if i >= 0:
            cut = start + i + 1
            break
        start += len(block)
    if cut >= size:
        return size
    f.seek(cut - 1)
    line = f.read(1 << 12)
    if P.BLOCK_END_RE.match(line):
        return cut  # the line at the cut is not text format: no dump runs across it
    lo = max(0, cut - DUMP_LOOKBACK)
    f.seek(lo)
    window = f.read(cut - lo + DUMP_LOOKBACK)
    h = window.rfind(b"from parameters:", 0, cut - lo)
    if h < 0:
        return cut
    newline = window.find(b"\n", h)
    if newline < 0:
        return cut
    finish = dump_end(window, newline, len(window))
    if finish is None or lo + finish <= cut:
        return cut
    return lo + finish


def scan_range(
    path: str, lo: int, hi: int, bare: bool, sent_dumps: set | None = None
) -> tuple[list[ChunkScan], int, int]:
    """Worker task: scan the file's bytes [lo, hi), a range from ``cuts``.

    Returns the scans (one, or one per block around a long line), the bytes consumed
    and the lines dropped as too long.
    """
    with open(path, "rb") as f:
        f.seek(lo)
        if hi - lo <= 2 * BLOCK:  # the usual range: one read, one scan
            buf = f.read(hi - lo)
            return [scan_chunk(buf, bare, sent_dumps)], len(buf), 0
        reader = Reader()  # a long line moved the cut far: read it in blocks
        scans = [scan_chunk(chunk, bare, sent_dumps) for chunk in reader.chunks(_Limited(f, hi - lo))]
    return scans, reader.bytes, reader.long_lines


# this worker process's dumps already sent in the parse named by the token (see scan_range_packed)
_sent: tuple[bytes | None, set[bytes]] = (None, set())


def scan_range_packed(path: str, lo: int, hi: int, bare: bool, token: bytes | None = None) -> bytes:
    """``scan_range`` as one ``marshal`` blob: what worker processes send back (see ``scan.pack``).

    ``token`` names one parse: a worker gets its ranges of a parse in file order and the
    parser merges them in file order, so a dump this worker already sent in the same parse
    is known there and goes as its digest alone (runs restarted with the same net repeat
    their dumps: a fifth of what workers sent). Without a token every dump goes whole.
    """
    global _sent
    sent = None
    if token is not None:
        if _sent[0] != token:
            _sent = (token, set())
        sent = _sent[1]
    scans, nbytes, long_lines = scan_range(path, lo, hi, bare, sent)
    return marshal.dumps(([pack(s) for s in scans], nbytes, long_lines))
