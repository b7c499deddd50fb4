"""Byte ranges of a log scanned in forked worker processes, the results read back in file order.

Range ``i`` goes to worker ``i % n``, which scans its ranges in order and writes each
result (``chunks.scan_range_packed``'s marshal blob) to its own pipe behind an 8-byte
length; the parser reads worker ``i % n``'s pipe for range ``i``. Nothing else
travels: the workers get their ranges through ``fork``. Compared with
``concurrent.futures`` this spares the parsing process the pickling of every result,
a management thread and a task queue, about 0.4 CPU-seconds per GB of log, and it is
the parsing process that the whole parse waits for in the end.

Failures: an exception in a worker is sent back pickled in place of a result and
raised in the parser; a worker that dies without a word (killed, out of memory)
shows as a ``ChildProcessError``. Leaving early (an exception in the parser, a
generator not run to its end) kills and reaps every worker.
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
from collections.abc import Iterator
from contextlib import suppress

from nandoctor.log.chunks import scan_range_packed

_HEADER = struct.Struct("<q")  # blob length; -length for a pickled exception
_READ = 1 << 20


def available() -> bool:
    return hasattr(os, "fork")


def scan_in_order(path: str, ranges: list[tuple[int, int]], bare: bool, workers: int) -> Iterator[bytes]:
    """The packed scan of each range, in the order of ``ranges``, scanned by ``workers`` forked processes."""
    token = os.urandom(16)  # names this parse for the workers' memory of dumps already sent
    n = max(1, min(workers, len(ranges)))
    children: list[tuple[int, int]] = []  # (pid, read end of its pipe)
    try:
        for w in range(n):
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:  # the worker: never returns
                os.close(read_end)
                _work(write_end, path, ranges[w::n], bare, token)
            os.close(write_end)
            children.append((pid, read_end))
        for i in range(len(ranges)):
            yield _receive(children[i % n])
    finally:
        for pid, read_end in children:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # already gone when all went well
            os.close(read_end)
            os.waitpid(pid, 0)


def _work(fd: int, path: str, ranges: list[tuple[int, int]], bare: bool, token: bytes) -> None:
    status = 0
    try:
        for lo, hi in ranges:
            _send(fd, scan_range_packed(path, lo, hi, bare, token))
    except BaseException as exc:  # whatever it is, the parser raises it
        status = 1
        with suppress(Exception):  # the parser is gone, or the exception does not pickle: exit all the same
            _send(fd, pickle.dumps(exc), error=True)
    finally:
        os._exit(status)  # no atexit handlers or buffers of the parsing process run twice


def _send(fd: int, blob: bytes, error: bool = False) -> None:
    view = memoryview(_HEADER.pack(-len(blob) if error else len(blob)) + blob)
    while view:
        view = view[os.write(fd, view) :]


def _receive(child: tuple[int, int]) -> bytes:
    pid, fd = child
    (length,) = _HEADER.unpack(_read_exactly(fd, _HEADER.size, pid))
    if length < 0:
        raise pickle.loads(_read_exactly(fd, -length, pid))  # our own worker's exception
    return _read_exactly(fd, length, pid)


def _read_exactly(fd: int, n: int, pid: int) -> bytearray:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = os.readv(fd, [view[got : got + _READ]])
        if k == 0:
            raise ChildProcessError(f"log scan worker {pid} ended without sending its result")
        got += k
    return buf
